# FLSL pretraining of the end-to-end demo (tools/demo.sh, benchmarks/demo/run.py): the tiny default
# (../pretrain/flsl_tiny_synthetic.py: ViT width 192, 4 blocks, patch 16, 112 px global and 64 px
# local views of generated 128 px images, K = 512) trained for 256 iterations (about 3 minutes on
# 2 CPU cores with one torch thread). Changes to the ViT-S/16 recipe, all for the short run:
#   momentum_teacher 0.9   with the recipe's 0.996 (cosine to 1) more than a third of the random
#                          initialisation would remain in the exported teacher after 256
#                          iterations (0.996 ** 256 = 0.36); 0.9 averages the last few dozen steps
#   lr 2e-3 per 256        x batch 32 / 256 = 2.5e-4 after a one-epoch warm-up (5e-3 made the
#                          prototype logits flat within 100 iterations: uniform predictions)
#   teacher temperature    0.04 throughout (the authors' argument-parser default) instead of the
#                          README command's 0.04 -> 0.07 warm-up: at 0.07 the short run's teacher
#                          targets stay near-uniform and the k-means term stops teaching
# Everything else (loss and its coefficients (0.03, 1, 5), token sampling, augmentations) is the
# recipe's.
_base_ = ["../pretrain/flsl_tiny_synthetic.py"]
data = dict(root="work_dirs/demo/data/pretrain", generate=dict(n_images=512, size=128, seed=0))
loss = dict(warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0)
optim = dict(lr=2e-3, warmup_epochs=1, momentum_teacher=0.9)
train = dict(epochs=16, log_interval=16, checkpoint_interval=64)
