# DINOv2 ViT-S/14 with 4 registers: as mask_rcnn_dinov2_vits14.py with the register model (the
# registers take part in attention and never reach the pyramid; DINOv2's antialiased rule).
_base_ = ['./mask_rcnn_dinov2_vits14.py']

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth')))
