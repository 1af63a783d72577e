# FLSL pretraining of the end-to-end demo (tools/demo.sh, benchmarks/demo.py): the tiny default
# (./../pretrain/flsl_tiny_synthetic.py: ViT width 192, 4 blocks, patch 16, 112 px global and
# 64 px local views, generated 128 px images) with a schedule that moves the teacher within the
# demo's few iterations on 2 CPU cores:
#   momentum_teacher 0.9   the recipe's 0.996 leaves ~70% of the random initialisation in the
#                          exported teacher after 100 iterations (0.996 ** 100 = 0.67); 0.9 -> 1
#                          (cosine) averages over the last few dozen steps instead
#   lr 5e-3 per 256        x batch 32 / 256 = 6.25e-4 after a one-epoch warm-up
# Everything else (loss, coefficients, token sampling, augmentations) is the ViT-S/16 recipe's.
_base_ = ["../pretrain/flsl_tiny_synthetic.py"]
data = dict(root="work_dirs/demo/data/pretrain", generate=dict(n_images=512, size=128, seed=0))
optim = dict(lr=5e-3, warmup_epochs=1, momentum_teacher=0.9)
train = dict(epochs=6, log_interval=4, checkpoint_interval=16)
