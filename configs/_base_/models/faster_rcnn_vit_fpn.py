# MMDetection's Faster R-CNN (mmdet::_base_/models/faster-rcnn_r50_fpn.py, unchanged: its R-CNN
# assigner has match_low_quality=False) with the backbone of ./mask_rcnn_vit_fpn.py in place of
# ResNet-50 (docs/dense.md backbone; docs/uavdt.md detector). num_classes is set by the config
# that uses it.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
custom_imports = dict(imports=['benchmarks.dense'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='FLSLViT',
        arch='vit_small_patch16_224',
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.05,
        frozen_stages=-1,
        adapter='multiscale',
        norm='auto',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]))
