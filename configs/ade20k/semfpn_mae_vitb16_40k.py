# MAE ViT-B/16 + multi-scale adapter + Semantic FPN on ADE20K, 40k iterations: the FLSL adapter
# row's recipe with MAE's release ({"model": ...}); width 768 read from the checkpoint.
_base_ = ['./semfpn_flsl_vits16_adapter_40k.py']

model = dict(
    backbone=dict(
        arch=None,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mae_pretrain_vit_base.pth')),
    neck=dict(in_channels=[768, 768, 768, 768]))
