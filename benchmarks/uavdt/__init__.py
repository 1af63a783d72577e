"""UAVDT detection: reading the public release (:mod:`.convert`: ground-truth parsing, the
train/test split in ``split.json``, conversion to COCO JSON with ignore regions as crowd boxes)
and the dataset's own metric (:mod:`.metric`: COCO AP plus AP at IoU 0.7, registered in
MMDetection as ``UAVDTMetric``). ``tools/uavdt2coco.py`` is the command line."""
