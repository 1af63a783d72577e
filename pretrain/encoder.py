"""The FLSL encoder: timm's VisionTransformer without a class token, with a fixed 2-D
sine-cosine position embedding, and the final LayerNorm applied to the token map.

Architectures are named by the timm model they are built from (``vit_small_patch16_224``,
``vit_small_patch8_224``, ``vit_base_patch16_224``, ...) plus keyword overrides (``depth``,
``img_size``...). :class:`EncoderSpec` carries both, so an exported checkpoint can record exactly
what to build.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import timm
import torch
from torch import nn

#: keyword arguments every FLSL encoder is built with (timm VisionTransformer arguments)
FIXED_TIMM_KWARGS = dict(class_token=False, global_pool="", num_classes=0, fc_norm=False,
                         dynamic_img_size=True)


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What to build: a timm architecture name and keyword overrides (JSON-serialisable)."""

    arch: str = "vit_small_patch16_224"
    kwargs: tuple = ()  # sorted (key, value) pairs, e.g. (("depth", 4), ("img_size", 112))

    @classmethod
    def make(cls, arch: str, **kwargs) -> "EncoderSpec":
        return cls(arch, tuple(sorted(kwargs.items())))

    def timm_kwargs(self, **extra) -> dict:
        return {**FIXED_TIMM_KWARGS, **dict(self.kwargs), **extra}

    def to_json(self) -> str:
        return json.dumps({"arch": self.arch, "kwargs": dict(self.kwargs)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EncoderSpec":
        d = json.loads(text)
        return cls.make(d["arch"], **d.get("kwargs", {}))


def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE / MoCo v3 layout).

    Returns ``[1, grid_h * grid_w, dim]``: the first half of the channels encodes the column (x)
    index, the second half the row (y) index, each as ``[sin(w * pos), cos(w * pos)]`` with
    ``w_k = 1 / temperature ** (k / (dim / 4))``.
    """
    if dim % 4:
        raise ValueError(f"embedding width {dim} must be divisible by 4 for a 2-D sin-cos embedding")
    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64),
                            torch.arange(grid_w, dtype=torch.float64), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))

    def enc(pos):
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)

    return torch.cat([enc(xs), enc(ys)], dim=1).float()[None]


def build_encoder(spec: EncoderSpec | str = "vit_small_patch16_224", drop_path_rate: float = 0.0,
                  **overrides) -> nn.Module:
    """Build the encoder (a timm ``VisionTransformer``) with fixed sin-cos positions.

    ``model.forward_features(x)`` maps images ``[B, 3, H, W]`` (H, W multiples of the patch size)
    to the post-LayerNorm token map ``[B, (H/p) * (W/p), C]``; the position embedding, stored for
    the ``img_size / patch`` grid, is resampled bicubically for other grids.
    """
    if isinstance(spec, str):
        spec = EncoderSpec.make(spec, **overrides)
    elif overrides:
        spec = EncoderSpec.make(spec.arch, **{**dict(spec.kwargs), **overrides})
    try:
        model = timm.create_model(spec.arch, pretrained=False,
                                  **spec.timm_kwargs(drop_path_rate=drop_path_rate))
    except RuntimeError as err:  # unknown model name
        raise ValueError(f"unknown encoder architecture {spec.arch!r}: {err}") from None
    gh, gw = model.patch_embed.grid_size
    with torch.no_grad():
        model.pos_embed.copy_(sincos_pos_embed_2d(gh, gw, model.embed_dim))
    model.pos_embed.requires_grad_(False)
    model.flsl_spec = spec
    return model


def patch_size(model: nn.Module) -> int:
    """Patch side in pixels."""
    return int(model.patch_embed.patch_size[0])


def encode(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Post-LayerNorm token map ``[B, N, C]`` for images ``[B, 3, H, W]``."""
    return model.forward_features(images)


def block_outputs(model: nn.Module, images: torch.Tensor, indices: Sequence[int],
                  norm_last: bool = False) -> list[torch.Tensor]:
    """Outputs of the blocks listed in ``indices`` (0-based) as ``[B, N, C]`` token maps.

    ``norm_last`` applies the final LayerNorm to the output of the last block (index depth-1).
    """
    x = model.patch_embed(images)
    x = model._pos_embed(x)
    x = model.patch_drop(x)
    x = model.norm_pre(x)
    wanted = set(indices)
    outs = {}
    last = len(model.blocks) - 1
    for i, blk in enumerate(model.blocks):
        x = blk(x)
        if i in wanted:
            outs[i] = model.norm(x) if (norm_last and i == last) else x
        if i >= max(wanted):
            break
    return [outs[i] for i in indices]


def grid_shape(model: nn.Module, height: int, width: int) -> tuple[int, int]:
    p = patch_size(model)
    return height // p, width // p


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_image(model: nn.Module, tokens: int) -> float:
    """Approximate forward multiply-adds x2 (FLOPs) of the transformer blocks for ``tokens``."""
    c = model.embed_dim
    depth = len(model.blocks)
    mlp = model.blocks[0].mlp.fc1.out_features
    per_block = 2 * tokens * (4 * c * c + 2 * c * mlp) + 2 * 2 * tokens * tokens * c
    patch = 2 * tokens * c * 3 * patch_size(model) ** 2
    return depth * per_block + patch


__all__ = ["EncoderSpec", "build_encoder", "encode", "block_outputs", "patch_size",
           "sincos_pos_embed_2d", "grid_shape", "num_params", "flops_per_image"]
