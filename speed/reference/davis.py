"""Plain, literal versions of the DAVIS procedures, for speed/bench_davis.py only.

* :func:`reference_propagate` follows DINO's published evaluation script step by step: one
  encoder forward per frame, a dense ``N x N`` affinity per context frame, a neighbourhood mask
  built by four nested Python loops (once per sequence), top-k over the stacked dense matrix,
  a dense matrix product for the labels, a Python loop over channels for the normalisation.
* :func:`reference_scores` / :func:`reference_statistics` follow the official
  davis2017-evaluation procedure: per object, per frame, boundary maps by array shifts, OpenCV
  dilation with a disk, edges of the Decay bins from ``linspace`` stored as uint8.

Nothing in the fast path imports this module.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.davis.features import read_frame
from benchmarks.davis.io import VOID, Sequence, read_index_png
from benchmarks.davis.propagation import PropagationParams


# ------------------------------------------------------------------------------------ propagation
def _neighbourhood_mask(h: int, w: int, radius: int) -> torch.Tensor:
    mask = torch.zeros(h, w, h, w)
    for i in range(h):
        for j in range(w):
            for p in range(2 * radius + 1):
                for q in range(2 * radius + 1):
                    y, x = i - radius + p, j - radius + q
                    if y < 0 or y >= h or x < 0 or x >= w:
                        continue
                    mask[i, j, y, x] = 1
    return mask.reshape(h * w, h * w)


def _propagate_one(params: PropagationParams, feat_tar, h, w, feats, segs, mask, stats=None):
    m_ctx = len(feats)
    sources = F.normalize(torch.stack(feats), dim=1, p=2)           # [M, C, N]
    target = F.normalize(feat_tar, dim=1, p=2).unsqueeze(0).repeat(m_ctx, 1, 1)  # [M, N, C]
    aff = torch.exp(torch.bmm(target, sources) / params.temperature)  # [M, N(query), N(key)]
    if params.neighborhood > 0:
        if mask is None:
            t0 = time.perf_counter()
            mask = _neighbourhood_mask(h, w, params.neighborhood).unsqueeze(0).repeat(m_ctx, 1, 1)
            if stats is not None:
                stats["mask_seconds"] = stats.get("mask_seconds", 0.0) + time.perf_counter() - t0
        aff *= mask
    aff = aff.transpose(2, 1).reshape(-1, h * w)                      # [M*N(key), N(query)]
    top, _ = torch.topk(aff, dim=0, k=params.topk)
    top_min, _ = torch.min(top, dim=0)
    aff[aff < top_min] = 0
    aff = aff / torch.sum(aff, keepdim=True, axis=0)
    seg = torch.cat(segs)
    n_ctx, n_lab = seg.shape[:2]
    seg = seg.reshape(n_ctx, n_lab, -1).transpose(2, 1).reshape(-1, n_lab).T  # [L, M*N]
    return torch.mm(seg, aff).reshape(1, n_lab, h, w), mask


def _norm_mask(mask: torch.Tensor) -> torch.Tensor:
    for c in range(mask.shape[0]):
        ch = mask[c]
        if ch.max() > 0:
            ch = ch - ch.min()
            ch = ch / ch.max()
            mask[c] = ch
    return mask


def reference_propagate(extractor, files: Sequence, params: PropagationParams,
                        short_side: int = 480, multiple: int = 64, stats: dict | None = None):
    """Label maps ``[H0, W0]`` uint8 of every frame of ``files`` (frame 0 = the annotation).

    With a ``stats`` dict, adds ``"mask_seconds"`` (time spent building the neighbourhood mask)
    and ``"margins"``: per propagated frame, ``[H0, W0]`` float32 gap between the best and the
    second best normalised label score (how close each pixel is to a tie).
    """
    p = extractor.patch_size

    def extract(frame):
        with torch.no_grad():
            return extractor(frame.unsqueeze(0))[0]                  # [N, C]

    frame, (h0, w0) = read_frame(files.frames[0], short_side, multiple)
    h, w = frame.shape[1] // p, frame.shape[2] // p
    first_feat = extract(frame).T                                    # [C, N]
    ann = read_index_png(files.annotations[0])
    lab = np.where(ann == VOID, 0, ann).astype(np.uint8)
    small = torch.from_numpy(np.array(Image.fromarray(lab).resize((w, h), Image.NEAREST))).long()
    n_lab = int(small.max()) + 1
    first_seg = torch.zeros(h * w, n_lab).scatter_(1, small.view(-1, 1), 1)
    first_seg = first_seg.view(h, w, n_lab).permute(2, 0, 1).unsqueeze(0)
    out, queue, mask = [ann], [], None
    for path in files.frames[1:]:
        frame, _ = read_frame(path, short_side, multiple)
        feat = extract(frame)
        feats = [first_feat] + [q[0] for q in queue]
        segs = [first_seg] + [q[1] for q in queue]
        seg, mask = _propagate_one(params, feat, h, w, feats, segs, mask, stats)
        if params.n_last_frames:
            if len(queue) == params.n_last_frames:
                queue.pop(0)
            queue.append([feat.T, seg.clone()])
        up = F.interpolate(seg, scale_factor=p, mode="bilinear", align_corners=False,
                           recompute_scale_factor=False)[0]
        up = _norm_mask(up)
        _, lab = torch.max(up, dim=0)
        lab = np.array(lab.cpu(), dtype=np.uint8)
        out.append(np.array(Image.fromarray(lab).resize((w0, h0), 0)))
        if stats is not None:
            if up.shape[0] > 1:
                top2 = torch.topk(up, 2, dim=0).values
                gap = (top2[0] - top2[1]).numpy().astype(np.float32)
            else:
                gap = np.full(up.shape[1:], np.inf, dtype=np.float32)
            stats.setdefault("margins", []).append(
                np.array(Image.fromarray(gap, mode="F").resize((w0, h0), 0)))
    return out


# ------------------------------------------------------------------------------------ metrics
def _seg2bmap(seg: np.ndarray) -> np.ndarray:
    seg = seg.astype(bool)
    right, down, diag = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ down[:, -1]
    b[-1, -1] = 0
    return b


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(r, r)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def _f_measure(fg: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    import cv2
    radius = int(np.ceil(bound_th * np.linalg.norm(fg.shape)))
    fg_b, gt_b = _seg2bmap(fg), _seg2bmap(gt)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), _disk(radius))
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), _disk(radius))
    gt_match, fg_match = gt_b * fg_dil, fg_b * gt_dil
    n_fg, n_gt = np.sum(fg_b), np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_scores(gt: np.ndarray, pred: np.ndarray, n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """J and F ``[n_objects, T]`` with one loop iteration per object and frame."""
    J = np.zeros((n_objects, gt.shape[0]))
    F_ = np.zeros((n_objects, gt.shape[0]))
    for k in range(n_objects):
        for t in range(gt.shape[0]):
            g, p = gt[t] == k + 1, pred[t] == k + 1
            inter, union = np.sum(g & p), np.sum(g | p)
            J[k, t] = 1.0 if np.isclose(union, 0) else inter / union
            F_[k, t] = _f_measure(p, g)
    return J, F_


def reference_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, Recall, Decay of one object's per-frame values (official edges: uint8)."""
    mean = np.nanmean(values)
    recall = np.nanmean(values > 0.5)
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return mean, recall, np.nanmean(bins[0]) - np.nanmean(bins[3])


def reference_global(per_sequence: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[dict, dict]:
    """Global numbers and per-object (J-Mean, F-Mean) from ``[(seq, J, F), ...]``."""
    cols = {c: [] for c in ("JM", "JR", "JD", "FM", "FR", "FD")}
    per_object = {}
    for name, J, F_ in per_sequence:
        for k in range(J.shape[0]):
            jm, jr, jd = reference_statistics(J[k])
            fm, fr, fd = reference_statistics(F_[k])
            for c, v in zip(cols, (jm, jr, jd, fm, fr, fd)):
                cols[c].append(v)
            per_object[f"{name}_{k + 1}"] = (jm, fm)
    g = {"J-Mean": np.mean(cols["JM"]), "J-Recall": np.mean(cols["JR"]), "J-Decay": np.mean(cols["JD"]),
         "F-Mean": np.mean(cols["FM"]), "F-Recall": np.mean(cols["FR"]), "F-Decay": np.mean(cols["FD"])}
    g["J&F-Mean"] = (g["J-Mean"] + g["F-Mean"]) / 2.0
    return g, per_object


__all__ = ["reference_propagate", "reference_scores", "reference_statistics", "reference_global"]
