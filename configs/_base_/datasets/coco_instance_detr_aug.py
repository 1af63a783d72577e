# COCO 2017 instance segmentation: MMDetection's COCO instance data (mmdet::_base_/datasets/
# coco_instance.py: 2017 train/val files, 1333 x 800 single-scale test, CocoMetric bbox + segm)
# with the DETR-style multi-scale training augmentation of docs/dense.md instead of its
# single-scale resize: flip 0.5, then with equal chance (a) shorter side in 480..800 (step 32),
# longer side <= 1333, or (b) shorter side in {400, 500, 600}, a random crop of absolute size in
# [384, 600], then (a). Padding to a multiple of 32 happens in the model's data_preprocessor.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

data_root = '{{$COCO_ROOT:data/coco/}}'  # COCO_ROOT=DIR moves it for any tool, ours or MMDetection's

multi_scales = [(1333, s) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(1333, 400), (1333, 500), (1333, 600)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=1,  # the authors' file: 1 image per GPU (total 8 on 8 GPUs, see auto_scale_lr)
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
