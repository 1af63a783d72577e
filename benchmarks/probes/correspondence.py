"""Zero-shot keypoint correspondence on SPair-71k: PCK@0.1 of the target bounding box.

Two named variants of the reference code (docs/probes.md):

``probe3d`` (mbanani/probe3d ``evaluate_spair_correspondence.py``, the default): per category and
viewpoint bucket (0, 1, 2, all) up to 200 test pairs (Python ``random.seed(20)`` shuffle of the
pair list, which we sort first); each image padded bottom / right with 255 to a square, resized
to 800 (bicubic, antialiased); last-block patch tokens before the final LayerNorm, L2-normalised;
each source keypoint's feature sampled bilinearly (``align_corners=True``); prediction = the
best-matching target cell's corner ``(col, row) / grid``; error = distance / (longer side of the
target box / longer image side) in those units, correct if ``< 0.1``; recall pooled over a
(category, bucket)'s keypoints, averaged over categories.

``dift`` (Tsingularity/dift ``eval_spair.py``): every test pair; features of the image resized to
``image_size`` squared, upsampled bilinearly to the original image; the source descriptor at the
integer keypoint pixel; prediction = the most similar target pixel; correct if distance /
longer side of the target box ``<= 0.1``; per-image PCK (mean over pairs) and per-point PCK.
"""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.probes import datasets as ds
from benchmarks.probes.metrics import pck_hits


def probe3d_pairs(pairs: list[dict], per_bucket: int = 200) -> dict:
    """``{(category, bucket): [pair, ...]}`` for bucket in 0, 1, 2, "all": the category's pairs of
    that viewpoint variation (any for "all"), shuffled by ``random.seed(20)``, first ``per_bucket``."""
    out = {}
    for cat in sorted({p["category"] for p in pairs}):
        for vp in (0, 1, 2, "all"):
            chosen = [p for p in pairs if p["category"] == cat and (vp == "all" or p["viewpoint_variation"] == vp)]
            if per_bucket:
                random.seed(20)
                random.shuffle(chosen)
                chosen = chosen[:per_bucket]
            out[(cat, vp)] = chosen
    return out


def image_keypoints(root, category: str, image_name: str) -> dict:
    """``{keypoint id: (x, y)}`` of the visible keypoints of an image annotation (integers, as the
    reference casts them)."""
    import json
    path = root / "ImageAnnotation" / category / (image_name.rsplit(".", 1)[0] + ".json")
    try:
        kps = json.loads(path.read_text())["kps"]
    except (OSError, ValueError, KeyError) as err:
        raise ds.ProbeDataError(f"{path}: cannot read keypoints ({err})") from None
    return {int(k): (int(v[0]), int(v[1])) for k, v in kps.items() if v}


def probe3d_errors(src_feat: torch.Tensor, trg_feat: torch.Tensor, src_kp: np.ndarray, trg_kp: np.ndarray,
                   side_src: int, side_trg: int, size: int, scale: float) -> torch.Tensor:
    """Errors of one pair (Probe3D): features ``[C, g, g]`` (L2-normalised here), keypoints
    ``[N, 2]`` integer pixels of the original images, square sides before resizing to ``size``,
    ``scale`` = longer side of the target box / longer target image side."""
    s = F.normalize(src_feat.float(), dim=0)
    t = F.normalize(trg_feat.float(), dim=0)
    src = np.trunc(src_kp * size / side_src) / size             # the reference's int tensors
    trg = np.trunc(trg_kp * size / side_trg) / size
    grid = torch.as_tensor(src * 2 - 1, dtype=torch.float32)[None, None]
    desc = F.grid_sample(s[None], grid, mode="bilinear", align_corners=True)[0, :, 0].T       # [N, C]
    heat = torch.einsum("nc,chw->nhw", desc, t).flatten(1).argmax(1)
    g = t.shape[-1]
    pred = torch.stack([heat % g, heat // g], 1).float() / g
    return (pred - torch.as_tensor(trg, dtype=torch.float32)).norm(dim=1) / scale


def run(cfg, enc, root, cache_root, log=print, save_pred=None) -> dict:
    from benchmarks.probes.cache import data_digest
    from benchmarks.probes.extract import extract, resolve_layers
    c = cfg.corr
    pairs = ds.spair_pairs(root, cfg.dataset.split)
    if c.variant == "probe3d":
        buckets = probe3d_pairs(pairs, c.pairs_per_bucket)
        used = [p for v in buckets.values() for p in v]
    elif c.variant == "dift":
        used = pairs
    else:
        raise ds.ProbeDataError(f"corr.variant={c.variant!r}: expected 'probe3d' or 'dift'")
    images = sorted({str(p[k]) for p in used for k in ("src_path", "trg_path")})
    index = {p: i for i, p in enumerate(images)}
    layers = resolve_layers(cfg.model.layers, enc.depth)
    size = int(c.image_size)

    def render(k):
        img = ds.read_rgb(images[k])
        if c.variant == "probe3d":
            h, w = img.shape[:2]
            side = max(h, w)
            img = np.pad(img, ((0, side - h), (0, side - w), (0, 0)), constant_values=255)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
        mode = "bicubic" if c.variant == "probe3d" else "bilinear"
        x = F.interpolate(x[None], size=(size, size), mode=mode, align_corners=False, antialias=True)[0]
        x = (x - torch.tensor(enc.mean)[:, None, None]) / torch.tensor(enc.std)[:, None, None]
        return x, {}

    key = {"protocol": f"correspondence-{c.variant}", "image_size": size, "images": len(images),
           "data_sha256": data_digest([root / "PairAnnotation" / cfg.dataset.split / f"{p['pair']}.json" for p in used]
                                      + [p for p in images], root)}
    store = extract(enc, cache_root, key, len(images), render, layers, norm=cfg.model.norm,
                    batch=cfg.cache.batch_size, shard_size=cfg.cache.shard_size, desc="features (images)")
    from core import dist
    if dist.rank() != 0:
        return None

    def feat(path):
        return torch.from_numpy(store.take("feat", [index[str(path)]])[0, -1]).float()   # [C, g, g]

    if c.variant == "probe3d":
        per = {}
        for (cat, vp), chosen in buckets.items():
            errs = []
            for p in chosen:
                ks = image_keypoints(root, cat, p["src_imname"])
                kt = image_keypoints(root, cat, p["trg_imname"])
                both = sorted(set(ks) & set(kt))
                if not both:
                    continue
                l, u, r, d = p["trg_bndbox"]
                scale = max(r - l, d - u) / max(p["trg_imsize"][:2])
                errs.append(probe3d_errors(feat(p["src_path"]), feat(p["trg_path"]),
                                           np.array([ks[j] for j in both], np.float64),
                                           np.array([kt[j] for j in both], np.float64),
                                           max(p["src_imsize"][:2]), max(p["trg_imsize"][:2]), size, scale))
            if chosen:
                e = torch.cat(errs) if errs else torch.zeros(0)
                per.setdefault(cat, {})[str(vp)] = float((e < c.alpha).float().mean() * 100) if len(e) else 0.0
        buckets_mean = {b: float(np.mean([v[b] for v in per.values() if b in v]))
                        for b in ("0", "1", "2", "all") if any(b in v for v in per.values())}
        log("correspondence (Probe3D) PCK@0.1: " + "  ".join(f"vp {b} {v:.2f}" for b, v in buckets_mean.items()))
        return {"metrics": {"PCK@0.1": buckets_mean.get("all", float("nan")),
                            **{f"PCK@0.1 vp{b}": v for b, v in buckets_mean.items() if b != "all"}},
                "per_category": per, "pairs": len(used), "images": len(images), "layers": layers,
                "caches": {"images": store.describe()}}

    # DIFT: features upsampled to each original image, descriptors at integer keypoint pixels
    per_image, per_cat, hits_all = [], {}, []
    for p in used:
        sw, sh = p["src_imsize"][:2]
        tw, th = p["trg_imsize"][:2]
        s = F.interpolate(feat(p["src_path"])[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        t = F.interpolate(feat(p["trg_path"])[None], size=(th, tw), mode="bilinear", align_corners=False)[0]
        src = np.asarray(p["src_kps"], np.float64).astype(np.int64)
        src = np.clip(src, 0, [sw - 1, sh - 1])                   # a point on the far border
        desc = F.normalize(s[:, src[:, 1], src[:, 0]].T, dim=1)
        sim = desc @ F.normalize(t.flatten(1), dim=0)
        best = sim.argmax(1).numpy()
        pred = np.stack([best % tw, best // tw], 1)
        l, u, r, d = p["trg_bndbox"]
        hits = pck_hits(pred, np.asarray(p["trg_kps"]), max(r - l, d - u), c.alpha, strict=False)
        per_image.append(float(hits.mean()) if len(hits) else 0.0)
        per_cat.setdefault(p["category"], []).append(per_image[-1])
        hits_all.append(hits)
    point = float(np.concatenate(hits_all).mean() * 100)
    image = float(np.mean(per_image) * 100)
    log(f"correspondence (DIFT) PCK@0.1: per image {image:.2f}  per point {point:.2f}")
    return {"metrics": {"PCK@0.1": image, "PCK@0.1 per point": point},
            "per_category": {k: float(np.mean(v) * 100) for k, v in sorted(per_cat.items())},
            "pairs": len(used), "images": len(images), "layers": layers, "caches": {"images": store.describe()}}


__all__ = ["probe3d_pairs", "image_keypoints", "probe3d_errors", "run"]
