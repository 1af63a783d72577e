# FLSL ViT-S/16, ImageNet-1K, 300 epochs, 8 GPUs x 64 (paper: COCO / UAVDT / DAVIS ViT-S/16 rows).
#   tools/pretrain.sh configs/pretrain/flsl_vits16_in1k.py 8 --cfg-options data.root=PATH/train
_base_ = ["./_base_/flsl_vits16_in1k.py"]
