# configs/coco/mask_rcnn_flsl_vits16.py shrunk for CPU tests: a tiny ViT (width 192, depth 4),
# 64-channel FPN and heads (32 in the mask head), fewer sampled RoIs, the 3 shape classes of synthetic/coco.py, images of about
# 128 pixels with the same DETR-style augmentation structure, one epoch. Everything else (Mask
# R-CNN structure, anchors, RoIAlign sizes, AdamW, paramwise_cfg, warm-up, CocoMetric) is the
# real config's. The tests pass
#   --cfg-options data_root=<generated set> model.backbone.init_cfg.checkpoint=<tiny export>
_base_ = ['../../../../configs/coco/mask_rcnn_flsl_vits16.py']

data_root = '{{$COCO_ROOT:data/coco/}}'  # the real config's rule: tests move it with --cfg-options or COCO_ROOT
classes = ('ellipse', 'rectangle', 'triangle')
scales = [(160, s) for s in (96, 112, 128)]

model = dict(
    backbone=dict(
        arch='vit_tiny_patch16_224',
        encoder_kwargs=dict(depth=4, img_size=64),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0),
    # narrower heads (64 / 32 channels instead of 256) and fewer sampled RoIs keep a CPU
    # iteration well under a second
    neck=dict(in_channels=[192, 192, 192, 192], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=32, num_classes=3)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(160, 96), (160, 112)], keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(64, 96),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-4))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', begin=0, end=1000, by_epoch=True, milestones=[1000], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
