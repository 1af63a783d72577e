"""Frames in, patch features out: DINO's frame preprocessing and the encoder of any supported
checkpoint, run as the network it was trained as -- the one rule of
:func:`pretrain.checkpoint.load_pretrained_encoder`, shared with the dense backbone and the figures:

* ``flsl``: class-token-free encoders (our exports and training states, the authors' release,
  whose unused ``cls_token`` is dropped): fixed sine-cosine table resized by the authors' rule
  (bicubic, scale factor ``(g + 0.1) / n``, no antialiasing);
* ``dino``: DINO / iBOT / SelfPatch files: the class token stays in the sequence, the ``1 + N``
  table is resized by DINO's ``interpolate_pos_encoding`` (the same rule), the output drops it;
* ``timm``: timm files: class token kept, timm's own resampling.

Features are the last block's tokens after the final LayerNorm, ``[B, h * w, C]`` with
``h = H / p``, ``w = W / p``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.constants import DINO_DAVIS_STD, IMAGENET_MEAN, IMAGENET_STD
from core.normalise import normalise

from pretrain.checkpoint import CheckpointError, load_pretrained_encoder
from pretrain.encoder import encode

from .io import DavisError

WIDTHS = {"vit_tiny": 192, "vit_small": 384, "vit_base": 768, "vit_large": 1024}
RULES = ("flsl", "dino", "timm")


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


def read_frame(path: str | Path, short_side: int = 480, multiple: int = 64, mean=IMAGENET_MEAN,
               std=DINO_DAVIS_STD) -> tuple[torch.Tensor, tuple[int, int]]:
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
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))
    return normalise(x, mean, std), (h0, w0)


# ------------------------------------------------------------------------------------ encoders
def rule_of(model: nn.Module) -> str:
    """Short name of how an encoder of :func:`pretrain.encoder.build_encoder` runs (:data:`RULES`)."""
    spec = model.flsl_spec
    if spec.positions == "timm":
        return "timm"
    return "dino" if spec.class_token else "flsl"


class FeatureExtractor(nn.Module):
    """Patch features of an encoder built by :func:`pretrain.encoder.build_encoder` (the encoder
    carries its class token and position rule). ``rule``, if given, must be the encoder's
    (:func:`rule_of`); ``self.rule`` names it for the logs."""

    def __init__(self, model: nn.Module, rule: str | None = None, source: str = "", which: str | None = None,
                 mean=IMAGENET_MEAN, std=DINO_DAVIS_STD):
        super().__init__()
        own = rule_of(model)
        if rule is not None and rule != own:
            raise ValueError(f"encoder runs with the {own!r} rule, {rule!r} requested")
        self.model, self.rule, self.source, self.which = model.eval(), own, source, which
        self.mean, self.std = tuple(mean), tuple(std)   # the frames' input normalisation
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.embed_dim = int(model.embed_dim)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, 3, H, W]`` (H, W multiples of the patch) -> ``[B, (H/p)(W/p), C]``."""
        return encode(self.model, images)


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
                   which: str = "teacher", family: str | None = None) -> FeatureExtractor:
    """Build the encoder of ``checkpoint`` (any format of :mod:`pretrain.checkpoint`) as the network
    it was trained as, and wrap it. ``arch`` (``vit_small`` ...) and ``patch_size``, when given,
    must match the checkpoint."""
    model, loaded = load_pretrained_encoder(checkpoint, which=which, family=family)
    _check_expected(checkpoint, loaded.spec.arch, loaded.patch_size, arch, patch_size)
    return FeatureExtractor(model, source=str(checkpoint), which=which, **frame_statistics(loaded.mean, loaded.std))


def frame_statistics(mean, std) -> dict:
    """The frames' normalisation for an encoder trained with ``mean`` / ``std``: DINO's DAVIS
    script's own for the ImageNet-normalised families (its std starts 0.228, not 0.229: kept so
    that features and masks equal DINO's), the family's own for the others (CLIP, SigLIP,
    EVA-02), which would otherwise see inputs they were never trained on."""
    if tuple(mean) == tuple(IMAGENET_MEAN) and tuple(std) == tuple(IMAGENET_STD):
        return {"mean": IMAGENET_MEAN, "std": DINO_DAVIS_STD}
    return {"mean": tuple(mean), "std": tuple(std)}


__all__ = ["resized_size", "read_frame", "RULES", "rule_of", "FeatureExtractor", "load_extractor",
           "frame_statistics"]
