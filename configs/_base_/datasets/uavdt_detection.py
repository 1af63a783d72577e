# UAVDT detection (docs/uavdt.md): MMDetection's COCO detection data (mmdet::_base_/datasets/
# coco_detection.py: CocoDataset, shorter side 800 / longer side at most 1333 with the aspect
# ratio kept, random flip 0.5, the same resize at test time) on the COCO files made by
# tools/uavdt2coco.py, images read from the release:
#
#   .venv/bin/python tools/uavdt2coco.py --data-root data/uavdt --out data/uavdt/annotations
#
# data_root   the UAVDT release folder (UAV-benchmark-M/, UAV-benchmark-MOTD_v1.0/); the COCO
#             files' image paths are relative to it (UAV-benchmark-M/<seq>/img000001.jpg).
# split       train = the 30 train sequences, test = the 20 test sequences; there is no official
#             validation split, so validation runs on the test split only once, after the last
#             epoch (val_interval in the model config), never to pick a checkpoint.
# ignore      the ignore regions are iscrowd=1 boxes: mmdet packs them as ignored instances (not
#             trained as objects; the UAVDT configs also keep anchors/proposals inside them out of
#             the negatives) and pycocotools does not count detections inside them as false
#             positives.
# scale       ASSUMED (the paper's UAVDT setting is to be confirmed): the base's 1x single-scale
#             setting (1024x540 frames become 1333x703).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

data_root = '{{$UAVDT_ROOT:data/uavdt/}}'  # UAVDT_ROOT=DIR moves it for any tool
metainfo = dict(classes=('car', 'truck', 'bus'))  # category ids 1, 2, 3 of the COCO files

train_dataloader = dict(
    batch_size=1,  # as the COCO configs: 1 image per GPU, total 8 on 8 GPUs (see auto_scale_lr)
    dataset=dict(
        metainfo=metainfo,
        data_root=data_root,
        ann_file='annotations/uavdt_train.json',
        data_prefix=dict(img='')))
val_dataloader = dict(
    dataset=dict(
        metainfo=metainfo,
        data_root=data_root,
        ann_file='annotations/uavdt_test.json',
        data_prefix=dict(img='')))
test_dataloader = val_dataloader

# COCO-style AP, AP50, AP75, AP_s/m/l, per-class AP (classwise) and AP at IoU 0.7 (the dataset's
# original protocol), all at 100 detections per image: proposal_nums=(1, 10, 100) makes
# pycocotools' maxDets (1, 10, 100), so AP50/AP75/size/per-class APs use 100 like the headline AP
# (MMDetection's default (100, 300, 1000) would compute them at 1000). See benchmarks/uavdt/metric.py.
val_evaluator = dict(
    type='UAVDTMetric',
    ann_file=data_root + 'annotations/uavdt_test.json',
    classwise=True,
    proposal_nums=(1, 10, 100),
    strict_iou=0.7)
test_evaluator = val_evaluator
