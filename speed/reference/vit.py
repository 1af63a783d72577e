"""Plain reference forward passes of the ViT families the suite evaluates, for tests.

Written from the published code's semantics with plain tensor operations on a state dict (no
timm, nothing of :mod:`pretrain.encoder`), in float64 by default:

* DINO's ``vision_transformer.VisionTransformer`` (iBOT and SelfPatch use the same ViT):
  ``prepare_tokens`` embeds the patches with a strided convolution, prepends the class token and
  adds ``interpolate_pos_encoding(x, w, h)``; that function returns the ``1 + N`` table unchanged
  when the token count is ``N`` and the image is square, otherwise resizes the patch part
  (a square grid of side ``sqrt(N)``) with ``F.interpolate(mode="bicubic",
  scale_factor=((w0 + 0.1) / sqrt(N), (h0 + 0.1) / sqrt(N)))`` where ``w0, h0`` are the token
  rows and columns (DINO's names, taken from ``x.shape[2:]``).
* The FLSL authors' class-token-free variant (``make_vit_noclass``): the same, without the class
  token, on the ``N``-entry table.

Blocks: pre-norm attention ``softmax(q k^T / sqrt(d)) v`` and a GELU MLP, LayerNorm eps 1e-6.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F


def _interpolate_pos_encoding(pos: torch.Tensor, n_tokens: int, rows: int, cols: int, h_px: int,
                              w_px: int, prefix: int) -> torch.Tensor:
    """DINO's rule (``prefix`` 1) or the authors' class-token-free one (``prefix`` 0)."""
    n = pos.shape[1] - prefix
    if n_tokens == n and h_px == w_px:
        return pos
    side = math.sqrt(n)
    dim = pos.shape[-1]
    grid = pos[:, prefix:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
    w0, h0 = rows + 0.1, cols + 0.1
    grid = F.interpolate(grid, scale_factor=(w0 / side, h0 / side), mode="bicubic")
    assert int(w0) == grid.shape[-2] and int(h0) == grid.shape[-1]
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([pos[:, :prefix], grid], dim=1)


def _block(state: dict, i: int, x: torch.Tensor, heads: int, eps: float) -> torch.Tensor:
    p = f"blocks.{i}."
    b, n, c = x.shape
    y = F.layer_norm(x, (c,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps)
    qkv = (y @ state[p + "attn.qkv.weight"].T + state[p + "attn.qkv.bias"])
    q, k, v = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = torch.softmax((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5, dim=-1)
    y = (attn @ v).transpose(1, 2).reshape(b, n, c)
    x = x + y @ state[p + "attn.proj.weight"].T + state[p + "attn.proj.bias"]
    y = F.layer_norm(x, (c,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps)
    y = F.gelu(y @ state[p + "mlp.fc1.weight"].T + state[p + "mlp.fc1.bias"])
    return x + y @ state[p + "mlp.fc2.weight"].T + state[p + "mlp.fc2.bias"]


def dino_vit_forward(state: dict, images: torch.Tensor, heads: int, class_token: bool = True,
                     eps: float = 1e-6, dtype: torch.dtype = torch.float64):
    """Run a DINO-layout ViT state dict on ``images`` ``[B, 3, H, W]``.

    ``class_token`` True: DINO's network (``cls_token``, ``1 + N`` ``pos_embed``); False: the
    FLSL authors' class-token-free network (``N``-entry ``pos_embed``; a ``cls_token`` in the
    state is ignored, as their code ignores it). Returns ``(blocks, final)``: the patch tokens
    ``[B, N, C]`` after every block (class token removed) and after the final LayerNorm.
    """
    state = {k: v.to(dtype) for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()}
    x = images.to(dtype)
    _, _, h_px, w_px = x.shape
    weight = state["patch_embed.proj.weight"]
    tokens = F.conv2d(x, weight, state["patch_embed.proj.bias"], stride=weight.shape[-1])
    rows, cols = tokens.shape[-2:]
    tokens = tokens.flatten(2).transpose(1, 2)
    prefix = 1 if class_token else 0
    if class_token:
        tokens = torch.cat([state["cls_token"].expand(x.shape[0], -1, -1), tokens], dim=1)
    tokens = tokens + _interpolate_pos_encoding(state["pos_embed"], rows * cols, rows, cols,
                                                h_px, w_px, prefix)
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    outs = []
    for i in range(depth):
        tokens = _block(state, i, tokens, heads, eps)
        outs.append(tokens[:, prefix:])
    c = tokens.shape[-1]
    final = F.layer_norm(tokens, (c,), state["norm.weight"], state["norm.bias"], eps)[:, prefix:]
    return outs, final


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` in float64."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


__all__ = ["dino_vit_forward", "relative_difference"]
