# FLSL ViT-S/8, ImageNet-1K. Patch 8 quadruples the token count (784 per global view, 144 per local):
# the sampling windows stay 3 (global) and 2 (local) on the finer grid. Batch 32 per GPU x 16 GPUs
# keeps the global batch at 512 (memory); lr scales with the global batch as in the ViT-S/16 recipe.
_base_ = ["./_base_/flsl_vits16_in1k.py"]
model = dict(arch="vit_small_patch8_224")
data = dict(batch_size_per_gpu=32)
