# FLSL ViT-S/8 row of the DAVIS 2017 table (if the paper reports it).
#
#   python tools/davis_propagate.py --config configs/davis/flsl_vits8.py \
#       --checkpoint PATH/flsl_vits8.safetensors --data-root PATH/DAVIS --out work_dirs/davis_flsl_vits8 --evaluate
_base_ = ['./_base_/davis_protocol.py']

checkpoint = 'checkpoints/flsl_vits8.safetensors'
arch = 'vit_small'
patch_size = 8
