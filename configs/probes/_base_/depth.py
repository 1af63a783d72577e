# DINOv2 depth linear probe on NYU Depth v2 (lin.1), restated from dinov2/eval/depth and the
# depth toolbox configs it runs on (docs/probes.md gives the source and confidence of each value)
protocol = 'depth_lin1'
dataset = dict(name='nyu', train_split='train', test_split='test', min_depth=1e-3, max_depth=10.0)
# raw block outputs (no final LayerNorm); class token concatenated when the encoder has one
model = dict(layers='last', norm=False, class_token='auto')
# the hub builder writes max_depth=80 into the linear head; the NYU configs use 10
head = dict(n_bins=256, upsample=4, max_depth=10.0)
train = dict(
    crop_size=(416, 544), rotate_degree=2.5,
    iters=38400, batch_size=2, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01,
    warmup_iters=12800, warmup_ratio=1e-3, min_lr_ratio=1e-8, grad_clip=35.0,
    momentum='onecycle',          # mmcv OneCycle beta1 0.95 -> 0.85 -> 0.95 ('none': AdamW's betas)
    sigloss_warmup=100,           # SigLoss calls without the variance term
    gradient_loss_weight=0.5,     # the reference's GradientLoss as written (0 at batch 2)
    views=0, data_seed=0, seeds=[0])
test = dict(flip=True, eigen_crop=True)
cache = dict(root=None, batch_size=4, shard_size=128)
