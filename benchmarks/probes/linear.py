"""DINOv2's linear semantic segmentation probe (``lin.`` and ``+ms``) trained on cached features.

The head is DINOv2's ``BNHead`` (``dinov2/eval/segmentation/models/decode_heads/linear_head.py``
on MMSegmentation 0.27's ``BaseDecodeHead``): the selected block outputs (each after the final
LayerNorm, patch tokens only) concatenated along channels, a BatchNorm over them, and a 1x1
convolution to the class logits (weights N(0, 0.01^2), bias 0; no dropout). Training and test
pipelines, schedule, loss and sliding-window / multi-scale inference restate the mmseg 0.27
config (docs/probes.md, with the source of each setting).

Features are computed once: every training image gets ``views`` augmented views (view ``v`` of
image ``i`` is drawn from a generator seeded with ``(data_seed, v, i)``), and epoch ``e`` of every
probe seed reads view ``e % views`` of each image, in an order drawn from the probe seed. With
``views`` at least the number of epochs the schedule runs (the default), every sample is a fresh
augmentation, as in the reference; fewer views reuse them (stated in the results).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.probes import datasets as ds
from benchmarks.probes import fused_ce
from benchmarks.probes import transforms as T
from benchmarks.probes.metrics import confusion, iou_mmseg


class LinearHead(nn.Module):
    """BatchNorm then a 1x1 convolution: ``[B, C, h, w]`` -> ``[B, K, h, w]`` logits."""

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv_seg = nn.Conv2d(in_channels, n_classes, kernel_size=1)
        nn.init.normal_(self.conv_seg.weight, 0.0, 0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 convolution runs as a matrix product over channels-last positions (the same
        sums; about a fifth faster on CPU, and the logits come out channels-last, the layout the
        fused loss reads): the result is ``[B, K, h, w]`` with channels-last strides."""
        y = self.bn(x).permute(0, 2, 3, 1)
        w = self.conv_seg.weight
        return F.linear(y, w.view(w.shape[0], w.shape[1]), self.conv_seg.bias).permute(0, 3, 1, 2)


def stack_layers(feat: torch.Tensor) -> torch.Tensor:
    """Cached ``[B, L, C, h, w]`` -> ``[B, L*C, h, w]`` (layers concatenated in order, as
    ``resize_concat`` over maps of one grid)."""
    return feat.reshape(feat.shape[0], -1, *feat.shape[-2:])


def poly_lr(it: int, base: float, total: int, warmup: int, warmup_ratio: float, power: float = 1.0,
            min_lr: float = 0.0) -> float:
    """mmcv's ``PolyLrUpdaterHook`` with linear warm-up: ``(base - min) (1 - it/total)^power + min``,
    times ``1 - (1 - it/warmup)(1 - warmup_ratio)`` during the first ``warmup`` iterations."""
    lr = (base - min_lr) * (1 - it / total) ** power + min_lr
    if it < warmup:
        lr *= 1 - (1 - it / warmup) * (1 - warmup_ratio)
    return lr


def seg_loss(logits: torch.Tensor, labels: torch.Tensor, ignore: int = 255, fused: bool = True) -> torch.Tensor:
    """Cross-entropy of ``[B, K, h, w]`` logits upsampled (bilinear) to the ``[B, H, W]`` labels,
    averaged over **all** pixels, ignored ones counting 0 (mmseg 0.27 ``avg_non_ignore=False``).

    On CPU this runs as one fused pass (:mod:`benchmarks.probes.fused_ce`, equal to the expression
    below to float rounding); ``fused=False`` forces the expression."""
    if fused and fused_ce.applies(logits, labels, ignore):
        return fused_ce.seg_ce(logits, labels, ignore)
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(up, labels.long(), ignore_index=ignore, reduction="none").mean()


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """mmseg ``reduce_zero_label``: 0 -> 255, every other value minus 1, 254 -> 255."""
    out = label.astype(np.int16) - 1
    out[label == 0] = 255
    out[out == 254] = 255
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------- data
def samples(cfg, root, split: str) -> list[dict]:
    name = cfg.dataset.name
    reader = {"ade20k": ds.ade_split, "voc2012": ds.voc_split, "cityscapes": ds.cityscapes_split}[name]
    return reader(root, split)


def load_label(cfg, path) -> np.ndarray:
    label = ds.read_label(path)
    return reduce_zero_label(label) if cfg.dataset.reduce_zero_label else label


def image_size(path) -> tuple[int, int]:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except OSError as err:
        raise ds.ProbeDataError(f"{path}: cannot read image ({err})") from None


def test_items(cfg, val: list[dict]) -> list[tuple[int, int, tuple]]:
    """Eval items ``(image index, pass index, window)`` in image order; a pass is one
    ``(scale ratio, flip)`` of :func:`passes`."""
    t = cfg.test
    crop, stride = tuple(t.crop_size), tuple(t.stride)
    items = []
    for i, s in enumerate(val):
        h, w = image_size(s["image"])
        for p, (ratio, _) in enumerate(passes(cfg)):
            rh, rw = T.rescale_size(h, w, int(99999999 * ratio), int(t.short_side * ratio))
            if rh < crop[0] or rw < crop[1]:
                raise ds.ProbeDataError(f"{s['image']}: rescaled to {rw}x{rh}, smaller than the "
                                        f"{crop[1]}x{crop[0]} window (test.short_side below test.crop_size)")
            items += [(i, p, box) for box in T.slide_windows(rh, rw, crop, stride)]
    return items


def passes(cfg) -> list[tuple[float, bool]]:
    flips = (False, True) if cfg.test.flip else (False,)
    return [(float(r), f) for r in cfg.test.ratios for f in flips]


# ----------------------------------------------------------------------------- train / eval
def train_head(store, n_images: int, views: int, n_classes: int, cfg, seed: int, device, log=print) -> LinearHead:
    """One probe seed on the cached training views; returns the trained head (eval mode)."""
    tr = cfg.train
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    probe = store.take("feat", [0])
    head = LinearHead(probe.shape[1] * probe.shape[2], n_classes).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=tr.lr, betas=tuple(tr.betas), weight_decay=tr.weight_decay)
    order, epoch, pos = torch.randperm(n_images, generator=g), 0, 0
    from tqdm import tqdm
    bar = tqdm(range(tr.iters), desc=f"linear probe seed {seed}", unit="it", disable=None)
    head.train()
    for it in bar:
        idx = []
        while len(idx) < tr.batch_size:
            if pos == n_images:
                order, epoch, pos = torch.randperm(n_images, generator=g), epoch + 1, 0
            idx.append((epoch % views) * n_images + int(order[pos]))
            pos += 1
        for group in opt.param_groups:
            group["lr"] = poly_lr(it, tr.lr, tr.iters, tr.warmup_iters, tr.warmup_ratio, tr.poly_power, tr.min_lr)
        feat = stack_layers(torch.from_numpy(store.take("feat", idx)).to(device).float())
        labels = torch.from_numpy(store.take("label", idx)).to(device)
        labels = labels if labels.device.type == "cpu" else labels.long()     # the CPU kernel reads uint8
        loss = seg_loss(head(feat), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return head.eval()


@torch.no_grad()
def window_logits(head: LinearHead, store, rows: range, device, chunk: int = 32) -> torch.Tensor:
    """``[n, K, h, w]`` logits of the cached windows ``rows``, ``chunk`` windows at a time (an
    image at the largest +ms scale has hundreds of windows)."""
    out = []
    for start in range(rows.start, rows.stop, chunk):
        feats = torch.from_numpy(store.take("feat", range(start, min(start + chunk, rows.stop)))).to(device)
        out.append(head(stack_layers(feats.float())))
    return torch.cat(out)


@torch.no_grad()
def predict(logits: torch.Tensor, items: list, size: tuple[int, int], cfg, n_classes: int) -> torch.Tensor:
    """Label map ``[H, W]`` of one image from its windows' logits ``[n, K, h, w]`` (mmseg 0.27
    ``slide_inference`` per pass, each pass resized to the original size and softmaxed, flips
    undone, passes averaged, argmax); ``items`` ``(image, pass, box)`` of the windows."""
    h, w = size
    total = torch.zeros(n_classes, h, w, device=logits.device)
    for p, (ratio, flip) in enumerate(passes(cfg)):
        rh, rw = T.rescale_size(h, w, int(99999999 * ratio), int(cfg.test.short_side * ratio))
        canvas = torch.zeros(n_classes, rh, rw, device=logits.device)
        count = torch.zeros(1, rh, rw, device=logits.device)
        for logit, (_, q, (y1, y2, x1, x2)) in zip(logits, items):
            if q != p:
                continue
            canvas[:, y1:y2, x1:x2] += F.interpolate(logit[None], size=(y2 - y1, x2 - x1), mode="bilinear",
                                                     align_corners=False)[0]
            count[:, y1:y2, x1:x2] += 1
        canvas = F.interpolate((canvas / count)[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        prob = canvas.softmax(0)
        total += prob.flip(-1) if flip else prob
    return (total / len(passes(cfg))).argmax(0)


def run(cfg, enc, root: Path, cache_root: Path, log=print, save_pred=None) -> dict:
    """The whole protocol; returns the results part of ``probe_results.json``."""
    from benchmarks.probes.cache import data_digest
    from benchmarks.probes.extract import extract, resolve_layers, view_item, view_schedule
    n_classes = cfg.dataset.num_classes
    train, val = samples(cfg, root, cfg.dataset.train_split), samples(cfg, root, cfg.dataset.val_split)
    layers = resolve_layers(cfg.model.layers, enc.depth)
    tr = cfg.train
    epochs, views = view_schedule(tr, len(train))
    crop = tuple(tr.crop_size)

    def render_train(k):
        rng, i = view_item(tr.data_seed, k, len(train))
        img, label = ds.read_rgb(train[i]["image"]), load_label(cfg, train[i]["label"])
        ds.check_label(train[i]["label"], label, n_classes, image_shape=img.shape)
        x, y = T.seg_train_view(rng, img, label, tr.short_side, tr.ratio_range, crop, enc.mean, enc.std,
                                tr.cat_max_ratio)
        return x, {"label": y}

    paths = [p for s in train for p in (s["image"], s["label"])]
    key = {"protocol": "linear-train", "dataset": cfg.dataset.name, "reduce_zero_label": cfg.dataset.reduce_zero_label,
           "pipeline": {k: tr[k] for k in ("short_side", "ratio_range", "crop_size", "cat_max_ratio", "data_seed")},
           "views": views, "data_sha256": data_digest(paths, root)}
    c = cfg.cache
    train_store = extract(enc, cache_root, key, views * len(train), render_train, layers, norm=cfg.model.norm,
                          batch=c.batch_size, shard_size=c.shard_size, desc="features (train views)")

    items = test_items(cfg, val)
    resized = {}

    def render_test(k):
        i, p, (y1, y2, x1, x2) = items[k]
        if resized.get("key") != (i, p):
            ratio, flip = passes(cfg)[p]
            img = ds.read_rgb(val[i]["image"])
            img = T.resize(img, T.rescale_size(*img.shape[:2], int(99999999 * ratio), int(cfg.test.short_side * ratio)))
            resized.update(key=(i, p), img=np.ascontiguousarray(img[:, ::-1]) if flip else img)
        return T.normalise(resized["img"][y1:y2, x1:x2], enc.mean, enc.std), {}

    vpaths = [s["image"] for s in val]
    vkey = {"protocol": "linear-test", "dataset": cfg.dataset.name,
            "test": {k: cfg.test[k] for k in ("short_side", "ratios", "flip", "crop_size", "stride")},
            "data_sha256": data_digest(vpaths, root)}
    test_store = extract(enc, cache_root, vkey, len(items), render_test, layers, norm=cfg.model.norm,
                         batch=c.batch_size, shard_size=c.shard_size, desc="features (test windows)")

    from core import dist
    if dist.rank() != 0:        # other ranks only extract their shards
        return None
    starts = np.searchsorted([it[0] for it in items], np.arange(len(val) + 1))
    runs = []
    for n, seed in enumerate(cfg.train.seeds):
        head = train_head(train_store, len(train), views, n_classes, cfg, seed, enc.device, log)
        conf = torch.zeros(n_classes, n_classes, dtype=torch.int64)
        for i, s in enumerate(val):
            sl = slice(starts[i], starts[i + 1])
            label = ds.check_label(s["label"], load_label(cfg, s["label"]), n_classes, image_shape=image_size(s["image"]))
            logits = window_logits(head, test_store, range(sl.start, sl.stop), enc.device)
            pred = predict(logits, items[sl], label.shape, cfg, n_classes).cpu()
            conf += confusion(torch.from_numpy(label), pred, n_classes)
            if save_pred is not None and n == 0:
                save_pred(s["id"], pred.numpy().astype(np.uint8))
        scores = iou_mmseg(conf)
        log(f"linear probe seed {seed}: mIoU {scores['mIoU']:.2f}  aAcc {scores['aAcc']:.2f}")
        runs.append({"seed": int(seed), **scores})
    mious = [r["mIoU"] for r in runs]
    return {"metrics": {"mIoU": float(np.mean(mious)), "mIoU_std": float(np.std(mious)) if len(mious) > 1 else 0.0},
            "per_seed": runs, "layers": layers, "epochs": epochs, "views": views,
            "views_reused": views < epochs, "train_images": len(train), "val_images": len(val),
            "test_windows": len(items), "caches": {"train": train_store.describe(), "test": test_store.describe()}}


__all__ = ["LinearHead", "stack_layers", "poly_lr", "seg_loss", "reduce_zero_label", "train_head", "window_logits",
           "predict", "run"]
