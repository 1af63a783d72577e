"""Tiny release files of the checkpoint families (docs/families.md), each in the layout its
release's code writes: module layout, prefixes, wrappers and pickled arguments.

Weights are random with "trained" magnitudes where they matter: LayerScale far from its init,
registers, class tokens and position tables that change the output. Width 128 (2 heads of 64, as
every family's table has), depth 2.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tests.benchmarks.conftest import authors_sincos_table, projection_head_state, training_file

WIDTH, HEADS, DEPTH = 128, 2, 2


def _rnd(g, *shape, std=0.05, mean=0.0):
    return mean + std * torch.randn(*shape, generator=g)


def vit_blocks(g, width=WIDTH, depth=DEPTH, layer_scale=None, swiglu=False) -> dict:
    """DINO-named block tensors (``blocks.{i}.norm1 / attn.qkv / attn.proj / norm2 / mlp.*``);
    ``layer_scale`` names the LayerScale tensors (``("ls1.gamma", "ls2.gamma")`` for DINOv2,
    ``("gamma_1", "gamma_2")`` for DeiT III); ``swiglu``: DINOv2's fused ``mlp.w12 / mlp.w3``."""
    c, out = width, {}
    hidden = (int(2 / 3 * 4 * c) + 7) // 8 * 8    # DINOv2's SwiGLUFFNFused hidden width
    for i in range(depth):
        p = f"blocks.{i}."
        out.update({p + "norm1.weight": _rnd(g, c, std=0.1, mean=1.0), p + "norm1.bias": _rnd(g, c),
                    p + "attn.qkv.weight": _rnd(g, 3 * c, c, std=0.08), p + "attn.qkv.bias": _rnd(g, 3 * c),
                    p + "attn.proj.weight": _rnd(g, c, c), p + "attn.proj.bias": _rnd(g, c),
                    p + "norm2.weight": _rnd(g, c, std=0.1, mean=1.0), p + "norm2.bias": _rnd(g, c)})
        if swiglu:
            out.update({p + "mlp.w12.weight": _rnd(g, 2 * hidden, c), p + "mlp.w12.bias": _rnd(g, 2 * hidden),
                        p + "mlp.w3.weight": _rnd(g, c, hidden), p + "mlp.w3.bias": _rnd(g, c)})
        else:
            out.update({p + "mlp.fc1.weight": _rnd(g, 4 * c, c), p + "mlp.fc1.bias": _rnd(g, 4 * c),
                        p + "mlp.fc2.weight": _rnd(g, c, 4 * c), p + "mlp.fc2.bias": _rnd(g, c)})
        if layer_scale:
            out.update({p + layer_scale[0]: _rnd(g, c, std=0.3, mean=0.5),
                        p + layer_scale[1]: _rnd(g, c, std=0.3, mean=0.5)})
    return out


def _patch(g, patch, width=WIDTH):
    return {"patch_embed.proj.weight": _rnd(g, width, 3, patch, patch, std=0.02),
            "patch_embed.proj.bias": _rnd(g, width, std=0.02)}


def _norm(g, width=WIDTH):
    return {"norm.weight": _rnd(g, width, std=0.1, mean=1.0), "norm.bias": _rnd(g, width)}


# ------------------------------------------------------------------------------- DINOv2
def dinov2_hub(folder: Path, registers: bool = False, swiglu: bool = False, seed: int = 0,
               width: int = WIDTH):
    """``dinov2_vit*14[_reg4]_pretrain.pth``: the bare state dict of ``DinoVisionTransformer``
    (img_size 518, patch 14: a 37x37 table plus the class slot; ``mask_token`` [1, D];
    ``register_tokens`` [1, 4, D]; LayerScale ``ls1/ls2.gamma``; SwiGLU ``w12/w3`` for g)."""
    g = torch.Generator().manual_seed(seed)
    state = {"cls_token": _rnd(g, 1, 1, width, std=1.0), "pos_embed": _rnd(g, 1, 1 + 37 * 37, width, std=0.5)}
    if registers:
        state["register_tokens"] = _rnd(g, 1, 4, width, std=1.0)
    state["mask_token"] = torch.zeros(1, width)
    state.update({**_patch(g, 14, width), **vit_blocks(g, width, layer_scale=("ls1.gamma", "ls2.gamma"),
                                                       swiglu=swiglu), **_norm(g, width)})
    path = folder / "model.pth"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def dinov3_hub(folder: Path, seed: int = 0):
    """``dinov3_vits16_pretrain_*.pth``: the bare state dict of DINOv3's ``DinoVisionTransformer``
    (``storage_tokens`` [1, 4, D], ``mask_token`` [1, D], persistent ``rope_embed.periods``
    (base 100), ``attn.qkv.bias`` with its ``bias_mask`` buffer (key third 0), ``ls1/ls2.gamma``,
    no position table)."""
    g = torch.Generator().manual_seed(seed)
    d_head = WIDTH // HEADS
    state = {"cls_token": _rnd(g, 1, 1, WIDTH, std=1.0), "storage_tokens": _rnd(g, 1, 4, WIDTH, std=1.0),
             "mask_token": torch.zeros(1, WIDTH),
             "rope_embed.periods": 100.0 ** (2 * torch.arange(d_head // 4, dtype=torch.float32) / (d_head // 2)),
             **_patch(g, 16), **vit_blocks(g, layer_scale=("ls1.gamma", "ls2.gamma")), **_norm(g)}
    for i in range(DEPTH):
        state[f"blocks.{i}.attn.qkv.bias_mask"] = torch.cat([torch.ones(WIDTH), torch.zeros(WIDTH), torch.ones(WIDTH)])
    path = folder / "dinov3.pth"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def eva02_mim(folder: Path, fused: bool = True, seed: int = 0):
    """EVA-02's MIM checkpoint ``{"model": modeling_pretrain state dict}``: class and mask tokens, a
    1 + 16x16 table (224 px, patch 14), RoPE buffers ``rope.freqs_cos/sin`` (also under every
    attention), fused ``qkv`` + ``q_bias`` / ``v_bias`` and packed ``mlp.w12`` / ``w3`` (Ti, S) or
    ``q/k/v_proj`` + biases and ``mlp.w1, w2, ffn_ln, w3`` (B, L), ``gamma_1/2``, ``norm``,
    ``lm_head``."""
    from pretrain.families.layouts import eva02_rope_table
    g = torch.Generator().manual_seed(seed)
    c, hidden = WIDTH, int(WIDTH * 4 * 2 / 3)
    cos = eva02_rope_table(16, c // HEADS).float()
    state = {"cls_token": _rnd(g, 1, 1, c, std=1.0), "mask_token": _rnd(g, 1, 1, c),
             "pos_embed": _rnd(g, 1, 1 + 16 * 16, c, std=0.5), **_patch(g, 14),
             "rope.freqs_cos": cos, "rope.freqs_sin": torch.zeros_like(cos)}
    for i in range(DEPTH):
        p = f"blocks.{i}."
        state.update({p + "norm1.weight": _rnd(g, c, std=0.1, mean=1.0), p + "norm1.bias": _rnd(g, c),
                      p + "attn.q_bias": _rnd(g, c), p + "attn.v_bias": _rnd(g, c),
                      p + "attn.proj.weight": _rnd(g, c, c), p + "attn.proj.bias": _rnd(g, c),
                      p + "attn.rope.freqs_cos": cos.clone(), p + "attn.rope.freqs_sin": torch.zeros_like(cos),
                      p + "gamma_1": _rnd(g, c, std=0.3, mean=0.5), p + "gamma_2": _rnd(g, c, std=0.3, mean=0.5),
                      p + "norm2.weight": _rnd(g, c, std=0.1, mean=1.0), p + "norm2.bias": _rnd(g, c),
                      p + "mlp.w3.weight": _rnd(g, c, hidden), p + "mlp.w3.bias": _rnd(g, c)})
        if fused:
            state.update({p + "attn.qkv.weight": _rnd(g, 3 * c, c, std=0.08),
                          p + "mlp.w12.weight": _rnd(g, 2 * hidden, c), p + "mlp.w12.bias": _rnd(g, 2 * hidden)})
        else:
            state.update({p + f"attn.{n}_proj.weight": _rnd(g, c, c, std=0.08) for n in "qkv"})
            state.update({p + "mlp.w1.weight": _rnd(g, hidden, c), p + "mlp.w1.bias": _rnd(g, hidden),
                          p + "mlp.w2.weight": _rnd(g, hidden, c), p + "mlp.w2.bias": _rnd(g, hidden),
                          p + "mlp.ffn_ln.weight": _rnd(g, hidden, std=0.1, mean=1.0),
                          p + "mlp.ffn_ln.bias": _rnd(g, hidden)})
    state.update({**_norm(g), "lm_head.weight": _rnd(g, 64, c), "lm_head.bias": torch.zeros(64)})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "eva02_pt.pt"
    torch.save({"model": state}, path)
    return path, state


# ------------------------------------------------------------------------------- SelfPatch
def selfpatch_backbone_state(g, grid: int = 14) -> dict:
    """SelfPatch's ``VisionTransformer`` tensors: no class token, ``[1, N, D]`` table, no norm."""
    return {"pos_embed": _rnd(g, 1, grid * grid, WIDTH, std=0.5), **_patch(g, 16), **vit_blocks(g)}


def selfpatch_heads(g) -> dict:
    """The heads its ``MultiCropWrapper`` holds beside the backbone: ``ca_head`` (class token,
    two class-attention blocks with separate q/k/v, a norm), ``c_head`` and ``p_head``
    (DINOHead layout)."""
    c = WIDTH
    out = {"ca_head.cls_token": _rnd(g, 1, 1, c)}
    for i in range(2):
        p = f"ca_head.cls_blocks.{i}."
        for name, shape in (("norm1", (c,)), ("attn.q", (c, c)), ("attn.k", (c, c)), ("attn.v", (c, c)),
                            ("attn.proj", (c, c)), ("norm2", (c,)), ("mlp.fc1", (4 * c, c)), ("mlp.fc2", (c, 4 * c))):
            out[p + name + ".weight"] = _rnd(g, *shape)
            out[p + name + ".bias"] = _rnd(g, shape[0])
    out.update({"ca_head.norm.weight": torch.ones(c), "ca_head.norm.bias": torch.zeros(c)})
    for head in ("c_head", "p_head"):
        out.update({f"{head}.{k}": v for k, v in projection_head_state(c).items()})
    return out


def selfpatch_training(folder: Path, seed: int = 0):
    """``main_selfpatch.py``'s checkpoint: ``{student: DDP module.*, teacher, optimizer, epoch,
    args, dino_loss, fp16_scaler}``, both networks ``backbone.* + ca_head.* + c_head.* + p_head.*``."""
    g = torch.Generator().manual_seed(seed)
    teacher_bb, student_bb = selfpatch_backbone_state(g), selfpatch_backbone_state(g)
    heads = selfpatch_heads(g)
    teacher = {**{f"backbone.{k}": v for k, v in teacher_bb.items()}, **heads}
    student = {f"module.{k}": v.clone() for k, v in
               {**{f"backbone.{k}": v for k, v in student_bb.items()}, **heads}.items()}
    raw = training_file({}, {"pos_embed": teacher_bb["pos_embed"]}, "dino_loss",
                        {"center": torch.zeros(1, 64), "patch_center": torch.zeros(1, 1, 64)},
                        argparse.Namespace(arch="vit_small", patch_size=16, local_crops_number=8))
    raw["teacher"], raw["student"] = teacher, student
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint.pth"
    torch.save(raw, path)
    return path, teacher_bb, heads


def selfpatch_bare(folder: Path, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    state = selfpatch_backbone_state(g)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "backbone.pth")
    return folder / "backbone.pth", state


# ------------------------------------------------------------------------------- MAE, DeiT III
def mae_training(folder: Path, seed: int = 0, grid: int = 14):
    """``util/misc.py save_model``: ``{model, optimizer, epoch, scaler, args}``; the model is
    ``MaskedAutoencoderViT``: encoder (fixed sin-cos table, zero class slot) + decoder."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.cat([torch.zeros(1, 1, WIDTH), authors_sincos_table(WIDTH, grid)], dim=1)  # cls_token=True
    model = {"cls_token": _rnd(g, 1, 1, WIDTH, std=0.02), "pos_embed": pos, **_patch(g, 16), **vit_blocks(g),
             **_norm(g), "mask_token": _rnd(g, 1, 1, 64), "decoder_embed.weight": _rnd(g, 64, WIDTH),
             "decoder_embed.bias": _rnd(g, 64), "decoder_pos_embed": torch.zeros(1, 1 + grid * grid, 64),
             "decoder_norm.weight": torch.ones(64), "decoder_norm.bias": torch.zeros(64),
             "decoder_pred.weight": _rnd(g, 16 * 16 * 3, 64), "decoder_pred.bias": torch.zeros(768)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint-799.pth"
    torch.save({"model": model, "optimizer": {"state": {}, "param_groups": []}, "epoch": 799,
                "scaler": {"scale": 1024.0}, "args": argparse.Namespace(model="mae_vit_base_patch16",
                                                                        norm_pix_loss=True)}, path)
    return path, model


def deit3_release(folder: Path, seed: int = 0, grid: int = 14):
    """``deit_3_*.pth``: ``{"model": vit_models state dict}`` (``pos_embed`` without a class slot,
    ``gamma_1/gamma_2``, a 1000-class head; here 10 classes)."""
    g = torch.Generator().manual_seed(seed)
    model = {"cls_token": _rnd(g, 1, 1, WIDTH, std=1.0), "pos_embed": _rnd(g, 1, grid * grid, WIDTH, std=0.5),
             **_patch(g, 16), **vit_blocks(g, layer_scale=("gamma_1", "gamma_2")), **_norm(g),
             "head.weight": _rnd(g, 10, WIDTH), "head.bias": torch.zeros(10)}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model}, folder / "deit.pth")
    return folder / "deit.pth", model


# ------------------------------------------------------------------------------- CLIP
def clip_model(quick_gelu: bool, seed: int = 0, image_size=64, ls: float | None = None):
    """An open_clip ``CLIP`` (the image tower OpenAI's code builds: conv1 without bias,
    ``class_embedding``, 2-D ``positional_embedding``, ``ln_pre``, resblocks with fused
    ``in_proj``, ``ln_post``, ``proj``) with random weights."""
    import open_clip
    torch.manual_seed(seed)
    model = open_clip.CLIP(embed_dim=32, quick_gelu=quick_gelu,
                           vision_cfg=dict(layers=DEPTH, width=WIDTH, head_width=64, patch_size=16,
                                           image_size=image_size, ls_init_value=ls),
                           text_cfg=dict(context_length=8, vocab_size=50, width=64, heads=1, layers=1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p) + (0.5 if name.endswith("gamma") else 0.0))
    return model.eval()


# ------------------------------------------------------------------------------- SigLIP
def siglip_npz(folder: Path, seed: int = 0, grid: int = 4, patch: int = 16, heads: int = HEADS):
    """A big_vision checkpoint ``.npz``: flattened flax parameters ``params/img/...`` (and a text
    tower ``params/txt/...``), kernels ``[in, out]``, attention ``[D, heads, d_h]``, patch kernel
    ``[p, p, 3, D]``, MAP head ``MAPHead_0``."""
    rng = np.random.default_rng(seed)
    d, dh = WIDTH, WIDTH // heads

    def r(*shape, std=0.05, mean=0.0):
        return (mean + std * rng.standard_normal(shape)).astype(np.float32)
    img = {"embedding/kernel": r(patch, patch, 3, d, std=0.02), "embedding/bias": r(d),
           "pos_embedding": r(1, grid * grid, d, std=0.5),
           "Transformer/encoder_norm/scale": r(d, std=0.1, mean=1.0), "Transformer/encoder_norm/bias": r(d),
           "MAPHead_0/probe": r(1, 1, d), "MAPHead_0/LayerNorm_0/scale": r(d, mean=1.0),
           "MAPHead_0/LayerNorm_0/bias": r(d), "head/kernel": r(d, 32), "head/bias": r(32)}
    for i in range(DEPTH):
        b = f"Transformer/encoderblock_{i}/"
        a = b + "MultiHeadDotProductAttention_0/"
        img.update({b + "LayerNorm_0/scale": r(d, std=0.1, mean=1.0), b + "LayerNorm_0/bias": r(d),
                    b + "LayerNorm_1/scale": r(d, std=0.1, mean=1.0), b + "LayerNorm_1/bias": r(d),
                    a + "out/kernel": r(heads, dh, d), a + "out/bias": r(d),
                    b + "MlpBlock_0/Dense_0/kernel": r(d, 4 * d), b + "MlpBlock_0/Dense_0/bias": r(4 * d),
                    b + "MlpBlock_0/Dense_1/kernel": r(4 * d, d), b + "MlpBlock_0/Dense_1/bias": r(d)})
        for n in ("query", "key", "value"):
            img.update({a + f"{n}/kernel": r(d, heads, dh, std=0.08), a + f"{n}/bias": r(heads, dh)})
    arrays = {f"params/img/{k}": v for k, v in img.items()}
    arrays.update({"params/txt/Embed_0/embedding": r(50, 32), "params/t": np.array([2.3], np.float32)})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "siglip.npz"
    np.savez(path, **arrays)
    return path, img
