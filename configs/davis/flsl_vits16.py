# FLSL ViT-S/16 row of the DAVIS 2017 table (docs/tables.md; J&F-Mean, J-Mean, F-Mean).
#
#   python tools/davis_propagate.py --config configs/davis/flsl_vits16.py \
#       --checkpoint PATH/flsl_vits16.safetensors --data-root PATH/DAVIS --out work_dirs/davis_flsl_vits16 --evaluate
#
# checkpoint: our export (tools/export_backbone.py) or the authors' release; placeholder below.
_base_ = ['./_base_/davis_protocol.py']

checkpoint = 'checkpoints/flsl_vits16.safetensors'
arch = 'vit_small'
patch_size = 16
