# DINO ViT-S/8 baseline row (DINO paper: J&F-Mean 69.9 under this protocol).
#
#   python tools/davis_propagate.py --config configs/davis/dino_vits8.py \
#       --checkpoint PATH/dino_deitsmall8_pretrain.pth --data-root PATH/DAVIS --out work_dirs/davis_dino_vits8 --evaluate
_base_ = ['./_base_/davis_protocol.py']

checkpoint = 'checkpoints/dino_deitsmall8_pretrain.pth'
arch = 'vit_small'
patch_size = 8
