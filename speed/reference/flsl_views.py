"""The authors' multi-crop augmentation (``DataAugmentationFLSL`` of the FLSL release),
restated plainly, for speed/bench_views.py and the equivalence tests only.

What the authors' transform does with one RGB PIL image (ImageFolder's loader: ``Image.open``
then ``convert("RGB")``):

1. view 0: torchvision ``RandomResizedCrop(224, scale=(0.8, 1), bicubic)`` of the image;
2. view 1: ``RandomResizedCrop(224, scale=(0.5, 1), bicubic)`` of view 0 (the resized crop);
3. views 2..: ``RandomResizedCrop(96, scale=(0.05, 0.4), bicubic)`` of view 0, two of them;
   a token-sampling mask per student view (global grid 14, window 3; local grid 6, window 2);
4. every view (teacher included) then goes through the same photometric chain, on PIL images:
   ``RandomApply([ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)`` (torchvision: the four factors
   in a random order), ``RandomGrayscale(p=0.2)``, then with probability 0.5 a Gaussian blur
   applied with probability 0.5, otherwise a Gaussian blur with probability 0.1 followed by
   ``ImageOps.solarize`` (threshold 128) with probability 0.2 (blur radius uniform in
   [0.1, 2], PIL's ``ImageFilter.GaussianBlur``), then ``ToTensor`` and ImageNet
   ``Normalize``;
5. the un-augmented views are also normalised and returned (the release uses them only in its
   multi-stage mode, but computes them for every image).

The choices among the blur / solarisation branches draw from Python's ``random`` module as the
release does; torchvision's transforms draw from torch's generator.
"""
from __future__ import annotations

import random

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from core.constants import IMAGENET_MEAN, IMAGENET_STD


def load_rgb(path) -> Image.Image:
    """torchvision ImageFolder's default loader."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


class _Blur:
    def __init__(self, p: float):
        self.p = p

    def __call__(self, img):
        if random.random() > self.p:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class _Solarize:
    def __init__(self, p: float):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


class _OneOf:
    def __init__(self, first, second, p: float):
        self.first, self.second, self.p = first, second, p

    def __call__(self, img):
        return self.first(img) if random.random() < self.p else self.second(img)


def _mask(grid: int, window: int) -> torch.Tensor:
    """First token of every ``window x window`` cell of the largest window-divisible square,
    the square placed at a uniformly chosen corner; ``[grid * grid]`` bool."""
    cells = grid // window
    side = cells * window
    square = torch.zeros(side, side)
    square[::window, ::window] = 1
    if grid == side:
        return square.flatten() > 0
    full = torch.zeros(grid, grid)
    u = random.random()
    rows = slice(0, side) if u < 0.5 else slice(grid - side, grid)
    cols = slice(0, side) if u < 0.25 or 0.5 <= u < 0.75 else slice(grid - side, grid)
    full[rows, cols] = square
    return full.flatten() > 0


class AuthorsViews:
    """The authors' transform: PIL image -> ``{"crops": [...], "augs": [...], "masks": [...]}``
    (4 normalised un-augmented views, the same 4 views augmented, masks of the student views)."""

    def __init__(self, global_size: int = 224, local_size: int = 96, n_local: int = 2,
                 teacher_scale=(0.8, 1.0), global_scale=(0.5, 1.0), local_scale=(0.05, 0.4),
                 patch_size: int = 16, global_window: int = 3, local_window: int = 2,
                 unaugmented: bool = True):
        self.unaugmented = unaugmented      # False: skip step 5 (for comparison only)
        bicubic = T.InterpolationMode.BICUBIC
        self.teacher_crop = T.RandomResizedCrop(global_size, scale=teacher_scale, interpolation=bicubic)
        self.global_crop = T.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic)
        self.local_crop = T.RandomResizedCrop(local_size, scale=local_scale, interpolation=bicubic)
        self.n_local = n_local
        self.global_grid, self.local_grid = global_size // patch_size, local_size // patch_size
        self.global_window, self.local_window = global_window, local_window
        self.normalize = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        self.photometric = T.Compose([
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            _OneOf(_Blur(0.5), T.Compose([_Blur(0.1), _Solarize(0.2)]), p=0.5),
            self.normalize,
        ])

    def __call__(self, img: Image.Image) -> dict:
        base = self.teacher_crop(img)
        crops = [base, self.global_crop(base)]
        masks = [torch.empty(0), _mask(self.global_grid, self.global_window)]
        for _ in range(self.n_local):
            crops.append(self.local_crop(base))
            masks.append(_mask(self.local_grid, self.local_window))
        augs = [self.photometric(c) for c in crops]
        return {"crops": [self.normalize(c) for c in crops] if self.unaugmented else [],
                "augs": augs, "masks": masks}


def photometric_pil(img: Image.Image, params) -> Image.Image:
    """The same PIL operations as the authors' chain, with the choices given explicitly
    (a :class:`pretrain.photometric.PhotometricParams`): the independent computation that the
    project's array implementation is compared with."""
    if params.jitter:
        ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        factors = (params.brightness, params.contrast, params.saturation, params.hue)
        for op in params.order:
            img = ops[op](img, factors[op])
    if params.grayscale:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if params.blur_radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=params.blur_radius))
    if params.solarize:
        img = ImageOps.solarize(img, 128)
    return img


__all__ = ["AuthorsViews", "load_rgb", "photometric_pil"]
