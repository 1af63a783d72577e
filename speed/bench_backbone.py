"""Backbone + adapter speed and memory: ours (timm ViT with fused attention + MultiScaleAdapter)
side by side with the authors' layout written plainly (explicit softmax attention, the XCiT-style
fpn1..fpn4 branches), on the same weights.

    python speed/bench_backbone.py [--height 800 --width 1216 --patch 16 --repeats 3
                                         --device cpu|cuda --threads N]

Prints, per implementation: forward time per image (median of ``--repeats`` after one warm-up,
batch 1, no grad, eval mode) and the peak memory of one training iteration (forward + backward of
a scalar loss on the four maps, batch 1, train mode): on CUDA from
``torch.cuda.max_memory_allocated``; on CPU as the growth of the process's peak resident set
(``ru_maxrss``) during that iteration, measured in a fresh subprocess per implementation. Ratios
are plain / ours. The two implementations' outputs are compared first (max abs difference).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


from benchmarks.dense.backbone import FLSLViT


# ------------------------------------------------------------------------- plain reference
class PlainAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):  # [B, N, C]
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class PlainBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), PlainAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class PlainViTAdapter(nn.Module):
    """The authors' detection backbone layout: ViT blocks, then per-level fpn1..fpn4 branches."""

    def __init__(self, ours: FLSLViT):
        super().__init__()
        enc = ours.encoder
        c, self.p = ours.embed_dim, ours.patch_size
        heads, hidden = enc.blocks[0].attn.num_heads, enc.blocks[0].mlp.fc1.out_features
        self.patch_embed = nn.Conv2d(3, c, self.p, self.p)
        self.pos_embed = nn.Parameter(enc.pos_embed.detach().clone())
        self.grid = tuple(enc.patch_embed.grid_size)
        self.blocks = nn.ModuleList(PlainBlock(c, heads, hidden) for _ in enc.blocks)
        self.out_indices = ours.out_indices
        if self.p != 16:
            raise ValueError("the plain reference implements the patch-16 layout")
        self.fpn1 = nn.Sequential(nn.ConvTranspose2d(c, c, 2, 2), nn.BatchNorm2d(c), nn.GELU(),
                                  nn.ConvTranspose2d(c, c, 2, 2))
        self.fpn2 = nn.ConvTranspose2d(c, c, 2, 2)
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2, 2)
        self._copy_from(ours)

    @torch.no_grad()
    def _copy_from(self, ours: FLSLViT) -> None:
        enc = ours.encoder
        self.patch_embed.load_state_dict(enc.patch_embed.proj.state_dict())
        for mine, theirs in zip(self.blocks, enc.blocks):
            mine.norm1.load_state_dict(theirs.norm1.state_dict())
            mine.norm2.load_state_dict(theirs.norm2.state_dict())
            mine.attn.qkv.load_state_dict(theirs.attn.qkv.state_dict())
            mine.attn.proj.load_state_dict(theirs.attn.proj.state_dict())
            mine.fc1.load_state_dict(theirs.mlp.fc1.state_dict())
            mine.fc2.load_state_dict(theirs.mlp.fc2.state_dict())
        lv = ours.adapter.levels
        self.fpn1.load_state_dict(lv[0].state_dict())
        self.fpn2.load_state_dict(lv[1].state_dict())

    def forward(self, x):
        b = x.shape[0]
        x = self.patch_embed(x)
        hp, wp = x.shape[-2:]
        pos = self.pos_embed.reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        # the authors' (DINO's) rule: bicubic by scale factor (g + 0.1) / n, no antialiasing
        gh, gw = self.grid
        pos = F.interpolate(pos, scale_factor=((hp + 0.1) / gh, (wp + 0.1) / gw), mode="bicubic")
        x = x.flatten(2).transpose(1, 2) + pos.flatten(2).transpose(1, 2)
        feats = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.out_indices:
                feats.append(x.transpose(1, 2).reshape(b, -1, hp, wp))
        return tuple(op(f) for op, f in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), feats))


# ------------------------------------------------------------------------- measurements
def build(kind: str, arch: str):
    torch.manual_seed(0)
    ours = FLSLViT(arch, out_indices=(3, 5, 7, 11), adapter="multiscale", norm="BN")
    return ours if kind == "ours" else PlainViTAdapter(ours)


def time_forward(model, x, repeats: int) -> float:
    """Median seconds per forward (batch 1, eval, no grad) after one warm-up."""
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if x.is_cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def train_peak_mib(kind: str, arch: str, height: int, width: int, device: str) -> float:
    """Peak memory (MiB) of one forward + backward (see module docstring)."""
    model = build(kind, arch).to(device).train()
    x = torch.randn(1, 3, height, width, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sum(o.float().mean() for o in model(x)).backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sum(o.float().mean() for o in model(x)).backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # kB on Linux


def _peak_in_subprocess(kind: str, args) -> float:
    code = ("import torch; torch.set_num_threads(%d);" % args.threads
            + "from speed.bench_backbone import train_peak_mib;"
            f"print(train_peak_mib({kind!r}, {args.arch!r}, {args.height}, {args.width}, 'cpu'))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--width", type=int, default=1216)
    p.add_argument("--arch", default="vit_small_patch16_224")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = args.device
    ours, plain = build("ours", args.arch).to(dev), build("plain", args.arch).to(dev)
    x = torch.randn(1, 3, args.height, args.width, device=dev)
    with torch.no_grad():
        diff = max((a - b).abs().max().item() for a, b in zip(ours.eval()(x), plain.eval()(x)))
    res = {"device": torch.cuda.get_device_name() if dev == "cuda" else f"cpu x{args.threads} threads",
           "input": [args.height, args.width], "arch": args.arch, "max_abs_diff": diff,
           "tokens": math.ceil(args.height / ours.patch_size) * math.ceil(args.width / ours.patch_size)}
    for name, model in (("ours", ours), ("plain", plain)):
        res[f"{name}_forward_s"] = time_forward(model, x, args.repeats)
    for name in ("ours", "plain"):
        res[f"{name}_train_peak_mib"] = (train_peak_mib(name, args.arch, args.height, args.width, dev)
                                         if dev == "cuda" else _peak_in_subprocess(name, args))
    print(f"backbone + adapter, {args.arch}, input {args.height}x{args.width} ({res['tokens']} tokens), "
          f"{res['device']}; outputs agree to {diff:.2e}")
    print(f"{'':24s}{'ours':>12s}{'plain':>12s}{'plain/ours':>12s}")
    for label, key, scale in (("forward s / image", "forward_s", 1.0),
                              ("train iter peak MiB", "train_peak_mib", 1.0)):
        a, b = res[f"ours_{key}"] * scale, res[f"plain_{key}"] * scale
        print(f"{label:24s}{a:12.3f}{b:12.3f}{b / a:12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
