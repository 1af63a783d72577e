"""Frozen patch features of an encoder: one place for the figures, the probes and the demo.

An image is read as RGB ``[H, W, 3]`` uint8, sized so both sides are whole patches, normalised
with the encoder's own input statistics and run through the frozen encoder; the patch tokens
(never the class, register or storage tokens) come back as a ``[h, w, C]`` map.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.constants import IMAGENET_MEAN, IMAGENET_STD
from core.errors import FLSLError


class ImageReadError(FLSLError, ValueError):
    """An image that cannot be decoded; the message names the file."""


def load_image(path: str | Path, short_side: int, patch: int) -> np.ndarray:
    """RGB image ``[H, W, 3]`` uint8 resized (bicubic) so its short side is ``short_side`` pixels,
    then both sides floored to a multiple of ``patch``."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # the bomb is neither
        raise ImageReadError(f"{path}: cannot read image ({err})") from None
    w, h = im.size
    s = short_side / min(w, h)
    nh, nw = max(patch, round(h * s) // patch * patch), max(patch, round(w * s) // patch * patch)
    return np.asarray(im.resize((nw, nh), Image.BICUBIC), dtype=np.uint8)


def to_tensor(image: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[1, 3, H, W]`` float, normalised by ``mean`` / ``std`` (RGB, for
    values in [0, 1]; ImageNet's unless the encoder was trained with others)."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x[None]


@torch.no_grad()
def patch_features(model: torch.nn.Module, image: np.ndarray, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD) -> torch.Tensor:
    """Post-LayerNorm patch tokens of ``image`` ``[H, W, 3]`` as ``[h, w, C]`` float32
    (h = H / patch, w = W / patch)."""
    from pretrain.encoder import encode, patch_size
    p = patch_size(model)
    h, w = image.shape[0] // p, image.shape[1] // p
    tokens = encode(model.eval(), to_tensor(image, mean, std))      # [1, h*w, C]
    return tokens[0].reshape(h, w, -1).float()


__all__ = ["ImageReadError", "load_image", "to_tensor", "patch_features"]
