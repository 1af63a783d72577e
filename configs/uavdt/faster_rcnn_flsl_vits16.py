# FLSL ViT-S/16 + multi-scale adapter + FPN, Faster R-CNN 1x on UAVDT (docs/uavdt.md; docs/tables.md
# "UAVDT detection", FLSL ViT-S/16 row). 3 classes: car, truck, bus.
#
#   .venv/bin/python tools/uavdt2coco.py --data-root PATH/uavdt --out PATH/uavdt/annotations
#   tools/dist_train.sh configs/uavdt/faster_rcnn_flsl_vits16.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PATH/flsl_vits16.safetensors data_root=PATH/uavdt/
#   tools/dist_test.sh configs/uavdt/faster_rcnn_flsl_vits16.py work_dirs/faster_rcnn_flsl_vits16/epoch_12.pth 8 \
#       --cfg-options data_root=PATH/uavdt/
#
# What is assumed (the paper's UAVDT detector and schedule are to be confirmed, docs/uavdt.md):
#   detector    Faster R-CNN with the COCO configs' backbone, adapter (strides 4/8/16/32) and FPN,
#               RPN and box head; 3 classes.
#   schedule    the COCO 1x schedule (_base_/schedules/adamw_1x.py): AdamW lr 5e-5 for a total batch
#               of 8 (auto_scale_lr), weight decay 0.05 (none on position embedding, class token,
#               norms, biases), 12 epochs, lr x0.1 at epochs 8 and 11, 1000 warm-up iterations;
#               drop-path 0.05; fp16 on CUDA devices (mixed_precision), fp32 on CPU.
#   data        every frame of the 30 train sequences (tools/uavdt2coco.py --every 1); to train on
#               every k-th frame, convert with --every k (the annotation files keep their names).
#   scale       shorter side 800, longer side <= 1333 (1024x540 -> 1333x703), flip 0.5.
#   ignore      anchors and proposals covered more than half by an ignore region (IoF > 0.5) are
#               neither positives nor negatives: the vehicles in those regions are not annotated.
#   evaluation  once, after the last epoch, on the 20 test sequences (no validation split exists):
#               COCO AP / AP50 / AP75 / AP_s/m/l, per-class AP and AP at IoU 0.7, all with
#               maxDets=100 (benchmarks/uavdt/metric.py).
_base_ = [
    '../_base_/models/faster_rcnn_vit_fpn.py',
    '../_base_/datasets/uavdt_detection.py',
    '../_base_/schedules/adamw_1x.py',
    '../_base_/default_runtime_det.py',
]
custom_imports = dict(imports=['benchmarks.dense', 'benchmarks.uavdt.metric'],
                      allow_failed_imports=False)

data_root = '{{$UAVDT_ROOT:data/uavdt/}}'  # UAVDT_ROOT=DIR moves it for any tool

model = dict(
    backbone=dict(
        arch='vit_small_patch16_224',
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.05,
        adapter='multiscale',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]),
    roi_head=dict(bbox_head=dict(num_classes=3)),
    train_cfg=dict(
        rpn=dict(assigner=dict(ignore_iof_thr=0.5)),
        rcnn=dict(assigner=dict(ignore_iof_thr=0.5))))

train_cfg = dict(val_interval=12)  # evaluate the test split once, at the end

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/uavdt_test.json')
test_evaluator = val_evaluator
