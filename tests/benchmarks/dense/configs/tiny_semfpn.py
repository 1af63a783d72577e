# configs/ade20k/semfpn_flsl_vits16_40k.py shrunk for CPU tests: a tiny ViT (width 192, depth 4),
# 64x64 crops of the generated ADE20K-layout set (synthetic/ade.py), a few iterations.
# Data set class, label convention (reduce_zero_label), 150-class FPN head, AdamW, poly schedule
# and IoUMetric are the real config's. The tests pass
#   --cfg-options data_root=<generated set> model.backbone.init_cfg.checkpoint=<tiny export>
_base_ = ['../../../../configs/ade20k/semfpn_flsl_vits16_40k.py']

crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='vit_tiny_patch16_224',
        encoder_kwargs=dict(depth=4, img_size=64),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0),
    neck=dict(in_channels=[192, 192, 192, 192]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(160, 80), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 96), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=4, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0, end=4),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4))
