# Semantic FPN with the FLSL ViT (docs/dense.md, "ADE20K: Semantic FPN"). The encoder taps blocks
# (2, 5, 8, 11) with drop-path 0.1; FPN 4 x C -> 256 with 4 outputs; FPN head 128 channels.
# The backbone layout defaults to the authors' released one (no adapter: all four maps at stride
# 16); configs/ade20k/*_adapter_* switch to the multi-scale adapter.
_base_ = ['./vit_adapter_fpn.py']

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),  # pads training crops to the crop size of the data set
    backbone=dict(out_indices=(2, 5, 8, 11), drop_path_rate=0.1, adapter='single_scale'),
    neck=dict(num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # MMEngine reverts it to BN without DDP
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
