# DAVIS-style label propagation of the end-to-end demo (tools/demo.sh): DINO's protocol
# (../davis/_base_/davis_protocol.py: 1 + 7 context frames, radius 12, top-5, temperature 0.1)
# on the demo's tiny ViT and its generated videos. The frames are small (128 px short side), so
# the network sees them at their own size instead of 480 px: the demo's encoder was pretrained on
# 112 px views, and upscaling 4x would show it textures at a scale it never saw.
_base_ = ['../davis/_base_/davis_protocol.py']

arch = 'vit_tiny'
patch_size = 16
short_side = 128
multiple = 16
