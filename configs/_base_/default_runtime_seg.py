# MMSegmentation's runtime (mmseg::_base_/default_runtime.py) with the hooks its iteration-based
# schedules carry (mmseg::_base_/schedules/schedule_40k.py, not inherited: see
# ./schedules/adamw_poly_40k.py), keeping the last 3 checkpoints.
_base_ = 'mmseg::_base_/default_runtime.py'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
