# FLSL ViT-S/16 on ImageNet-1K: the authors' recipe (README command of their release; docs/method.md s.4).
# Choices where the authors' README command and argument parser disagree (docs/method.md s.6): we follow
# the command they ran: K = 4096 prototypes, 300 epochs, final teacher temperature 0.07 reached after
# a 30-epoch warm-up from 0.04, local crop scale (0.05, 0.4), loss coefficients (0.03, 1, 5).
# Where the command sets nothing, their parser default is what ran: lr warm-up --warmup_epochs 0.1,
# a fraction of the epochs (int(0.1 * 300) = 30 epochs); mean-shift scales 0.1 / sqrt(384) and
# 0.2 / sqrt(384); fp16 autocast with a GradScaler (--use_fp16 True), see train.amp below.
model = dict(
    arch="vit_small_patch16_224",   # timm name; no class token, fixed sin-cos positions (224/16 grid)
    # Local crops (96 px, 6x6 tokens) resize the 14x14 table by the authors' rule: bicubic with
    # scale factor (g + 0.1) / 14, no antialiasing (pretrain/encoder.py POSITION_RULES["dino"]);
    # timm's antialiased size-based resampling differs from it by 4.9% (relative) on that grid.
    arch_kwargs=dict(),              # timm overrides (depth, img_size, ...)
    drop_path_rate=0.1,              # student only; the teacher has none
    out_dim=4096,                    # K
    hidden_dim=2048,
    bottleneck_dim=256,
    norm_last_layer=True,
)
data = dict(
    root="data/imagenet/train",      # ImageNet layout (root/<class>/<image>) or a flat image folder
    batch_size_per_gpu=64,           # x 8 GPUs = 512
    num_workers=10,
    on_corrupt="error",              # or "skip": replace an unreadable image by the next one, with a warning
    views=dict(
        global_size=224, local_size=96, n_local=2,
        teacher_scale=(0.8, 1.0), global_scale=(0.5, 1.0), local_scale=(0.05, 0.4),
        global_window=3, local_window=2, random_sampling=False,
        photometric_on_device=False,  # True: loader yields uint8 views, the jitter/blur runs batched on the GPU
    ),
)
loss = dict(
    student_temp=0.1,
    warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=30,
    coefficients=(0.03, 1.0, 5.0),  # (upsilon: mean-shift, eta: k-means, gamma: volume maximisation)
    ms_coefficient_start=None,       # set a value to follow a cosine schedule to upsilon
    beta_sa=0.1 / 384 ** 0.5,        # intra-view attention scale (multiplies the dot product)
    beta_sa_start=None,
    beta_ca=0.2 / 384 ** 0.5,        # inter-view (teacher) attention scale
    beta_ca_start=None,
    volume_maximization=True,
    centering=False,                 # DINO-style teacher centering instead of the regulariser
)
optim = dict(
    lr=5e-4,                         # per 256 images of global batch; linear scaling
    min_lr=1e-6,
    warmup_epochs=30,                # the authors' 0.1 x 300 epochs (their parser: a fraction)
    weight_decay=0.04, weight_decay_end=0.4,   # cosine; none on biases and 1-D parameters
    betas=(0.9, 0.999),
    clip_grad=3.0,                   # per-parameter gradient norm (DINO-family recipe)
    freeze_last_layer=1,             # epochs with the prototypes frozen
    momentum_teacher=0.996,          # cosine to 1
)
train = dict(
    epochs=300,
    # "bf16" | "fp16" | None; ignored on CPU (fp32). The authors ran fp16 + GradScaler. Under either
    # setting the head's normalisation and prototype layer and the loss run in fp32
    # (pretrain/head.py, pretrain/loss.py): bf16 logits / 0.04 would lose ~0.04 nat of resolution.
    amp="bf16",
    seed=0,
    log_interval=50,                 # the log line and log.jsonl report images/s, model FLOP/s and MFU
    compile=None,                    # None | "blocks" | "model": torch.compile (GPU jobs; minutes to compile)
    compile_mode="default",          # or "reduce-overhead" (CUDA graphs), "max-autotune"
    checkpoint_interval=1000,        # iterations; also at the end
    saveckp_freq=20,                 # epochs: also keep checkpoint{epoch:04}.pth after epochs 0, 20, 40, ...
                                     # (the authors' --saveckp_freq; 0 = latest.pth only)
)
