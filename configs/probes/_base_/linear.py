# DINOv2 linear semantic segmentation ("lin."), restated from its mmseg 0.27 config
# (dinov2_vitb14_ade20k_linear_config.py); docs/probes.md gives the source of every value.
protocol = 'linear'
dataset = dict(name='ade20k', train_split='training', val_split='validation', num_classes=150,
               reduce_zero_label=True)
# the selected blocks' outputs after the final LayerNorm, patch tokens only
model = dict(layers='last', norm=True)
train = dict(
    short_side=512, ratio_range=(0.5, 2.0), crop_size=(512, 512), cat_max_ratio=0.75,
    iters=40000, batch_size=16, lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4,
    warmup_iters=1500, warmup_ratio=1e-6, poly_power=1.0, min_lr=0.0,
    # augmented views cached per training image; 0 = one per epoch of the schedule (exact)
    views=0, data_seed=0, seeds=[0])
test = dict(short_side=512, ratios=[1.0], flip=False, crop_size=(512, 512), stride=(341, 341))
# root None: OUT/feature_cache
cache = dict(root=None, batch_size=8, shard_size=256)
