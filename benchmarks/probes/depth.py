"""DINOv2's monocular depth linear probes ``lin.1`` / ``lin.4`` on NYU Depth v2, on cached features.

Head (``dinov2/eval/depth/models/decode_heads/linear_head.py`` and ``decode_head.py``): for
every selected block the raw output (no final LayerNorm) with the class token broadcast and
concatenated after the patch channels, the layers concatenated, upsampled x4 (bilinear), a 1x1
convolution to 256 bin logits, ``(ReLU(l) + 0.1)`` normalised to a distribution over the bin
centres ``linspace(min_depth, max_depth, 256)``, and the expected depth. Training: SigLoss (with
its 100-call warm-up) plus the gradient loss as written, AdamW with warm-up, cosine decay,
one-cycle beta1 and gradient clipping; test: whole image with flip averaging, clamped depth
resized to the original size, per-image metrics in the Eigen crop averaged over the images.
docs/probes.md gives each setting and its source.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.probes import datasets as ds
from benchmarks.probes import transforms as T
from benchmarks.probes.metrics import depth_errors, mean_depth_errors


class DepthHead(nn.Module):
    """``[B, L, C, h, w]`` patch maps (+ ``[B, L, C]`` class tokens) -> depth ``[B, 1, up*h, up*w]``."""

    def __init__(self, in_channels: int, n_bins: int = 256, min_depth: float = 1e-3, max_depth: float = 10.0,
                 upsample: int = 4):
        super().__init__()
        self.conv_depth = nn.Conv2d(in_channels, n_bins, kernel_size=1)
        self.min_depth, self.max_depth, self.upsample = min_depth, max_depth, upsample
        self.register_buffer("bins", torch.linspace(min_depth, max_depth, n_bins), persistent=False)

    def features(self, patch: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
        b, L, c, h, w = patch.shape
        if cls is not None:
            patch = torch.cat([patch, cls[..., None, None].expand(b, L, c, h, w)], 2)
        x = patch.reshape(b, -1, h, w)
        return F.interpolate(x, size=(h * self.upsample, w * self.upsample), mode="bilinear", align_corners=False)

    def forward(self, patch: torch.Tensor, cls: torch.Tensor | None = None) -> torch.Tensor:
        logit = torch.relu(self.conv_depth(self.features(patch, cls))) + 0.1
        prob = logit / logit.sum(1, keepdim=True)
        return torch.einsum("bkhw,k->bhw", prob, self.bins)[:, None]


def sig_loss(pred: torch.Tensor, gt: torch.Tensor, warm: bool, eps: float = 1e-3) -> torch.Tensor:
    """SigLoss over the valid pixels (``gt > 0``) of the batch: ``sqrt(Var(g) + 0.15 mean(g)^2)``,
    ``g = log(pred + eps) - log(gt + eps)`` (unbiased variance); during warm-up
    ``sqrt(0.15 mean(g)^2)``."""
    valid = gt > 0
    g = torch.log(pred[valid] + eps) - torch.log(gt[valid] + eps)
    if warm:
        return torch.sqrt(0.15 * g.mean() ** 2)
    return torch.sqrt(torch.var(g) + 0.15 * g.mean() ** 2)


def gradient_loss_as_written(pred: torch.Tensor, gt: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The reference GradientLoss on ``[B, 1, H, W]`` tensors exactly as written: its slices and
    differences run over the batch and channel axes, so it is 0 for a batch of 2 (the
    reference's) and only differences images two apart in larger batches."""
    total = pred.new_zeros(())
    for i in range(4):
        p = pred if i == 0 else pred[:: 2 * i, :: 2 * i]
        t = gt if i == 0 else gt[:: 2 * i, :: 2 * i]
        mask = (t > 0).float()
        n = mask.sum()
        d = (torch.log(p + eps) - torch.log(t + eps)) * mask
        v = torch.abs(d[0:-2, :] - d[2:, :]) * mask[0:-2, :] * mask[2:, :]
        h = torch.abs(d[:, 0:-2] - d[:, 2:]) * mask[:, 0:-2] * mask[:, 2:]
        total = total + (h.sum() + v.sum()) / n
    return total


def cosine_lr(it: int, base: float, total: int, warmup: int, warmup_ratio: float, min_ratio: float) -> float:
    """mmcv ``CosineAnnealingLrUpdaterHook`` (``min_lr_ratio``) with linear warm-up."""
    end = base * min_ratio
    lr = end + (base - end) * (math.cos(math.pi * it / total) + 1) / 2
    if it < warmup:
        lr *= 1 - (1 - it / warmup) * (1 - warmup_ratio)
    return lr


def one_cycle_beta1(it: int, total: int, low: float = 0.85, high: float = 0.95, pct: float = 0.3) -> float:
    """mmcv ``OneCycleMomentumUpdaterHook`` (cosine): ``high -> low`` until ``pct * total - 1``,
    then back to ``high`` at ``total - 1``."""
    end1 = float(pct * total) - 1
    if it <= end1:
        start, stop, frac = high, low, it / end1 if end1 > 0 else 1.0
    else:
        start, stop, frac = low, high, (it - end1) / max(total - 1 - end1, 1e-12)
    return stop + (start - stop) / 2 * (math.cos(math.pi * frac) + 1)


def run(cfg, enc, root, cache_root, log=print, save_pred=None) -> dict:
    from benchmarks.probes.cache import data_digest
    from benchmarks.probes.extract import extract, resolve_layers, view_item, view_schedule
    d, tr = cfg.dataset, cfg.train
    train, test = ds.nyu_split(root, d.train_split), ds.nyu_split(root, d.test_split)
    layers = resolve_layers(cfg.model.layers, enc.depth)
    has_cls = getattr(enc.model, "cls_token", None) is not None
    use_cls = has_cls if cfg.model.class_token == "auto" else bool(cfg.model.class_token)
    epochs, views = view_schedule(tr, len(train))
    crop = tuple(tr.crop_size)

    def render_train(k):
        rng, i = view_item(tr.data_seed, k, len(train))
        img, depth = ds.read_rgb(train[i]["image"]), ds.read_depth(train[i]["depth"])
        x, y = T.depth_train_view(rng, img, depth, crop, enc.mean, enc.std, tr.rotate_degree)
        return x, {"depth": y}

    flips = (False, True) if cfg.test.flip else (False,)

    def render_test(k):
        i, f = divmod(k, len(flips))
        img = ds.read_rgb(test[i]["image"])
        return T.normalise(img[:, ::-1] if flips[f] else img, enc.mean, enc.std), {}

    c = cfg.cache
    tkey = {"protocol": "depth-train", "dataset": d.name, "views": views, "data_seed": tr.data_seed,
            "crop": list(crop), "rotate": tr.rotate_degree,
            "data_sha256": data_digest([p for s in train for p in (s["image"], s["depth"])], root)}
    train_store = extract(enc, cache_root, tkey, views * len(train), render_train, layers, norm=cfg.model.norm,
                          class_token=use_cls, batch=c.batch_size, shard_size=c.shard_size,
                          desc="features (train views)")
    vkey = {"protocol": "depth-test", "dataset": d.name, "flips": len(flips),
            "data_sha256": data_digest([s["image"] for s in test], root)}
    test_store = extract(enc, cache_root, vkey, len(test) * len(flips), render_test, layers, norm=cfg.model.norm,
                         class_token=use_cls, batch=c.batch_size, shard_size=c.shard_size, desc="features (test)")
    from core import dist
    if dist.rank() != 0:
        return None

    def batch(store, idx):
        patch = torch.from_numpy(store.take("feat", idx)).float().to(enc.device)
        cls = torch.from_numpy(store.take("cls", idx)).float().to(enc.device) if use_cls else None
        return patch, cls

    runs = []
    probe = train_store.take("feat", [0])
    in_ch = probe.shape[1] * probe.shape[2] * (2 if use_cls else 1)
    from tqdm import tqdm
    for n, seed in enumerate(tr.seeds):
        torch.manual_seed(int(seed))
        g = torch.Generator().manual_seed(int(seed))
        head = DepthHead(in_ch, cfg.head.n_bins, d.min_depth, cfg.head.max_depth, cfg.head.upsample).to(enc.device)
        opt = torch.optim.AdamW(head.parameters(), lr=tr.lr, betas=tuple(tr.betas), weight_decay=tr.weight_decay)
        order, epoch, pos = torch.randperm(len(train), generator=g), 0, 0
        head.train()
        for it in tqdm(range(tr.iters), desc=f"depth probe seed {seed}", unit="it", disable=None):
            idx = []
            while len(idx) < tr.batch_size:
                if pos == len(train):
                    order, epoch, pos = torch.randperm(len(train), generator=g), epoch + 1, 0
                idx.append((epoch % views) * len(train) + int(order[pos]))
                pos += 1
            for group in opt.param_groups:
                group["lr"] = cosine_lr(it, tr.lr, tr.iters, tr.warmup_iters, tr.warmup_ratio, tr.min_lr_ratio)
                if tr.momentum == "onecycle":
                    group["betas"] = (one_cycle_beta1(it, tr.iters), group["betas"][1])
            gt = torch.from_numpy(train_store.take("depth", idx)).float().to(enc.device)[:, None]
            pred = F.interpolate(head(*batch(train_store, idx)), size=gt.shape[-2:], mode="bilinear", align_corners=False)
            loss = sig_loss(pred, gt, warm=it < tr.sigloss_warmup)
            if tr.gradient_loss_weight:
                loss = loss + tr.gradient_loss_weight * gradient_loss_as_written(pred, gt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tr.grad_clip:
                torch.nn.utils.clip_grad_norm_(head.parameters(), tr.grad_clip)
            opt.step()
        head.eval()
        per_image = []
        with torch.no_grad():
            for i, s in enumerate(test):
                gt = ds.read_depth(s["depth"])
                idx = [i * len(flips) + f for f in range(len(flips))]
                out = head(*batch(test_store, idx)).clamp(d.min_depth, cfg.head.max_depth)
                out = F.interpolate(out, size=gt.shape, mode="bilinear", align_corners=False)[:, 0]
                out = torch.stack([o.flip(-1) if f else o for o, f in zip(out, flips)]).mean(0).cpu().numpy()
                per_image.append(depth_errors(out, gt, d.min_depth, d.max_depth, cfg.test.eigen_crop))
                if save_pred is not None and n == 0:
                    save_pred(s["id"], out.astype(np.float32))
        scores = mean_depth_errors(per_image)
        log(f"depth probe seed {seed}: RMSE {scores['rmse']:.4f}  abs_rel {scores['abs_rel']:.4f}  "
            f"delta1 {scores['a1']:.4f}")
        runs.append({"seed": int(seed), **scores})
    metrics = {k: float(np.mean([r[k] for r in runs])) for k in ("rmse", "abs_rel", "a1")}
    return {"metrics": {"RMSE": metrics["rmse"], "abs_rel": metrics["abs_rel"], "delta1": metrics["a1"]},
            "per_seed": runs, "layers": layers, "class_token": use_cls, "epochs": epochs, "views": views,
            "views_reused": views < epochs, "train_images": len(train), "test_images": len(test),
            "caches": {"train": train_store.describe(), "test": test_store.describe()}}


__all__ = ["DepthHead", "sig_loss", "gradient_loss_as_written", "cosine_lr", "one_cycle_beta1", "run"]
