"""Scores of the frozen-feature probes: segmentation IoU (two definitions), depth errors, PCK.

Every function is a pure tensor / array function; the definitions follow the reference code of
each protocol (docs/probes.md says which).
"""
from __future__ import annotations

import numpy as np
import torch


# ----------------------------------------------------------------------------- segmentation
def confusion(truth: torch.Tensor, pred: torch.Tensor, n_classes: int, ignore: int = 255) -> torch.Tensor:
    """``[K, K]`` int64 pixel counts (rows truth, columns prediction) of label maps of any equal
    shape; pixels whose truth is ``ignore`` (or outside ``0..K-1``) are left out."""
    truth = truth.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (truth != ignore) & (truth >= 0) & (truth < n_classes)
    idx = truth[keep] * n_classes + pred[keep].clamp(0, n_classes - 1)
    return torch.bincount(idx, minlength=n_classes * n_classes).view(n_classes, n_classes)


def iou_mmseg(conf: torch.Tensor) -> dict:
    """MMSegmentation's ``IoUMetric`` on a confusion matrix accumulated over the whole split:
    per class ``intersection / union`` (NaN when the class is in neither truth nor prediction),
    mIoU = NaN-mean over classes, aAcc = correct / labelled pixels, all in percent."""
    conf = conf.double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    iou = inter / union                                   # 0/0 -> NaN, as mmseg
    acc = inter / conf.sum(1)
    return {"mIoU": float(np.nanmean(iou.numpy()) * 100), "aAcc": float(inter.sum() / conf.sum() * 100),
            "mAcc": float(np.nanmean(acc.numpy()) * 100),
            "IoU": [None if np.isnan(v) else float(v * 100) for v in iou.tolist()]}


def iou_hungarian(conf: torch.Tensor) -> dict:
    """open-hummingbird-eval's ``PredsmIoU``: predictions matched to truth classes by a Hungarian
    assignment maximising IoU (unmatched predicted classes count as class 0), then per class
    ``TP / (TP + FP + FN)`` of the remapped predictions and their mean over **all** rows
    (a class with no pixels at all scores 0), in percent; ``mapping`` = predicted -> truth class. ``conf`` ``[K, K]`` (rows truth)."""
    from scipy.optimize import linear_sum_assignment
    c = conf.double()
    score = c / (c.sum(1, keepdim=True) + c.sum(0, keepdim=True) - c).clamp_min(1e-8)
    rows, cols = linear_sum_assignment(1.0 - score.numpy())          # the reference's cost, same ties
    mapping = torch.zeros(c.shape[1], dtype=torch.long)               # predicted -> truth class
    mapping[torch.as_tensor(cols)] = torch.as_tensor(rows)
    remapped = torch.zeros_like(c)
    remapped.index_add_(1, mapping, c)                                # columns merged by mapping
    tp = remapped.diag()
    fp = remapped.sum(0) - tp
    fn = remapped.sum(1) - tp
    iou = tp / (tp + fp + fn).clamp_min(1e-8)
    return {"mIoU": float(iou.mean() * 100), "IoU": [float(v * 100) for v in iou.tolist()],
            "mapping": mapping.tolist()}


# ----------------------------------------------------------------------------- depth
#: the Eigen crop of NYU Depth v2 (rows, cols) the depth toolbox evaluates in
EIGEN_CROP = (slice(45, 471), slice(41, 601))


def depth_errors(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = 10.0,
                 eigen_crop: bool = True) -> dict:
    """Errors of one depth map (metres, ``[H, W]``) on the valid pixels
    ``min_depth < gt < max_depth`` (inside the Eigen crop when asked): delta1..3, abs_rel, sq_rel,
    rmse, rmse_log, log10, silog, as the depth toolbox computes them per image."""
    valid = (gt > min_depth) & (gt < max_depth)
    if eigen_crop:
        crop = np.zeros_like(valid)
        crop[EIGEN_CROP] = True
        valid &= crop
    g = gt[valid].astype(np.float64)
    p = pred[valid].astype(np.float64)
    if g.size == 0:
        return {k: float("nan") for k in ("a1", "a2", "a3", "abs_rel", "sq_rel", "rmse", "rmse_log",
                                          "log_10", "silog")}
    thresh = np.maximum(g / p, p / g)
    err = np.log(p) - np.log(g)
    return {"a1": float((thresh < 1.25).mean()), "a2": float((thresh < 1.25 ** 2).mean()),
            "a3": float((thresh < 1.25 ** 3).mean()),
            "abs_rel": float(np.mean(np.abs(g - p) / g)), "sq_rel": float(np.mean((g - p) ** 2 / g)),
            "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
            "rmse_log": float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
            "log_10": float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
            "silog": float(np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2) * 100)}


def mean_depth_errors(per_image: list[dict]) -> dict:
    """Data-set score: the NaN-mean of each per-image value (RMSE is a mean of per-image RMSEs)."""
    keys = per_image[0].keys() if per_image else ()
    return {k: float(np.nanmean([d[k] for d in per_image])) for k in keys}


# ----------------------------------------------------------------------------- correspondence
def pck_hits(pred_xy: np.ndarray, true_xy: np.ndarray, bbox_size: float, alpha: float = 0.1,
             strict: bool = True) -> np.ndarray:
    """Whether each predicted point ``[N, 2]`` lies within ``alpha * bbox_size`` of the true one
    (``< `` with ``strict`` as Probe3D, ``<=`` otherwise as DIFT)."""
    dist = np.linalg.norm(np.asarray(pred_xy, np.float64) - np.asarray(true_xy, np.float64), axis=1)
    err = dist / float(bbox_size)
    return err < alpha if strict else err <= alpha


__all__ = ["confusion", "iou_mmseg", "iou_hungarian", "EIGEN_CROP", "depth_errors", "mean_depth_errors",
           "pck_hits"]
