#!/usr/bin/env python
"""Time the trainer's own training step (``pretrain.trainer.Trainer.train_step``: teacher +
student forward on all views, loss, backward, clipping, AdamW, EMA) for ViT-S/16, side by side
with a plain reference step written the straightforward way (a Python loop over views,
boolean-mask token selection, unfused attention, per-view losses), from the same weights and
batch. The trainer is built from ``configs/pretrain/flsl_vits16_in1k.py`` (drop-path off so that
the first-step losses compare; data root: a few generated images, never read in the timing).

CPU (default): fp32 for both, steps of the two alternating (median of ``--steps`` each, so a
change in the machine's load hits both alike). Prints both step times and images/s, their ratio,
both first-step losses, and the step's model GFLOP/s (FLOPs counted once,
``Trainer.flops_per_image``) against this machine's fp32 matmul GFLOP/s.

GPU (``--device cuda``): the trainer's step in bf16 autocast (the config's ``train.amp``; SDPA
picks flash attention), optionally compiled (``--compile blocks|model``, ``--compile-mode``,
e.g. ``reduce-overhead`` for CUDA graphs), against the reference in fp16 autocast with a
GradScaler; prints images/s, peak memory, the ratio, and model FLOP utilisation (MFU) against
the card's dense bf16 peak (``pretrain.flops.PEAK_FLOPS``) and against a measured bf16 matmul.

    python speed/bench_pretrain.py [--batch 4] [--steps 3] [--arch vit_small_patch16_224]
    python speed/bench_pretrain.py --device cuda --batch 64 --steps 20 [--compile blocks]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from mmengine.config import Config

from synthetic.images import write_image_folder
from pretrain.encoder import EncoderSpec
from pretrain.flops import peak_flops
from pretrain.model import FLSLNet
from pretrain.trainer import Trainer, param_groups
from pretrain.views import token_sampling_mask

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pretrain" / "flsl_vits16_in1k.py"


def make_batch(b: int, n_local: int, g: torch.Generator, device: str = "cpu") -> dict:
    """A batch in the data loader's layout (views, sampled token positions) plus the boolean
    masks the reference step selects with."""
    gm = torch.stack([token_sampling_mask(14, 3, generator=g) for _ in range(b)])
    lm = torch.stack([torch.stack([token_sampling_mask(6, 2, generator=g) for _ in range(n_local)])
                      for _ in range(b)])
    batch = {
        "teacher": torch.randn(b, 3, 224, 224, generator=g),
        "global": torch.randn(b, 3, 224, 224, generator=g),
        "locals": torch.randn(b, n_local, 3, 96, 96, generator=g),
        "global_index": gm.nonzero()[:, 1].view(b, -1),
        "local_index": lm.flatten(0, 1).nonzero()[:, 1].view(b, n_local, -1),
        "global_mask": gm,
        "local_mask": lm,
    }
    return {k: v.to(device) for k, v in batch.items()}


def build_trainer(args, work_dir: Path) -> Trainer:
    cfg = Config.fromfile(str(CONFIG))
    root = write_image_folder(work_dir / "images", n_images=args.batch, size=64)
    cfg.model.arch, cfg.model.out_dim, cfg.model.drop_path_rate = args.arch, args.out_dim, 0.0
    cfg.data.root, cfg.data.batch_size_per_gpu, cfg.data.num_workers = str(root), args.batch, 0
    cfg.train.epochs = args.steps + 20                  # one iteration per epoch here
    cfg.train.device = "cuda" if args.device.startswith("cuda") else "cpu"
    cfg.train.compile, cfg.train.compile_mode = args.compile, args.compile_mode
    return Trainer(cfg, work_dir / "run", resume=None)


class Setup:
    """The reference step's networks and loss, with the trainer's weights."""

    def __init__(self, trainer: Trainer, k: int, device: str = "cpu", amp=None):
        self.amp = amp            # None (fp32) or torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
        spec = EncoderSpec.make(trainer.spec.arch, **dict(trainer.spec.kwargs))
        self.student = FLSLNet(spec, 0.0, k)
        self.teacher = FLSLNet(spec, 0.0, k)
        self.student.load_state_dict(_plain_state(trainer.student))
        self.teacher.load_state_dict(_plain_state(trainer.teacher))
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        # the trainer's mean-shift scales (the config's, 0.1 and 0.2 / sqrt(384) for ViT-S)
        self.beta_sa, self.beta_ca = float(trainer.beta_sa_sched[0]), float(trainer.beta_ca_sched[0])
        self.student.to(device)
        self.teacher.to(device)

    def autocast(self, device_type: str):
        return torch.autocast(device_type, dtype=self.amp or torch.float32, enabled=self.amp is not None)


def _plain_state(net) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


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


def time_interleaved(trainer: Trainer, setup: Setup, batch, steps: int):
    """CPU: one trainer step and one reference step in turn (after one warm-up step each, whose
    loss is returned). Returns ``[(median step seconds, first loss)]`` for both."""
    opt = torch.optim.AdamW(param_groups(setup.student), lr=1e-4)
    first = [float(trainer.train_step(batch, 0)[0]), float(reference_step(setup, opt, batch))]
    times = [[], []]
    for it in range(1, steps + 1):
        t0 = time.perf_counter()
        trainer.train_step(batch, it)
        times[0].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference_step(setup, opt, batch)
        times[1].append(time.perf_counter() - t0)
    return [(sorted(t)[len(t) // 2], f) for t, f in zip(times, first)]


def time_gpu(step, steps: int, warmup: int):
    """GPU: seconds per step after ``warmup`` steps (the first step's loss is returned) and the
    peak memory in MiB."""
    torch.cuda.reset_peak_memory_stats()
    first = float(step(0))
    for it in range(1, warmup):
        step(it)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for it in range(warmup, warmup + steps):
        step(it)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, first, torch.cuda.max_memory_allocated() / 2 ** 20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vit_small_patch16_224")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3, help="GPU: untimed steps first (compilation)")
    p.add_argument("--out-dim", type=int, default=4096)
    p.add_argument("--device", default="cpu", help="cpu (fp32 both) or cuda (bf16 trainer vs fp16 reference)")
    p.add_argument("--compile", default=None, choices=["blocks", "model"], help="the trainer's train.compile")
    p.add_argument("--compile-mode", default="default", help="the trainer's train.compile_mode")
    args = p.parse_args(argv)
    gpu = args.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(args, Path(tmp))
        g = torch.Generator().manual_seed(0)
        batch = make_batch(args.batch, 2, g, args.device)
        where = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
        precision = (f"trainer {trainer.amp_dtype} autocast (compile: {args.compile or 'off'}"
                     f"{', ' + args.compile_mode if args.compile else ''}) vs reference fp16 autocast + "
                     "GradScaler" if gpu else "fp32 both")
        print(f"{args.arch}, batch {args.batch} (1 teacher + 1 global 224 px + 2 local 96 px views each), "
              f"K={args.out_dim}, {where}, {precision}", flush=True)
        setup = Setup(trainer, args.out_dim, args.device, torch.float16 if gpu else None)
        if gpu:
            t_fast, loss_fast, mem_fast = time_gpu(lambda it: trainer.train_step(batch, it)[0],
                                                   args.steps, args.warmup)
            opt = torch.optim.AdamW(param_groups(setup.student), lr=1e-4)
            t_ref, loss_ref, mem_ref = time_gpu(lambda it: reference_step(setup, opt, batch),
                                                args.steps, args.warmup)
        else:
            (t_fast, loss_fast), (t_ref, loss_ref) = time_interleaved(trainer, setup, batch, args.steps)
            mem_fast = mem_ref = float("nan")
        flops = trainer.flops_per_image() * args.batch
        ceiling = matmul_gflops(args.device, torch.bfloat16 if gpu else torch.float32)
        peak = peak_flops(args.device, trainer.amp_dtype) if gpu else None
    print(f"{'':22s}{'step s':>10s}{'images/s':>10s}{'loss (1st step)':>18s}{'peak MiB':>10s}")
    print(f"{'trainer step':22s}{t_fast:10.3f}{args.batch / t_fast:10.1f}{loss_fast:18.6f}{mem_fast:10.0f}")
    print(f"{'plain reference':22s}{t_ref:10.3f}{args.batch / t_ref:10.1f}{loss_ref:18.6f}{mem_ref:10.0f}")
    print(f"time ratio trainer/reference: {t_fast / t_ref:.3f}x  (speed-up {t_ref / t_fast:.2f}x)")
    print(f"loss difference: {abs(loss_fast - loss_ref):.2e}" + ("  (bf16 vs fp16: equal to ~1e-2)" if gpu else ""))
    print(f"model FLOPs: {flops / args.batch / 1e9:.1f} GFLOP per image -> trainer {flops / t_fast / 1e9:.1f} "
          f"GFLOP/s, reference {flops / t_ref / 1e9:.1f} GFLOP/s")
    kind = "bf16 matmul 8192^3" if gpu else "fp32 matmul 2048^3"
    print(f"{kind} on this machine: {ceiling:.1f} GFLOP/s -> trainer step at "
          f"{100 * flops / t_fast / 1e9 / ceiling:.0f}% of matmul throughput")
    if gpu:
        if peak:
            print(f"MFU against the {torch.cuda.get_device_name()} dense peak ({peak / 1e12:.0f} TFLOP/s): "
                  f"trainer {100 * flops / t_fast / peak:.1f}%, reference {100 * flops / t_ref / peak:.1f}%")
        else:
            print("MFU: this card is not in pretrain.flops.PEAK_FLOPS")


if __name__ == "__main__":
    main()
