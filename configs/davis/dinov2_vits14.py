# DINOv2 ViT-S/14 under DINO's DAVIS protocol (docs/davis.md): the class token takes part in
# attention and is dropped from the features, LayerScale and DINOv2's position rule are the
# checkpoint's (docs/families.md).
#
#   python tools/davis_propagate.py --config configs/davis/dinov2_vits14.py \
#       --checkpoint PATH/dinov2_vits14_pretrain.pth --data-root PATH/DAVIS --out work_dirs/davis_dinov2_vits14 --evaluate
_base_ = ['./_base_/davis_protocol.py']

checkpoint = 'checkpoints/dinov2_vits14_pretrain.pth'
arch = 'vit_small'
patch_size = 14
# frames must divide into 14-pixel patches: short side 476 = 34 x 14 (DINO's 480 is not a multiple
# of 14), long side floored to a multiple of 14
short_side = 476
multiple = 14
