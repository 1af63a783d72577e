# FLSL ViT-B/16, ImageNet-1K. C = 768: the attention scales keep the authors' 1/sqrt(C) form.
_base_ = ["./_base_/flsl_vits16_in1k.py"]
model = dict(arch="vit_base_patch16_224")
loss = dict(beta_sa=0.1 / 768 ** 0.5, beta_ca=0.2 / 768 ** 0.5)
train = dict(amp="bf16")
