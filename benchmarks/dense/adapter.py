"""Multi-scale adapter: four single-scale ViT feature maps -> a stride 4/8/16/32 pyramid.

The ViT produces every selected block output at the patch stride ``p``; a detection FPN expects
strides 4, 8, 16 and 32. The adapter up-samples with 2x2 stride-2 transposed convolutions and
down-samples with max-pooling:

=====  =========================================================  ==============================
level  patch 16 (input stride 16)                                 patch 8 (input stride 8)
=====  =========================================================  ==============================
1      deconv 2x2/2 -> BatchNorm -> GELU -> deconv 2x2/2 (4)      deconv 2x2/2 (4)
2      deconv 2x2/2 (8)                                           identity (8)
3      identity (16)                                              max-pool 2x2/2 (16)
4      max-pool 2x2/2 (32)                                        max-pool 4x4/4 (32)
=====  =========================================================  ==============================

Any other patch size ``p`` (14 for DINOv2, EVA-02, CLIP-L/14; 32 ...) has no integer ratio to
every stride, so its maps are first resized bilinearly from the ``ceil(H/p) x ceil(W/p)`` token
grid to the ``ceil(H/16) x ceil(W/16)`` grid of stride 16 and then take the patch-16 column:
every level lands exactly on the grid the FPN, the anchors and the RoI extractor assume for its
stride, and the learned layers are the patch-16 ones (docs/dense.md, "Any patch size").

:class:`SingleScaleLayout` is the authors' released segmentation layout: no adapter, all four
outputs stay at the patch stride.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.dist import is_distributed


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``'BN'`` (BatchNorm2d), ``'SyncBN'`` (SyncBatchNorm) or ``'auto'``.

    ``'auto'`` picks SyncBatchNorm when a multi-process CUDA job is running (torch's SyncBatchNorm
    only runs on GPUs) and BatchNorm2d otherwise; it is resolved when the module is built, which
    MMEngine's runner does after initialising the process group.
    """
    if kind == "auto":
        kind = "SyncBN" if is_distributed() and torch.cuda.is_available() else "BN"
    if kind == "BN":
        return nn.BatchNorm2d(channels)
    if kind == "SyncBN":
        return nn.SyncBatchNorm(channels)
    raise ValueError(f"unknown norm {kind!r}: use 'BN', 'SyncBN' or 'auto'")


def _deconv(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)


class MultiScaleAdapter(nn.Module):
    """Maps four ``[B, C, H/p, W/p]`` maps to ``[B, C, H/4, W/4]``, ``[B, C, H/8, W/8]``,
    ``[B, C, H/16, W/16]``, ``[B, C, H/32, W/32]`` (sizes floor-divided by the pooling).

    Args:
        channels: ViT width ``C``.
        patch_size: any patch side; 16 and 8 map natively, others through the stride-16 grid.
        norm: normalisation between the two deconvolutions of the patch-16 level 1 (see
            :func:`norm_layer`).
    """

    def __init__(self, channels: int, patch_size: int, norm: str = "auto"):
        super().__init__()
        if patch_size == 8:
            levels = [_deconv(channels),
                      nn.Identity(),
                      nn.MaxPool2d(kernel_size=2, stride=2),
                      nn.MaxPool2d(kernel_size=4, stride=4)]
        else:
            levels = [nn.Sequential(_deconv(channels), norm_layer(norm, channels), nn.GELU(),
                                    _deconv(channels)),
                      _deconv(channels),
                      nn.Identity(),
                      nn.MaxPool2d(kernel_size=2, stride=2)]
        self.patch_size = int(patch_size)
        self.resample_to_16 = patch_size not in (8, 16)
        self.levels = nn.ModuleList(levels)
        self.strides = (4, 8, 16, 32)

    def forward(self, maps: Sequence[torch.Tensor], image_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        """``maps`` at the patch stride; ``image_size`` ``(H, W)`` (pixels, before padding to the
        patch) sets the stride-16 grid ``ceil(H/16) x ceil(W/16)`` for patch sizes other than 8
        and 16 (default: the maps' grid times ``p / 16``, rounded up)."""
        if len(maps) != len(self.levels):
            raise ValueError(f"the adapter takes {len(self.levels)} maps, got {len(maps)}")
        if self.resample_to_16:
            h, w = image_size if image_size is not None else (
                maps[0].shape[-2] * self.patch_size, maps[0].shape[-1] * self.patch_size)
            grid = (-(-h // 16), -(-w // 16))
            maps = [F.interpolate(x, size=grid, mode="bilinear", align_corners=False) for x in maps]
        return tuple(level(x) for level, x in zip(self.levels, maps))


class SingleScaleLayout(nn.Module):
    """The authors' segmentation layout: the four ``[B, C, H/p, W/p]`` maps pass unchanged."""

    def __init__(self, patch_size: int):
        super().__init__()
        self.strides = (patch_size,) * 4

    def forward(self, maps: Sequence[torch.Tensor], image_size=None) -> tuple[torch.Tensor, ...]:
        return tuple(maps)


__all__ = ["MultiScaleAdapter", "SingleScaleLayout", "norm_layer"]
