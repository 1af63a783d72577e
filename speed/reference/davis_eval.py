"""The official DAVIS 2017 semi-supervised evaluation (davis2017-evaluation: its
``evaluation_method.py`` run on a results folder), restated plainly as a whole process, for
speed/bench_davis.py and the tests.

    python -m speed.reference.davis_eval --data-root ROOT --results OUT [--split val]

What the official process does, in order: it imports numpy, Pillow, OpenCV, SciPy's assignment
solver and tqdm (and pandas, absent here: the CSV files are written with the ``csv`` module);
for every sequence of ``ImageSets/2017/<split>.txt`` it reads all annotations with Pillow into a
float64 array (void 255 set to 0), and one array per object of their equality with the object's
id (ids 1..the first annotation's largest); it drops the first and the last frame, reads the
predictions the same way, then per object computes J over all frames at once (intersection /
union, 1 where the union is empty) and F frame by frame (Berkeley boundary maps, OpenCV
dilation with a disk of radius ``ceil(0.008 * diagonal)``, precision / recall with the official
special cases); per object Mean, Recall (> 0.5) and Decay (bins from ``linspace`` stored as
uint8); global numbers are means over objects. It writes ``global_results-<split>.csv`` and
``per-sequence_results-<split>.csv`` (``%.3f``) and prints the global table.

Nothing here imports torch; the project's fast path never imports this module.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import cv2
import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment  # noqa: F401  (imported by the official tool)
from tqdm import tqdm

VOID = 255


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


def _iou(annotation: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """J of one object over frames: boolean ``[T, H, W]`` each -> ``[T]``."""
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inters / union
    j[np.isclose(union, 0)] = 1
    return j


def _object_scores(gt_masks: np.ndarray, res_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object boolean masks ``[K, T, H, W]`` -> J and F ``[K, T]``."""
    J = np.zeros(gt_masks.shape[:2])
    F_ = np.zeros(gt_masks.shape[:2])
    for k in range(gt_masks.shape[0]):
        J[k] = _iou(gt_masks[k], res_masks[k])
        for t in range(gt_masks.shape[1]):
            F_[k, t] = _f_measure(res_masks[k, t], gt_masks[k, t])
    return J, F_


def _one_hot(labels: np.ndarray, n_objects: int) -> np.ndarray:
    """``[T, H, W]`` ids (float64, as the official arrays) -> ``[K, T, H, W]`` bool."""
    ids = np.ones((n_objects, *labels.shape)) * np.arange(1, n_objects + 1)[:, None, None, None]
    return ids == labels[None]


def reference_scores(gt: np.ndarray, pred: np.ndarray, n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """J and F ``[n_objects, T]`` of label maps ``[T, H, W]`` (void counts as background)."""
    gt = np.where(gt == VOID, 0, gt).astype(np.float64)
    return _object_scores(_one_hot(gt, n_objects), _one_hot(pred.astype(np.float64), n_objects))


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


# ------------------------------------------------------------------------------------ the process
def _read_all(paths) -> np.ndarray:
    first = np.array(Image.open(paths[0]))
    out = np.zeros((len(paths), *first.shape))
    for i, p in enumerate(paths):
        out[i] = np.array(Image.open(p))
    return out


def reference_evaluate(davis_root: str, results: str, split: str = "val") -> tuple[dict, dict]:
    """Every sequence of ``split`` from the PNGs under ``results``: ``(global, per_object)``."""
    with open(os.path.join(davis_root, "ImageSets", "2017", f"{split}.txt")) as f:
        sequences = [line.strip() for line in f if line.strip()]
    per_sequence = []
    for seq in tqdm(sequences):
        folder = os.path.join(davis_root, "Annotations", "480p", seq)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
        gt = _read_all([os.path.join(folder, n) for n in names])
        gt[gt == VOID] = 0
        n_objects = int(np.max(gt[0]))
        gt_masks = _one_hot(gt, n_objects)[:, 1:-1]
        res = _read_all([os.path.join(results, seq, n) for n in names[1:-1]])
        if res.max() > n_objects:
            sys.exit(f"{seq}: a prediction holds an id higher than the number of objects")
        J, F_ = _object_scores(gt_masks, _one_hot(res, n_objects))
        per_sequence.append((seq, J, F_))
    return reference_global(per_sequence)


GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--split", default="val")
    args = p.parse_args(argv)
    t0 = time.time()
    g, per_object = reference_evaluate(args.data_root, args.results, args.split)
    with open(os.path.join(args.results, f"global_results-{args.split}.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(GLOBAL_COLUMNS)
        w.writerow([f"{g[c]:.3f}" for c in GLOBAL_COLUMNS])
    with open(os.path.join(args.results, f"per-sequence_results-{args.split}.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("Sequence", "J-Mean", "F-Mean"))
        for name, (jm, fm) in per_object.items():
            w.writerow([name, f"{jm:.3f}", f"{fm:.3f}"])
    print(f"--------------------------- Global results for {args.split} ---------------------------")
    print(" ".join(GLOBAL_COLUMNS))
    print(" ".join(f"{g[c]:.3f}" for c in GLOBAL_COLUMNS))
    print(f"Total time: {time.time() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
