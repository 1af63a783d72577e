"""Frames in, patch features out: DINO's frame preprocessing and the encoder of any supported
checkpoint, run the way it was trained.

* our exports / training states (no class token): :func:`pretrain.encoder.encode`, positions
  resampled by timm;
* DINO / iBOT (and the authors' FLSL release when it has a class token): the class token stays
  in the sequence, the position embedding is resized with DINO's rule
  (:func:`dino_pos_embed`), only the output drops the class token;
* timm checkpoints with a class token: timm's own forward and resampling.

Features are the last block's tokens after the final LayerNorm, ``[B, h * w, C]`` with
``h = H / p``, ``w = W / p``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from core.constants import DINO_DAVIS_STD, IMAGENET_MEAN

from pretrain.checkpoint import CheckpointError, load_encoder_weights, load_strict
from pretrain.encoder import build_encoder, encode

from .io import DavisError

WIDTHS = {"vit_tiny": 192, "vit_small": 384, "vit_base": 768, "vit_large": 1024}
# keys some releases carry that the encoder's forward pass never uses
_UNUSED_KEYS = ("masked_embed",)


# ------------------------------------------------------------------------------------ frames
def resized_size(height: int, width: int, short_side: int = 480, multiple: int = 64) -> tuple[int, int]:
    """Network input size ``(H, W)`` of a ``height x width`` frame (DINO's rule).

    The short side becomes ``short_side`` and the long side is scaled with it and floored to a
    multiple of ``multiple``. A square frame keeps ``short_side`` as its height and floors its
    width (480x480 -> 480x448), as DINO's frame reader does; labels use the same size.
    """
    if height > width:
        w = short_side
        h = (short_side * height // width) // multiple * multiple
    else:
        h = short_side
        w = (short_side * width // height) // multiple * multiple
    if h <= 0 or w <= 0:
        raise ValueError(f"a {width}x{height} frame is too elongated for short side {short_side} "
                         f"and multiple {multiple}")
    return h, w


def read_frame(path: str | Path, short_side: int = 480, multiple: int = 64) -> tuple[torch.Tensor, tuple[int, int]]:
    """Frame as the network sees it ``[3, H, W]`` float32 (RGB, colour-normalised) and its
    original ``(height, width)``.

    Decoded and resized (bilinear) with OpenCV on uint8, as in DINO's evaluation script.
    """
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DavisError(f"{path}: frame missing or not a readable image")
    h0, w0 = img.shape[:2]
    h, w = resized_size(h0, w0, short_side, multiple)
    img = cv2.resize(img, (w, h))
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(DINO_DAVIS_STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std, (h0, w0)


# ------------------------------------------------------------------------------------ encoders
def dino_pos_embed(pos_embed: torch.Tensor, height: int, width: int, patch: int) -> torch.Tensor:
    """DINO's position embedding for an image of ``height x width`` pixels.

    ``pos_embed``: ``[1, 1 + N, C]`` (class slot first, square grid of N). Returned unchanged
    when the grid is the trained one and the image square; otherwise the patch part is resized
    bicubically with ``scale_factor = ((H/p + 0.1) / sqrt(N), (W/p + 0.1) / sqrt(N))`` (no
    antialiasing, source coordinates from the scale factor, not from the sizes).
    Returns ``[1, 1 + (H/p) * (W/p), C]``.
    """
    n = pos_embed.shape[1] - 1
    gh, gw = height // patch, width // patch
    if gh * gw == n and height == width:
        return pos_embed
    dim = pos_embed.shape[-1]
    side = math.sqrt(n)
    grid = pos_embed[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side), mode="bicubic")
    if grid.shape[-2:] != (gh, gw):
        raise RuntimeError(f"position embedding resized to {tuple(grid.shape[-2:])}, expected {(gh, gw)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([pos_embed[:, :1], grid], dim=1)


class FeatureExtractor(nn.Module):
    """Patch features of a ViT encoder. ``rule`` is how the encoder runs: ``"flsl"`` (no class
    token, timm resampling of the fixed positions), ``"dino"`` (class token kept, DINO's
    position rule) or ``"timm"`` (class token kept, timm's forward)."""

    def __init__(self, model: nn.Module, rule: str, source: str = ""):
        super().__init__()
        if rule not in ("flsl", "dino", "timm"):
            raise ValueError(f"unknown encoder rule {rule!r}")
        self.model, self.rule, self.source = model.eval(), rule, source
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.embed_dim = int(model.embed_dim)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, 3, H, W]`` (H, W multiples of the patch) -> ``[B, (H/p)(W/p), C]``."""
        m = self.model
        if self.rule == "flsl":
            return encode(m, images)
        if self.rule == "timm":
            return m.forward_features(images)[:, m.num_prefix_tokens:]
        b, _, h, w = images.shape
        x = m.patch_embed.proj(images).flatten(2).transpose(1, 2)
        x = m.patch_embed.norm(x)
        x = torch.cat([m.cls_token.expand(b, -1, -1), x], dim=1)
        x = m.pos_drop(x + dino_pos_embed(m.pos_embed, h, w, self.patch_size))
        x = m.blocks(m.norm_pre(x))
        return m.norm(x)[:, 1:]


def _check_expected(path, spec_arch: str, patch: int, arch: str | None, patch_size: int | None) -> None:
    if patch_size is not None and patch != int(patch_size):
        raise CheckpointError(f"{path}: patch size {patch} in the checkpoint, {patch_size} expected "
                              "(--patch-size / config patch_size)")
    if arch:
        if arch not in WIDTHS and not arch.startswith("vit_"):
            raise CheckpointError(f"unknown --arch {arch!r} (known: {', '.join(WIDTHS)})")
        family = arch.split("_patch")[0]
        if not spec_arch.startswith(family + "_patch"):
            raise CheckpointError(f"{path}: holds a {spec_arch.split('_patch')[0]} encoder, "
                                  f"{family} expected (--arch / config arch)")


def load_extractor(checkpoint: str | Path, arch: str | None = None, patch_size: int | None = None,
                   which: str = "teacher") -> FeatureExtractor:
    """Build the encoder of ``checkpoint`` (any format of :mod:`pretrain.checkpoint`) and wrap it.

    ``arch`` (``vit_small`` ...) and ``patch_size``, when given, must match the checkpoint.
    """
    loaded = load_encoder_weights(checkpoint, which=which)
    _check_expected(checkpoint, loaded.spec.arch, loaded.patch_size, arch, patch_size)
    state = {k: v for k, v in loaded.state_dict.items() if k not in _UNUSED_KEYS}
    if loaded.cls_token is None:
        model = build_encoder(loaded.spec)
        load_strict(model, state, str(checkpoint))
        return FeatureExtractor(model, "flsl", str(checkpoint))
    if loaded.pos_embed_with_cls is None:
        raise CheckpointError(f"{checkpoint}: has a class token but no position embedding with a "
                              "class slot")
    rule = "timm" if loaded.format == "timm" else "dino"
    spec = loaded.spec
    kwargs = spec.timm_kwargs(class_token=True, dynamic_img_size=(rule == "timm"))
    model = timm.create_model(spec.arch, pretrained=False, **kwargs)
    state["cls_token"] = loaded.cls_token
    state["pos_embed"] = loaded.pos_embed_with_cls
    load_strict(model, state, str(checkpoint))
    return FeatureExtractor(model, rule, str(checkpoint))


__all__ = ["resized_size", "read_frame", "dino_pos_embed", "FeatureExtractor",
           "load_extractor"]
