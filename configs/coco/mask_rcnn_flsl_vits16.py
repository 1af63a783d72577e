# FLSL ViT-S/16 + multi-scale adapter + FPN, Mask R-CNN 1x on COCO 2017 (docs/dense.md; docs/tables.md
# "COCO detection and instance segmentation", FLSL ViT-S/16 row: 44.9 AP box / 40.8 AP mask).
#
#   tools/dist_train.sh configs/coco/mask_rcnn_flsl_vits16.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/flsl_vits16.safetensors data_root=PATH/coco/
#   tools/dist_test.sh configs/coco/mask_rcnn_flsl_vits16.py work_dirs/mask_rcnn_flsl_vits16/epoch_12.pth 8
#
# checkpoint  model.backbone.init_cfg.checkpoint: any ViT-S/16 encoder file accepted by
#             tools/convert_checkpoint.py (our export, the authors' FLSL release, DINO, iBOT, timm);
#             loaded strictly, 6 heads and patch 16 checked against it.
# data_root   the COCO 2017 folder (train2017/, val2017/, annotations/instances_{train,val}2017.json).
#             Edit it below or pass --cfg-options data_root=PATH/: tools/train.py and tools/test.py
#             re-root every dataset and evaluator path that starts with the old value.
# batch       lr 5e-5 is for a total batch of 8 (8 GPUs x 1 image): auto_scale_lr (base_batch_size 8)
#             rescales it linearly to GPUs x train_dataloader.batch_size.
_base_ = [
    '../_base_/models/mask_rcnn_vit_fpn.py',
    '../_base_/datasets/coco_instance_detr_aug.py',
    '../_base_/schedules/adamw_1x.py',
    '../_base_/default_runtime_det.py',
]

data_root = '{{$COCO_ROOT:data/coco/}}'  # COCO_ROOT=DIR moves it for any tool, ours or MMDetection's

model = dict(
    backbone=dict(
        arch='vit_small_patch16_224',
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.05,
        adapter='multiscale',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
