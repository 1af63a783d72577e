"""Multi-crop views and token-sampling masks (method.md section 2).

Every random choice here draws from torch's global generator, which the data set seeds per
(seed, epoch, image index) inside ``torch.random.fork_rng``: the views of an image are a pure
function of those three numbers, whatever the worker count, so training resumes exactly.
"""
from __future__ import annotations

import dataclasses

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

from core.constants import IMAGENET_MEAN, IMAGENET_STD
_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row side, column side): 0 = top/left, 1 = bottom/right


def token_sampling_mask(grid: int, window: int, random_in_window: bool = False,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask ``[grid * grid]`` (row-major) selecting one token per ``window x window``
    cell of the largest window-divisible square, placed at a uniformly chosen corner.

    The selected token is the cell's first (top-left) one, or a uniformly random one when
    ``random_in_window``. Global 224/16 views (grid 14, window 3) select 16 of 196 tokens; local
    96/16 views (grid 6, window 2) select 9 of 36.
    """
    cells = grid // window
    if cells < 1:
        raise ValueError(f"token grid {grid} is smaller than the sampling window {window}")
    side = cells * window
    corner = _CORNERS[int(torch.randint(4, (1,), generator=generator))]
    top = corner[0] * (grid - side)
    left = corner[1] * (grid - side)
    rows = top + window * torch.arange(cells).repeat_interleave(cells)
    cols = left + window * torch.arange(cells).repeat(cells)
    if random_in_window:
        offset = torch.randint(window * window, (cells * cells,), generator=generator)
        rows = rows + offset // window
        cols = cols + offset % window
    mask = torch.zeros(grid * grid, dtype=torch.bool)
    mask[rows * grid + cols] = True
    return mask


class _RandomApply:
    def __init__(self, fn, p: float):
        self.fn, self.p = fn, p

    def __call__(self, img):
        return self.fn(img) if float(torch.rand(())) < self.p else img


def _gaussian_blur(img: Image.Image) -> Image.Image:
    radius = 0.1 + float(torch.rand(())) * (2.0 - 0.1)
    return img.filter(ImageFilter.GaussianBlur(radius=radius))


class PhotometricAugment:
    """Colour jitter (0.4, 0.4, 0.2, 0.1) p=0.8, grayscale p=0.2, then with p=0.5 a Gaussian blur
    applied with p=0.5, otherwise a blur with p=0.1 followed by solarisation with p=0.2;
    then tensor conversion and ImageNet normalisation. PIL image -> ``[3, H, W]`` float."""

    def __init__(self):
        self.jitter = T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)
        self.gray = T.RandomGrayscale(p=0.2)
        self.strong_blur = _RandomApply(_gaussian_blur, 0.5)
        self.weak_blur = _RandomApply(_gaussian_blur, 0.1)
        self.solarize = _RandomApply(lambda im: ImageOps.solarize(im, 128), 0.2)
        self.to_tensor = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = self.gray(self.jitter(img))
        if float(torch.rand(())) < 0.5:
            img = self.strong_blur(img)
        else:
            img = self.solarize(self.weak_blur(img))
        return self.to_tensor(img)


@dataclasses.dataclass
class ViewConfig:
    global_size: int = 224
    local_size: int = 96
    n_local: int = 2
    teacher_scale: tuple = (0.8, 1.0)
    global_scale: tuple = (0.5, 1.0)
    local_scale: tuple = (0.05, 0.4)
    patch_size: int = 16
    global_window: int = 3
    local_window: int = 2
    random_sampling: bool = False


class MultiCropViews:
    """PIL image -> dict of views and token indices.

    Output: ``teacher [3, G, G]`` (view 0), ``global [3, G, G]`` (view 1, a crop of view 0),
    ``locals [L, 3, l, l]`` (crops of view 0), ``global_index [n_g]`` and ``local_index [L, n_l]``
    (row-major positions of the sampled tokens).
    """

    def __init__(self, cfg: ViewConfig):
        self.cfg = cfg
        bicubic = T.InterpolationMode.BICUBIC
        self.teacher_crop = T.RandomResizedCrop(cfg.global_size, scale=tuple(cfg.teacher_scale), interpolation=bicubic)
        self.global_crop = T.RandomResizedCrop(cfg.global_size, scale=tuple(cfg.global_scale), interpolation=bicubic)
        self.local_crop = T.RandomResizedCrop(cfg.local_size, scale=tuple(cfg.local_scale), interpolation=bicubic)
        self.photometric = PhotometricAugment()
        self.global_grid = cfg.global_size // cfg.patch_size
        self.local_grid = cfg.local_size // cfg.patch_size

    def _index(self, grid: int, window: int) -> torch.Tensor:
        return token_sampling_mask(grid, window, self.cfg.random_sampling).nonzero().squeeze(1)

    def __call__(self, img: Image.Image) -> dict:
        base = self.teacher_crop(img)
        views = {
            "teacher": self.photometric(base),
            "global": self.photometric(self.global_crop(base)),
            "locals": torch.stack([self.photometric(self.local_crop(base)) for _ in range(self.cfg.n_local)]),
            "global_index": self._index(self.global_grid, self.cfg.global_window),
            "local_index": torch.stack([self._index(self.local_grid, self.cfg.local_window)
                                        for _ in range(self.cfg.n_local)]),
        }
        return views
