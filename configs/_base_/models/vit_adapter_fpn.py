# FLSL ViT-S/16 backbone (benchmarks/dense/backbone.py) + multi-scale adapter + FPN neck (docs/dense.md).
# Shared by every dense benchmark: Mask R-CNN (COCO), Faster R-CNN (UAVDT), Semantic FPN (ADE20K).
# A detector base adds `type`, `data_preprocessor` and its heads on top of this file:
#     _base_ = ['./vit_adapter_fpn.py']
#     model = dict(type='FasterRCNN', rpn_head=..., roi_head=..., ...)
# The backbone loads its encoder strictly from init_cfg.checkpoint (any format of
# tools/convert_checkpoint.py); set it with --cfg-options model.backbone.init_cfg.checkpoint=PATH.
custom_imports = dict(imports=['benchmarks.dense'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='FLSLViT',
        arch='vit_small_patch16_224',     # 6 heads, width 384; checked against the checkpoint
        out_indices=(3, 5, 7, 11),        # 0-based blocks feeding strides 4, 8, 16, 32
        drop_path_rate=0.05,
        frozen_stages=-1,
        adapter='multiscale',             # 'single_scale': the authors' segmentation layout
        norm='auto',                      # SyncBN in multi-GPU jobs, BN otherwise
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(type='FPN', in_channels=[384, 384, 384, 384], out_channels=256, num_outs=5))
