#!/usr/bin/env python
"""Time one full FLSL training step (teacher + student forward on all views, loss, backward,
AdamW, EMA) for ViT-S/16, side by side with a plain reference step written the
straightforward way (a Python loop over views, boolean-mask token selection, unfused
attention, per-view losses), from the same weights and batch.

CPU (default): fp32 for both, steps of the two alternating (median of ``--steps`` each, so a
change in the machine's load hits both alike). Prints both step times, their ratio, both loss
values, and the step's achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode) against this
machine's fp32 matmul GFLOP/s.

GPU (``--device cuda``): the project step in bf16 autocast (SDPA picks flash attention) against
the reference in fp16 autocast with a GradScaler, as mixed-precision training is usually
written; prints images/s and peak memory of both, their ratio, and the step's GFLOP/s against a bf16
matmul's.

    python speed/bench_pretrain.py [--batch 4] [--steps 3] [--arch vit_small_patch16_224]
    python speed/bench_pretrain.py --device cuda --batch 64 --steps 10
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


from pretrain.encoder import EncoderSpec
from pretrain.loss import FLSLLoss
from pretrain.model import FLSLNet
from pretrain.trainer import clip_per_parameter, ema_update, param_groups
from pretrain.views import token_sampling_mask


def make_batch(b: int, n_local: int, g: torch.Generator, device: str = "cpu"):
    glob = torch.randn(b, 3, 224, 224, generator=g)
    batch = {
        "teacher": torch.randn(b, 3, 224, 224, generator=g),
        "global": glob,
        "locals": torch.randn(b, n_local, 3, 96, 96, generator=g),
        "global_mask": torch.stack([token_sampling_mask(14, 3, generator=g) for _ in range(b)]),
        "local_mask": torch.stack([torch.stack([token_sampling_mask(6, 2, generator=g) for _ in range(n_local)])
                                   for _ in range(b)]),
    }
    return {k: v.to(device) for k, v in batch.items()}


class Setup:
    def __init__(self, arch: str, k: int, seed: int = 0, device: str = "cpu", amp=None):
        torch.manual_seed(seed)
        self.amp = amp            # None (fp32), torch.bfloat16 or torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
        spec = EncoderSpec.make(arch)
        self.student = FLSLNet(spec, 0.0, k)
        self.teacher = FLSLNet(spec, 0.0, k)
        self.teacher.load_state_dict(self.student.state_dict())
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        c = self.student.backbone.embed_dim
        self.beta_sa, self.beta_ca = 0.1 / c ** 0.5, 0.2 / c ** 0.5
        self.criterion = FLSLLoss(0.1, [0.04], (0.03, 1.0, 5.0))
        self.student.to(device)
        self.teacher.to(device)
        self.criterion.to(device)

    def autocast(self, device_type: str):
        return torch.autocast(device_type, dtype=self.amp or torch.float32, enabled=self.amp is not None)


# ----------------------------------------------------------------------------- project step
def fast_step(s: Setup, opt, batch) -> torch.Tensor:
    gi = batch["global_mask"].nonzero()[:, 1].view(batch["global"].shape[0], -1)
    li = batch["local_mask"].flatten(0, 1).nonzero()[:, 1].view(*batch["local_mask"].shape[:2], -1)
    with s.autocast(batch["global"].device.type):
        x_g, x_l, tokens, modes, s_logits = s.student(batch["global"], batch["locals"], gi, li, s.beta_sa)
        t_logits = s.teacher.teacher_targets(batch["teacher"], x_g, x_l, s.beta_ca)
    loss, _ = s.criterion(tokens, modes, s_logits, t_logits, 0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    clip_per_parameter([p for p in s.student.parameters() if p.requires_grad], 3.0)
    opt.step()
    ema_update(s.teacher, s.student, 0.996)
    return loss.detach()


# ----------------------------------------------------------------------------- plain reference
def plain_attention_forward(attn, x):
    b, n, c = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q, k = attn.q_norm(q), attn.k_norm(k)
    a = (q @ k.transpose(-2, -1)) * attn.scale
    a = a.softmax(dim=-1)
    out = (a @ v).transpose(1, 2).reshape(b, n, c)
    return attn.proj(attn.norm(out))


def plain_encode(vit, x):
    x = vit.patch_embed(x)
    x = vit._pos_embed(x)
    for blk in vit.blocks:
        x = x + blk.ls1(plain_attention_forward(blk.attn, blk.norm1(x)))
        x = x + blk.ls2(blk.mlp(blk.norm2(x)))
    return vit.norm(x)


def plain_shift(x, keys, beta):
    w = torch.softmax(beta * x @ keys.transpose(-1, -2), dim=-1)
    return w @ keys


def reference_step(s: Setup, opt, batch) -> torch.Tensor:
    b, n_local = batch["locals"].shape[:2]
    with s.autocast(batch["global"].device.type):
        tokens, modes, s_logits, t_logits = plain_forward(s, batch, b, n_local)
    tokens, modes, s_logits, t_logits = tokens.float(), modes.float(), s_logits.float(), t_logits.float()
    ms_loss = 2 - 2 * F.cosine_similarity(tokens, modes, dim=-1).mean()
    q = torch.softmax(t_logits / 0.04, dim=-1)
    logp = torch.log_softmax(s_logits / 0.1, dim=-1)
    km = -(q * logp).sum(-1).mean()
    p_bar = logp.exp().mean(0)
    vmr = (p_bar * p_bar.log()).sum() + torch.log(torch.tensor(float(p_bar.numel())))
    loss = 0.03 * ms_loss + km + 5.0 * vmr
    opt.zero_grad()
    if s.scaler:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(opt)
    else:
        loss.backward()
    for p in s.student.parameters():               # per-parameter clipping, one tensor at a time
        if p.grad is not None:
            n = p.grad.norm()
            if n > 3.0:
                p.grad.mul_(3.0 / (n + 1e-6))
    if s.scaler:
        s.scaler.step(opt)
        s.scaler.update()
    else:
        opt.step()
    with torch.no_grad():
        for pt, ps in zip(s.teacher.parameters(), s.student.parameters()):
            if ps.requires_grad:
                pt.mul_(0.996).add_((1 - 0.996) * ps)
    return loss.detach()


def plain_forward(s: Setup, batch, b: int, n_local: int):
    with torch.no_grad():
        t = plain_encode(s.teacher.backbone, batch["teacher"])
    views = [(batch["global"], batch["global_mask"])] + [
        (batch["locals"][:, v], batch["local_mask"][:, v]) for v in range(n_local)]
    xs, ms, us = [], [], []
    for img, mask in views:                       # one view at a time
        z = plain_encode(s.student.backbone, img)
        x = z[mask].view(b, -1, z.shape[-1])       # boolean indexing
        xs.append(x.reshape(-1, x.shape[-1]))
        ms.append(plain_shift(x, z, s.beta_sa).reshape(-1, x.shape[-1]))
        with torch.no_grad():
            us.append(plain_shift(x.detach(), t, s.beta_ca).reshape(-1, x.shape[-1]))
    tokens, modes = torch.cat(xs), torch.cat(ms)
    s_logits = s.student.head(modes)
    with torch.no_grad():
        t_logits = s.teacher.head(torch.cat(us))
    return tokens, modes, s_logits, t_logits


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_gflops(device: str = "cpu", dtype=torch.float32, n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of an n x n x n matrix product (the machine's own ceiling)."""
    if device.startswith("cuda"):
        n, repeats = 8192, 20
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def count_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def time_steps_gpu(step, setup, batch, steps, warmup: int = 3):
    """GPU timing of one step function after ``warmup`` steps (the first one's loss is
    returned). Returns ``(seconds per step, first loss, peak MiB allocated)``."""
    opt = torch.optim.AdamW(param_groups(setup.student), lr=1e-4, foreach=(step is fast_step))
    first = step(setup, opt, batch)
    for _ in range(warmup - 1):
        step(setup, opt, batch)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(setup, opt, batch)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, float(first), torch.cuda.max_memory_allocated() / 2 ** 20


def time_interleaved(variants, batch, steps):
    """CPU timing of several step functions, one step of each in turn (after one warm-up step
    each, whose loss is returned). Returns ``[(median step seconds, first loss)]``."""
    runs = []
    for step, setup in variants:
        opt = torch.optim.AdamW(param_groups(setup.student), lr=1e-4, foreach=(step is fast_step))
        runs.append((step, setup, opt, float(step(setup, opt, batch)), []))
    for _ in range(steps):
        for step, setup, opt, _, times in runs:
            t0 = time.perf_counter()
            step(setup, opt, batch)
            times.append(time.perf_counter() - t0)
    return [(sorted(times)[len(times) // 2], first) for _, _, _, first, times in runs]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vit_small_patch16_224")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out-dim", type=int, default=4096)
    p.add_argument("--device", default="cpu", help="cpu (fp32 both) or cuda (bf16 project vs fp16 reference)")
    args = p.parse_args(argv)
    gpu = args.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible")
    g = torch.Generator().manual_seed(0)
    batch = make_batch(args.batch, 2, g, args.device)
    fast_amp, ref_amp = (torch.bfloat16, torch.float16) if gpu else (None, None)
    precision = "project bf16 autocast vs reference fp16 autocast + GradScaler" if gpu else "fp32 both"
    where = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.arch}, batch {args.batch} (1 teacher + 1 global 224 px + 2 local 96 px views each), "
          f"K={args.out_dim}, {where}, {precision}", flush=True)
    if gpu:   # one after the other: each variant's peak memory is measured on its own
        fast_setup = Setup(args.arch, args.out_dim, device=args.device, amp=fast_amp)
        t_fast, loss_fast, mem_fast = time_steps_gpu(fast_step, fast_setup, batch, args.steps)
        del fast_setup
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        ref_setup = Setup(args.arch, args.out_dim, device=args.device, amp=ref_amp)
        t_ref, loss_ref, mem_ref = time_steps_gpu(reference_step, ref_setup, batch, args.steps)
        del ref_setup
    else:     # CPU: steps alternate, so that a change in the machine's load hits both alike
        (t_fast, loss_fast), (t_ref, loss_ref) = time_interleaved(
            [(fast_step, Setup(args.arch, args.out_dim)), (reference_step, Setup(args.arch, args.out_dim))],
            batch, args.steps)
        mem_fast = mem_ref = float("nan")
    flops_setup = Setup(args.arch, args.out_dim, device=args.device, amp=fast_amp)
    flops = count_flops(lambda: fast_step(flops_setup, torch.optim.AdamW(flops_setup.student.parameters()), batch))
    peak = matmul_gflops(args.device, torch.bfloat16 if gpu else torch.float32)
    print(f"{'':22s}{'step s':>10s}{'images/s':>10s}{'loss (1st step)':>18s}{'peak MiB':>10s}")
    print(f"{'project step':22s}{t_fast:10.3f}{args.batch / t_fast:10.1f}{loss_fast:18.6f}{mem_fast:10.0f}")
    print(f"{'plain reference':22s}{t_ref:10.3f}{args.batch / t_ref:10.1f}{loss_ref:18.6f}{mem_ref:10.0f}")
    print(f"time ratio project/reference: {t_fast / t_ref:.3f}x  (speed-up {t_ref / t_fast:.2f}x)")
    print(f"loss difference: {abs(loss_fast - loss_ref):.2e}" + ("  (bf16 vs fp16: equal to ~1e-2)" if gpu else ""))
    print(f"step FLOPs: {flops / 1e9:.1f} GFLOP -> project {flops / t_fast / 1e9:.1f} GFLOP/s, "
          f"reference {flops / t_ref / 1e9:.1f} GFLOP/s")
    kind = "bf16 matmul 8192^3" if gpu else "fp32 matmul 2048^3"
    print(f"{kind} on this machine: {peak:.1f} GFLOP/s -> project step at "
          f"{100 * flops / t_fast / 1e9 / peak:.0f}% of matmul throughput")


if __name__ == "__main__":
    main()
