# FLSL ViT-S/16 + Semantic FPN on ADE20K, 40k iterations, 512x512 crops (docs/dense.md; docs/tables.md
# "ADE20K semantic segmentation"). Faithful to the authors' released backbone: NO multi-scale
# adapter, all four encoder outputs stay at stride 16 (adapter='single_scale') while the FPN head
# declares strides 4/8/16/32. The multi-scale adapter variant is semfpn_flsl_vits16_adapter_40k.py.
#
#   tools/dist_train.sh configs/ade20k/semfpn_flsl_vits16_40k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/flsl_vits16.safetensors \
#                     data_root=PATH/ADEChallengeData2016/
#   tools/dist_test.sh configs/ade20k/semfpn_flsl_vits16_40k.py work_dirs/semfpn_flsl_vits16_40k/iter_40000.pth 8
#
# checkpoint  model.backbone.init_cfg.checkpoint: any ViT-S/16 encoder file accepted by
#             tools/convert_checkpoint.py; loaded strictly, 6 heads and patch 16 checked against it.
# data_root   the ADEChallengeData2016 folder (images/{training,validation},
#             annotations/{training,validation}). Edit it below or pass --cfg-options
#             data_root=PATH/: tools/train.py and tools/test.py re-root every dataset path.
# batch       lr 6e-5 is for a total batch of 32 (8 GPUs x 4 images): auto_scale_lr
#             (base_batch_size 32) rescales it linearly to GPUs x train_dataloader.batch_size.
_base_ = [
    '../_base_/models/semfpn_vit.py',
    '../_base_/datasets/ade20k_512.py',
    '../_base_/schedules/adamw_poly_40k.py',
    '../_base_/default_runtime_seg.py',
]

data_root = '{{$ADE20K_ROOT:data/ade/ADEChallengeData2016/}}'  # ADE20K_ROOT=DIR moves it for any tool

model = dict(
    backbone=dict(
        arch='vit_small_patch16_224',
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        adapter='single_scale',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
