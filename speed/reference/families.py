"""Plain reference forwards of the ViT checkpoint families, on each family's OWN key layout, for
tests (nothing of timm or :mod:`pretrain`; float64 by default).

Written from the published code's semantics (docs/families.md names the files read):

* :func:`dinov2_forward`: DINOv2's ``DinoVisionTransformer`` -- ``[cls | patches]`` plus
  ``interpolate_pos_encoding`` (without registers: scale factor ``(g + 0.1) / M``, no antialias;
  with registers: ``size``, antialias), registers inserted after the class token *after* the
  positions are added, LayerScale ``ls1/ls2.gamma``, MLP ``fc1/fc2`` (GELU) or fused SwiGLU
  ``w12 -> silu(x1) * x2 -> w3``, final ``norm``.
* :func:`selfpatch_forward`: SelfPatch's ``selfpatch_vision_transformer.VisionTransformer`` --
  patches only, DINO's rule on the ``N``-entry table, no final norm.
* :func:`mae_forward`: MAE's encoder run at another size the way its fine-tuning code makes it
  (``interpolate_pos_embed``: bicubic to the new size, no antialias, class slot kept).
* :func:`deit3_forward`: DeiT III's ``vit_models`` -- positions added to the patches, the class
  token prepended without one, ``gamma_1/gamma_2`` LayerScale; other sizes by the fine-tune resize.
* :func:`dinov3_forward`: DINOv3's ``DinoVisionTransformer`` with its RoPE (no table), storage
  tokens, masked key bias, LayerScale.
* :func:`eva02_forward`: EVA-02's ViT with its RoPE, SwiGLU (packed or with sub-LN), q/v biases.
* :func:`siglip_forward`: big_vision's ``vit.py`` on the flax parameter tree as stored in its
  ``.npz`` (``[D, heads, d_h]`` attention kernels, ``[p, p, 3, D]`` patch kernel, tanh GELU,
  ``encoder_norm``), the table resized by ``scipy.ndimage.zoom(order=1)`` (``resample_posemb``).
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from .vit import _interpolate_pos_encoding


def _depth(state: dict, pattern: str = r"blocks\.(\d+)\.") -> int:
    return 1 + max(int(m.group(1)) for k in state if (m := re.match(pattern, k)))


def _attention(y, w, b, heads):
    bsz, n, c = y.shape
    q, k, v = (y @ w.T + b).reshape(bsz, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    a = torch.softmax((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5, dim=-1)
    return (a @ v).transpose(1, 2).reshape(bsz, n, c)


def _dino_style_block(s: dict, p: str, x, heads: int, eps: float, gammas=("ls1.gamma", "ls2.gamma")):
    """Pre-norm block in DINO's names (``norm1, attn.qkv, attn.proj, norm2, mlp.*``) with the
    LayerScale tensors ``gammas`` when the state has them."""
    c = x.shape[-1]
    g1, g2 = (s.get(p + g) for g in gammas)
    y = F.layer_norm(x, (c,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps)
    y = _attention(y, s[p + "attn.qkv.weight"], s[p + "attn.qkv.bias"], heads)
    y = y @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"]
    x = x + (y * g1 if g1 is not None else y)
    y = F.layer_norm(x, (c,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps)
    if p + "mlp.w12.weight" in s:
        x12 = y @ s[p + "mlp.w12.weight"].T + s[p + "mlp.w12.bias"]
        x1, x2 = x12.chunk(2, dim=-1)
        y = (F.silu(x1) * x2) @ s[p + "mlp.w3.weight"].T + s[p + "mlp.w3.bias"]
    else:
        y = F.gelu(y @ s[p + "mlp.fc1.weight"].T + s[p + "mlp.fc1.bias"])
        y = y @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"]
    return x + (y * g2 if g2 is not None else y)


def _embed(s: dict, images, dtype):
    x = images.to(dtype)
    w = s["patch_embed.proj.weight"]
    t = F.conv2d(x, w, s["patch_embed.proj.bias"], stride=w.shape[-1])
    rows, cols = t.shape[-2:]
    return t.flatten(2).transpose(1, 2), rows, cols


def _cast(state: dict, dtype) -> dict:
    return {k: v.to(dtype) for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()}


def _run(s, x, prefix, heads, eps, final_norm=True, gammas=("ls1.gamma", "ls2.gamma")):
    outs = []
    for i in range(_depth(s)):
        x = _dino_style_block(s, f"blocks.{i}.", x, heads, eps, gammas)
        outs.append(x[:, prefix:])
    c = x.shape[-1]
    final = F.layer_norm(x, (c,), s["norm.weight"], s["norm.bias"], eps)[:, prefix:] if final_norm else x[:, prefix:]
    return outs, final


def dinov2_forward(state: dict, images, heads: int, eps: float = 1e-6, dtype=torch.float64):
    """DINOv2 (hub layout): returns ``(blocks, final)`` patch tokens (class and registers removed)."""
    s = _cast(state, dtype)
    x, rows, cols = _embed(s, images, dtype)
    b = x.shape[0]
    x = torch.cat([s["cls_token"].expand(b, -1, -1), x], dim=1)
    pos = s["pos_embed"]
    n = pos.shape[1] - 1
    h_px, w_px = images.shape[-2:]
    registers = s.get("register_tokens")
    if not (rows * cols == n and h_px == w_px):
        m = int(math.sqrt(n))
        table = pos[:, 1:].float().reshape(1, m, m, -1).permute(0, 3, 1, 2)
        if registers is None:   # interpolate_offset 0.1, antialias False
            table = F.interpolate(table, scale_factor=((rows + 0.1) / m, (cols + 0.1) / m), mode="bicubic",
                                  antialias=False)
        else:                   # hub register models: interpolate_offset 0, antialias True
            table = F.interpolate(table, size=(rows, cols), mode="bicubic", antialias=True)
        pos = torch.cat([pos[:, :1], table.permute(0, 2, 3, 1).reshape(1, rows * cols, -1).to(dtype)], dim=1)
    x = x + pos
    prefix = 1
    if registers is not None:
        x = torch.cat([x[:, :1], registers.expand(b, -1, -1), x[:, 1:]], dim=1)
        prefix += registers.shape[1]
    return _run(s, x, prefix, heads, eps)


def selfpatch_forward(backbone: dict, images, heads: int, eps: float = 1e-6, dtype=torch.float64):
    """SelfPatch's ViT (``backbone.*`` without the prefix): patches only, DINO's rule, no final
    norm (``final`` is the last block's output)."""
    s = _cast(backbone, dtype)
    x, rows, cols = _embed(s, images, dtype)
    x = x + _interpolate_pos_encoding(s["pos_embed"], rows * cols, rows, cols, *images.shape[-2:], prefix=0)
    return _run(s, x, 0, heads, eps, final_norm=False)


def _load_resize(table, rows: int, cols: int):
    """MAE / DeiT fine-tuning's ``interpolate_pos_embed``: bicubic to the size, no antialias."""
    m = int(math.sqrt(table.shape[1]))
    if (m, m) == (rows, cols):
        return table
    grid = table.reshape(1, m, m, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)


def mae_forward(model: dict, images, heads: int, eps: float = 1e-6, dtype=torch.float64):
    """MAE's encoder from ``{"model": ...}``'s tensors (decoder ignored)."""
    s = _cast(model, dtype)
    x, rows, cols = _embed(s, images, dtype)
    pos = s["pos_embed"]
    pos = torch.cat([pos[:, :1], _load_resize(pos[:, 1:], rows, cols)], dim=1)
    x = torch.cat([s["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + pos
    return _run(s, x, 1, heads, eps)


def deit3_forward(model: dict, images, heads: int, eps: float = 1e-6, dtype=torch.float64):
    """DeiT III (``models_v2.vit_models``): ``x + pos`` on the patches, then the class token."""
    s = _cast(model, dtype)
    x, rows, cols = _embed(s, images, dtype)
    x = x + _load_resize(s["pos_embed"], rows, cols)
    x = torch.cat([s["cls_token"].expand(x.shape[0], -1, -1), x], dim=1)
    return _run(s, x, 1, heads, eps, gammas=("gamma_1", "gamma_2"))


def siglip_forward(params: dict, images, eps: float = 1e-6, dtype=torch.float64):
    """big_vision ViT (``pool_type='map'``, no class token) on the flax arrays of the image
    tower (keys relative to ``img/``): returns ``(blocks, final)`` patch tokens."""
    t = {k: torch.as_tensor(np.asarray(v)).to(dtype) for k, v in params.items()}
    x = images.to(dtype).permute(0, 2, 3, 1)                     # NHWC, as flax
    kern = t["embedding/kernel"]                                  # [p, p, 3, D]
    p = kern.shape[0]
    b, h, w, _ = x.shape
    rows, cols = h // p, w // p                                   # 'VALID' convolution floors
    patches = x[:, :rows * p, :cols * p].reshape(b, rows, p, cols, p, 3).permute(0, 1, 3, 2, 4, 5)
    x = torch.einsum("bijuvc,uvcd->bijd", patches, kern) + t["embedding/bias"]
    pos = t["pos_embedding"]                                      # [1, g*g, D]
    g = int(math.sqrt(pos.shape[1]))
    if (g, g) != (rows, cols):                                    # resample_posemb: zoom order 1
        from scipy import ndimage
        grid = pos.reshape(g, g, -1).numpy()
        grid = ndimage.zoom(grid, (rows / g, cols / g, 1), order=1)
        pos = torch.from_numpy(grid).reshape(1, rows * cols, -1).to(dtype)
    x = x.reshape(b, rows * cols, -1) + pos
    d = x.shape[-1]
    outs = []
    for i in range(_depth(t, r"Transformer/encoderblock_(\d+)/")):
        pre = f"Transformer/encoderblock_{i}/"
        a = pre + "MultiHeadDotProductAttention_0/"
        y = F.layer_norm(x, (d,), t[pre + "LayerNorm_0/scale"], t[pre + "LayerNorm_0/bias"], eps)
        q, k, v = (torch.einsum("bnd,dhk->bnhk", y, t[a + f"{n}/kernel"]) + t[a + f"{n}/bias"]
                   for n in ("query", "key", "value"))
        q = q / math.sqrt(q.shape[-1])
        att = torch.softmax(torch.einsum("bqhk,bnhk->bhqn", q, k), dim=-1)
        y = torch.einsum("bhqn,bnhk->bqhk", att, v)
        x = x + torch.einsum("bqhk,hkd->bqd", y, t[a + "out/kernel"]) + t[a + "out/bias"]
        y = F.layer_norm(x, (d,), t[pre + "LayerNorm_1/scale"], t[pre + "LayerNorm_1/bias"], eps)
        y = F.gelu(y @ t[pre + "MlpBlock_0/Dense_0/kernel"] + t[pre + "MlpBlock_0/Dense_0/bias"],
                   approximate="tanh")                           # flax nn.gelu: approximate=True
        x = x + y @ t[pre + "MlpBlock_0/Dense_1/kernel"] + t[pre + "MlpBlock_0/Dense_1/bias"]
        outs.append(x)
    final = F.layer_norm(x, (d,), t["Transformer/encoder_norm/scale"], t["Transformer/encoder_norm/bias"], eps)
    return outs, final


def dinov3_forward(state: dict, images, heads: int, eps: float = 1e-5, dtype=torch.float64):
    """DINOv3 (hub layout, ``models/vision_transformer.py``, ``layers/rope_position_encoding.py``,
    ``layers/attention.py``): ``[cls | storage | patches]`` without an absolute table; RoPE on q
    and k of the patch tokens only: coordinates ``(i + 0.5) / H`` and ``(j + 0.5) / W`` mapped to
    ``[-1, 1]``, angles ``2 pi c / period`` with the file's ``periods``, ``[HW, 2, d/4]`` flattened
    and tiled twice, rotate-half; qkv bias times ``bias_mask``; LayerScale; LayerNorm eps 1e-5."""
    s = _cast(state, dtype)
    x, rows, cols = _embed(s, images, dtype)
    b, c = x.shape[0], x.shape[-1]
    x = torch.cat([s["cls_token"].expand(b, -1, -1), s["storage_tokens"].expand(b, -1, -1), x], dim=1)
    prefix = 1 + s["storage_tokens"].shape[1]
    ch = (torch.arange(rows, dtype=dtype) + 0.5) / rows
    cw = (torch.arange(cols, dtype=dtype) + 0.5) / cols
    coords = torch.stack(torch.meshgrid(ch, cw, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0
    angles = (2 * math.pi * coords[:, :, None] / s["rope_embed.periods"][None, None, :]).flatten(1, 2).tile(2)
    sin, cos = angles.sin(), angles.cos()

    def rot(t):
        t1, t2 = t.chunk(2, dim=-1)
        return torch.cat([-t2, t1], dim=-1)
    outs = []
    for i in range(_depth(s)):
        p = f"blocks.{i}."
        y = F.layer_norm(x, (c,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps)
        bias = s[p + "attn.qkv.bias"] * s[p + "attn.qkv.bias_mask"]
        q, k, v = (y @ s[p + "attn.qkv.weight"].T + bias).reshape(b, -1, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q = torch.cat([q[:, :, :prefix], q[:, :, prefix:] * cos + rot(q[:, :, prefix:]) * sin], dim=2)
        k = torch.cat([k[:, :, :prefix], k[:, :, prefix:] * cos + rot(k[:, :, prefix:]) * sin], dim=2)
        a = torch.softmax((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5, dim=-1)
        y = (a @ v).transpose(1, 2).reshape(b, -1, c) @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"]
        x = x + y * s[p + "ls1.gamma"]
        y = F.layer_norm(x, (c,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps)
        y = F.gelu(y @ s[p + "mlp.fc1.weight"].T + s[p + "mlp.fc1.bias"]) @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"]
        x = x + y * s[p + "ls2.gamma"]
        outs.append(x[:, prefix:])
    final = F.layer_norm(x, (c,), s["norm.weight"], s["norm.bias"], eps)[:, prefix:]
    return outs, final


def eva02_forward(state: dict, images, heads: int, eps: float = 1e-6, dtype=torch.float64, pt_grid: int = 16):
    """EVA-02's ViT (asuka ``modeling_finetune.py`` / ``rope.py``) on its MIM file's tensors:
    ``[cls | patches]`` + table (resized at load as its fine-tuning does: bicubic, no antialias),
    RoPE on q and k of the patch tokens only with ``VisionRotaryEmbeddingFast``'s table (positions
    ``arange(S) / S * pt_grid`` per axis, one frequency per adjacent pair, rows on the first half
    of each head and columns on the second, pairs rotated), fused ``qkv`` with ``q_bias`` /
    ``v_bias`` (key bias 0) or separate ``q/k/v_proj``, SwiGLU ``w12 -> silu(x1) * x2 -> w3`` or
    ``w1, w2 -> ffn_ln -> w3``, optional ``gamma_1/2``, final ``norm``."""
    s = _cast(state, dtype)
    x, rows, cols = _embed(s, images, dtype)
    b, c = x.shape[0], x.shape[-1]
    pos = s["pos_embed"]
    pos = torch.cat([pos[:, :1], _load_resize(pos[:, 1:], rows, cols)], dim=1)
    x = torch.cat([s["cls_token"].expand(b, -1, -1), x], dim=1) + pos
    d = c // heads
    dim = d // 2
    freqs = 1.0 / 10000.0 ** (torch.arange(0, dim, 2, dtype=dtype)[: dim // 2] / dim)

    def axis(n):
        return torch.repeat_interleave((torch.arange(n, dtype=dtype) / n * pt_grid)[:, None] * freqs, 2, dim=-1)
    fh, fw = axis(rows), axis(cols)
    table = torch.cat([fh[:, None, :].expand(rows, cols, dim), fw[None, :, :].expand(rows, cols, dim)], dim=-1)
    cos, sin = table.reshape(rows * cols, d).cos(), table.reshape(rows * cols, d).sin()

    def rotate(t):
        pairs = t.reshape(*t.shape[:-1], -1, 2)
        return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(t.shape)

    def rope(t):
        return torch.cat([t[:, :, :1], t[:, :, 1:] * cos + rotate(t[:, :, 1:]) * sin], dim=2)
    outs = []
    for i in range(_depth(s)):
        p = f"blocks.{i}."
        y = F.layer_norm(x, (c,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps)
        if p + "attn.qkv.weight" in s:
            bias = torch.cat([s[p + "attn.q_bias"], torch.zeros_like(s[p + "attn.v_bias"]), s[p + "attn.v_bias"]])
            qkv = y @ s[p + "attn.qkv.weight"].T + bias
        else:
            qkv = torch.cat([y @ s[p + "attn.q_proj.weight"].T + s[p + "attn.q_bias"], y @ s[p + "attn.k_proj.weight"].T,
                             y @ s[p + "attn.v_proj.weight"].T + s[p + "attn.v_bias"]], dim=-1)
        q, k, v = qkv.reshape(b, -1, 3, heads, d).permute(2, 0, 3, 1, 4)
        q, k = rope(q), rope(k)
        a = torch.softmax((q * d ** -0.5) @ k.transpose(-2, -1), dim=-1)
        y = (a @ v).transpose(1, 2).reshape(b, -1, c) @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"]
        x = x + (y * s[p + "gamma_1"] if p + "gamma_1" in s else y)
        y = F.layer_norm(x, (c,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps)
        if p + "mlp.w12.weight" in s:
            x1, x2 = (y @ s[p + "mlp.w12.weight"].T + s[p + "mlp.w12.bias"]).chunk(2, dim=-1)
            h = F.silu(x1) * x2
        else:
            h = F.silu(y @ s[p + "mlp.w1.weight"].T + s[p + "mlp.w1.bias"]) * (y @ s[p + "mlp.w2.weight"].T + s[p + "mlp.w2.bias"])
            h = F.layer_norm(h, (h.shape[-1],), s[p + "mlp.ffn_ln.weight"], s[p + "mlp.ffn_ln.bias"], eps)
        y = h @ s[p + "mlp.w3.weight"].T + s[p + "mlp.w3.bias"]
        x = x + (y * s[p + "gamma_2"] if p + "gamma_2" in s else y)
        outs.append(x[:, 1:])
    final = F.layer_norm(x, (c,), s["norm.weight"], s["norm.bias"], eps)[:, 1:]
    return outs, final


__all__ = ["dinov2_forward", "dinov3_forward", "eva02_forward", "selfpatch_forward", "mae_forward", "deit3_forward", "siglip_forward"]
