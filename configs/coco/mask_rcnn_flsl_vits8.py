# FLSL ViT-S/8 + multi-scale adapter + FPN, Mask R-CNN 1x on COCO 2017 (docs/dense.md; docs/tables.md
# "COCO detection and instance segmentation", FLSL ViT-S/8 row: 46.5 AP box / 42.1 AP mask).
#
#   tools/dist_train.sh configs/coco/mask_rcnn_flsl_vits8.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/flsl_vits8.safetensors data_root=PATH/coco/
#   tools/dist_test.sh configs/coco/mask_rcnn_flsl_vits8.py work_dirs/mask_rcnn_flsl_vits8/epoch_12.pth 8
#
# checkpoint  model.backbone.init_cfg.checkpoint: any ViT-S/8 encoder file accepted by
#             tools/convert_checkpoint.py (our export, the authors' FLSL release, DINO, iBOT, timm);
#             loaded strictly, 6 heads and patch 8 checked against it.
# data_root   the COCO 2017 folder (train2017/, val2017/, annotations/instances_{train,val}2017.json).
#             Edit it below or pass --cfg-options data_root=PATH/: tools/train.py and tools/test.py
#             re-root every dataset and evaluator path that starts with the old value.
# batch       lr 5e-5 is for a total batch of 8 (8 GPUs x 1 image): auto_scale_lr (base_batch_size 8)
#             rescales it linearly to GPUs x train_dataloader.batch_size.
# Everything else (data, schedule, adapter layout: the patch-8 variant is chosen from the patch size)
# is the ViT-S/16 row's.
_base_ = ['./mask_rcnn_flsl_vits16.py']

model = dict(
    backbone=dict(
        arch='vit_small_patch8_224',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits8.safetensors')))
