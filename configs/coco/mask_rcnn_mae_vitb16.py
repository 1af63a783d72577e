# MAE ViT-B/16 (mae_pretrain_vit_base.pth, {"model": ...}) + multi-scale adapter + FPN, Mask R-CNN
# 1x on COCO 2017, with the FLSL ViT-S/16 row's recipe; width 768 and the MAE run rule come from
# the checkpoint (docs/families.md).
_base_ = ['./mask_rcnn_flsl_vits16.py']

model = dict(
    backbone=dict(
        arch=None,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mae_pretrain_vit_base.pth')),
    neck=dict(in_channels=[768, 768, 768, 768]))
