# MMDetection's Mask R-CNN (RPN, box and mask heads, anchors, assigners, samplers and test
# settings of mmdet::_base_/models/mask-rcnn_r50_fpn.py, unchanged) with its ResNet-50 replaced by
# the FLSL ViT-S/16 + multi-scale adapter (benchmarks/dense/backbone.py, docs/dense.md). The FPN
# keeps MMDetection's 256 channels and 5 outputs; it reads four 384-channel maps at strides
# 4/8/16/32 instead of ResNet's 256..2048 channels.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['benchmarks.dense'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='FLSLViT',
        arch='vit_small_patch16_224',     # 6 heads, width 384; checked against the checkpoint
        out_indices=(3, 5, 7, 11),        # 0-based blocks feeding strides 4, 8, 16, 32
        drop_path_rate=0.05,
        frozen_stages=-1,
        adapter='multiscale',
        norm='auto',                      # the adapter's BN: SyncBN in multi-GPU jobs, BN otherwise
        # loaded strictly from any format of tools/convert_checkpoint.py
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]))
