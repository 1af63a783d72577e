# 1x schedule of docs/dense.md on MMDetection's (mmdet::_base_/schedules/schedule_1x.py: 12
# epochs, lr x0.1 at epochs 8 and 11, validation every epoch) with AdamW lr 5e-5 for a total
# batch of 8 (betas 0.9/0.999, weight decay 0.05; no decay on position embedding, class token,
# norms, biases) instead of SGD, and a linear warm-up over the first 1000 iterations.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
import torch  # noqa: E402 - only to choose the optimizer wrapper below; MMEngine drops modules from configs

# fp16 mixed precision as the authors' detection runs (their optimizer hook: use_fp16=True):
# MMEngine's AmpOptimWrapper (dynamic loss scale) whenever the process sees a CUDA device, so
# MMDetection's own tools/train.py trains in fp16 too; fp32 on CPU, where the wrapper cannot run.
# tools/train.py reads mixed_precision (benchmarks/dense/runner.py select_precision) and its
# --amp asks for fp16 with any config.
mixed_precision = 'fp16'
optim_wrapper = dict(
    type='AmpOptimWrapper' if torch.cuda.is_available() else 'OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=5e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
max_epochs = 12
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
# The lr above is for a total batch of 8 (8 GPUs x 1 image, the authors' setting); MMEngine
# scales it linearly to the real total batch (GPUs x train_dataloader.batch_size).
auto_scale_lr = dict(enable=True, base_batch_size=8)
