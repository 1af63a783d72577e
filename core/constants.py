"""Image normalisation constants (RGB, for pixel values scaled to [0, 1])."""

#: ImageNet channel mean, used by pretraining, the dense benchmarks and the figures
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: ImageNet channel standard deviation
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the standard deviation DINO's DAVIS script uses: its first channel is 0.228, not 0.229 (a typo
#: in DINO's code). Label propagation keeps it so that features, and masks, equal DINO's.
DINO_DAVIS_STD = (0.228, 0.224, 0.225)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DINO_DAVIS_STD"]
