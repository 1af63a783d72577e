# tiny_mask_rcnn.py for the overfitting check: a fixed input scale and no flip (the model only has
# to memorise a few images), a higher lr with a short warm-up, and many epochs over 2-4 images.
_base_ = ['./tiny_mask_rcnn.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=2e-3))   # x 2/8 by auto_scale_lr
train_cfg = dict(max_epochs=100)
val_cfg = None  # no validation during the run: the test evaluates the memorised images after it
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=1000, by_epoch=True, milestones=[1000], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=100))
log_processor = dict(window_size=10)
