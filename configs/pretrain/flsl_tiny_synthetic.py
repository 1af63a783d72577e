# The default of tools/pretrain.sh: a small ViT (width 192, 4 blocks, patch 16) on 256 generated
# 128x128 images (textured shapes; written on first use, no download). Global views 112 px
# (7x7 tokens, 4 sampled with window 3), local views 64 px (4x4 tokens, 4 sampled with window 2).
# A few minutes on 2 CPU cores.
_base_ = ["./_base_/flsl_vits16_in1k.py"]
model = dict(arch="vit_tiny_patch16_224", arch_kwargs=dict(depth=4, img_size=112), drop_path_rate=0.1,
             out_dim=512, hidden_dim=512, bottleneck_dim=128)
data = dict(
    root="work_dirs/data/synthetic_pretrain",
    generate=dict(n_images=256, size=128, seed=0),   # written if the folder is missing
    batch_size_per_gpu=32, num_workers=2,
    views=dict(global_size=112, local_size=64, n_local=2),
)
loss = dict(beta_sa=0.1 / 192 ** 0.5, beta_ca=0.2 / 192 ** 0.5, warmup_teacher_temp_epochs=2)
optim = dict(lr=1e-3, warmup_epochs=1, freeze_last_layer=1)
train = dict(epochs=10, log_interval=8, checkpoint_interval=40)
