# DINO ViT-S/16 baseline row (DINO paper: J&F-Mean 61.8 under this protocol). The DINO release
# keeps its class token in the sequence and DINO's position-embedding interpolation is used.
#
#   python tools/davis_propagate.py --config configs/davis/dino_vits16.py \
#       --checkpoint PATH/dino_deitsmall16_pretrain.pth --data-root PATH/DAVIS --out work_dirs/davis_dino_vits16 --evaluate
_base_ = ['./_base_/davis_protocol.py']

checkpoint = 'checkpoints/dino_deitsmall16_pretrain.pth'
arch = 'vit_small'
patch_size = 16
