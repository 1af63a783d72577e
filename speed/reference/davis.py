"""Plain, literal versions of the DAVIS procedures, for speed/bench_davis.py only.

* :func:`reference_propagate` follows DINO's published evaluation script step by step: one
  encoder forward per frame, a dense ``N x N`` affinity per context frame, a neighbourhood mask
  built by four nested Python loops (once per sequence), top-k over the stacked dense matrix,
  a dense matrix product for the labels, a Python loop over channels for the normalisation.
* :func:`reference_scores` / :func:`reference_statistics` / :func:`reference_global` (defined
  in :mod:`speed.reference.davis_eval`, the official evaluator restated as a whole process)
  follow the official davis2017-evaluation procedure: per object, per frame, boundary maps by
  array shifts, OpenCV dilation with a disk, edges of the Decay bins from ``linspace`` stored as
  uint8.

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
from speed.reference.davis_eval import reference_global, reference_scores, reference_statistics


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


__all__ = ["reference_propagate", "reference_scores", "reference_statistics", "reference_global"]
