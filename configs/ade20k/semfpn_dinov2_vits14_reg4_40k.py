# DINOv2 ViT-S/14 with 4 registers + multi-scale adapter + Semantic FPN on ADE20K, 40k iterations:
# the FLSL adapter row's recipe with the DINOv2 hub file; architecture and run rule read from the
# checkpoint (docs/families.md), stride-14 maps resized to the stride-16 grid (docs/dense.md).
_base_ = ['./semfpn_flsl_vits16_adapter_40k.py']

model = dict(
    backbone=dict(
        arch=None,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth')))
