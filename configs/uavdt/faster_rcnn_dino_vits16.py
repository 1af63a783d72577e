# DINO ViT-S/16 baseline row of the UAVDT table: the FLSL row's detector, schedule, data and
# evaluation (./faster_rcnn_flsl_vits16.py) with the DINO release's ViT-S/16 encoder
# (dino_deitsmall16_pretrain.pth: class token and 1+N position embedding). The backbone runs it as
# DINO's ViT: class token prepended and dropped from the maps, positions by DINO's rule (+0.1).
# Which baselines the paper's UAVDT table lists is to be confirmed (docs/tables.md); any other ViT-S/16
# row (iBOT, timm, another FLSL export) is this file with another checkpoint:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
#
#   tools/dist_train.sh configs/uavdt/faster_rcnn_dino_vits16.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/dino_deitsmall16_pretrain.pth data_root=PATH/uavdt/
_base_ = ['./faster_rcnn_flsl_vits16.py']

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dino_deitsmall16_pretrain.pth')))
