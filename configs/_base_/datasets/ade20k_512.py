# ADE20K (ADEChallengeData2016): MMSegmentation's ADE20K data as shipped (mmseg::_base_/datasets/
# ade20k.py: 512 x 512 crops after a random resize of (2048, 512) by 0.5-2.0, cat_max_ratio 0.75,
# flip, photometric distortion; single-scale test at (2048, 512); reduce_zero_label; 4 images
# per GPU; IoUMetric mIoU), only moved to data_root.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

data_root = '{{$ADE20K_ROOT:data/ade/ADEChallengeData2016/}}'  # ADE20K_ROOT=DIR moves it for any tool
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
