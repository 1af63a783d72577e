# FLSL ViT-B/16, ImageNet-1K. The authors' README: "change vit_small to vit_base" in the ViT-S
# command, which sets no mean-shift scale, so their parser defaults ran: --meanshift_sa_temp
# 0.1 / sqrt(384) and --meanshift_ca_temp 0.2 / sqrt(384), written with ViT-S's width 384 and not
# rescaled for C = 768 (their code multiplies the dot products by these values). We follow that
# command; the 1/sqrt(C) form would be 0.1 / sqrt(768) and 0.2 / sqrt(768) (docs/method.md).
_base_ = ["./_base_/flsl_vits16_in1k.py"]
model = dict(arch="vit_base_patch16_224")
loss = dict(beta_sa=0.1 / 384 ** 0.5, beta_ca=0.2 / 384 ** 0.5)
train = dict(amp="bf16")
