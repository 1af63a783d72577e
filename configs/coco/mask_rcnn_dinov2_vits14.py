# DINOv2 ViT-S/14 (no registers) + multi-scale adapter + FPN, Mask R-CNN 1x on COCO 2017: the FLSL
# ViT-S/16 row's recipe with the DINOv2 hub file (docs/families.md). The architecture, patch 14,
# LayerScale and DINOv2's position rule are read from the checkpoint (arch=None); the adapter
# resizes the stride-14 maps to the stride-16 grid before the pyramid (docs/dense.md).
#
#   tools/dist_train.sh configs/coco/mask_rcnn_dinov2_vits14.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/dinov2_vits14_pretrain.pth data_root=PATH/coco/
_base_ = ['./mask_rcnn_flsl_vits16.py']

model = dict(
    backbone=dict(
        arch=None,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth')))
