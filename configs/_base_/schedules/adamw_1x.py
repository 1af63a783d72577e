# 1x schedule of docs/dense.md: AdamW lr 5e-5 for a total batch of 8 (betas 0.9/0.999, weight decay
# 0.05; no decay on position embedding, class token, norms, biases), 12 epochs, lr x0.1 at epochs
# 8 and 11, linear warm-up over the first 1000 iterations. fp16 mixed precision as the authors'
# detection runs (their optimizer hook: use_fp16=True) on CUDA devices; fp32 on CPU
# (benchmarks/dense/runner.py select_precision; tools/train.py --amp forces it for any config).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
mixed_precision = 'fp16'
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
# The lr above is for a total batch of 8 (8 GPUs x 1 image, the authors' setting); MMEngine
# scales it linearly to the real total batch (GPUs x train_dataloader.batch_size).
auto_scale_lr = dict(enable=True, base_batch_size=8)
