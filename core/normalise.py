"""Input normalisation of images for an encoder, written once: ``(x / scale - mean) / std`` per
RGB channel, with the statistics the encoder was trained with (ImageNet's unless its family
says otherwise; DINO's DAVIS script uses its own, :data:`core.constants.DINO_DAVIS_STD`)."""
from __future__ import annotations

from typing import Sequence

import torch

from .constants import IMAGENET_MEAN, IMAGENET_STD


def _channels(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """``values`` as a ``[3, 1, 1]`` tensor on ``like``'s device, float32."""
    return torch.tensor(values, dtype=torch.float32, device=like.device).view(3, 1, 1)


def normalise(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
              scale: float = 255.0) -> torch.Tensor:
    """``(x / scale - mean) / std`` for images ``x`` ``[..., 3, H, W]`` with values in ``[0, scale]``
    (uint8 or float); float32 out. ``scale=1`` for values already in ``[0, 1]``."""
    x = x.float() if scale == 1.0 else x.float() / scale
    return (x - _channels(mean, x)) / _channels(std, x)


def normalise_affine(mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                     scale: float = 255.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` ``[3, 1, 1]`` with ``x * a + b`` = :func:`normalise` up to rounding: the form an
    in-place ``mul_ / add_`` into a preallocated batch takes (the pretraining loader)."""
    mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    return (1.0 / (scale * std_t)).view(3, 1, 1), (-(mean_t / std_t)).view(3, 1, 1)


__all__ = ["normalise", "normalise_affine"]
