# 40k-iteration schedule of docs/dense.md (ADE20K): AdamW lr 6e-5 for a total batch of 32 (8 GPUs x
# 4 images), weight decay 0.01 (none on position embedding, class token, norms, biases); poly
# decay (power 1) to 0 over all 40k iterations, multiplied during the first 1500 by a linear
# warm-up, as the authors' MMSegmentation 0.x hooks did (MMEngine chains overlapping schedulers multiplicatively).
# fp32: the authors' segmentation config trains without fp16 (tools/train.py --amp to change it).
# Written out rather than inherited from mmseg::_base_/schedules/schedule_40k.py: that file's SGD
# `optimizer` would stay in the merged config beside this AdamW, and its loops are these three lines.
mixed_precision = None
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
max_iters = 40000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0, end=max_iters),
]
auto_scale_lr = dict(enable=True, base_batch_size=32)
