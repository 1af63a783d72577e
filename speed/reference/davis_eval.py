"""The official DAVIS 2017 semi-supervised evaluation (davis2017-evaluation: its
``evaluation_method.py`` run on a results folder), restated plainly as a whole process, for
speed/bench_davis.py and the tests.

    python -m speed.reference.davis_eval --data-root ROOT --results OUT [--split val]

What the official process does, in order, and so what this one does:

* imports numpy, pandas (``evaluation_method.py``), tqdm, SciPy's assignment solver
  (``davis2017/evaluation.py``), Pillow and OpenCV (``davis.py``, ``metrics.py``);
  scikit-image's ``disk`` is imported inside the F measure, so on its first call;
* lists, for every sequence of ``ImageSets/2017/<split>.txt``, the JPEG frames (a sequence
  without any is an error) and the annotations, sorted with ``np.sort``;
* reads all annotations with Pillow into a float64 array (the first one twice: once for the
  shape), sets void 255 to 0, takes the object count from the first annotation's largest id and
  makes one boolean array per object; drops the first and the last frame; reads the
  predictions the same way (first one twice);
* per object: the void mask (``gt == 255`` on the boolean masks, so never set: void pixels
  count as background), J over all frames at once (intersection / union excluding void, 1
  where the union is empty), then F frame by frame: Berkeley boundary maps of the masks with
  void removed, OpenCV dilation with scikit-image's disk of radius ``ceil(0.008 * diagonal)``
  (built twice per frame), precision / recall with the official special cases;
* per object Mean, Recall (> 0.5) and Decay (bins from ``linspace`` stored as uint8); global
  numbers are means over objects;
* builds pandas tables, writes ``global_results-<split>.csv`` and
  ``per-sequence_results-<split>.csv`` with ``to_csv(index=False, float_format="%.3f")`` and
  prints both tables.

Where the official code no longer runs on today's numpy (``np.bool``) the builtin ``bool`` is
used. The reference keeps one behaviour of ours for predictions with fewer ids than the
sequence has objects: the missing objects score empty masks (newer official versions pad with
empty masks the same way; older ones stop).

Nothing here imports torch; the project's fast path never imports this module.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from glob import glob

import cv2
import numpy as np
import pandas as pd
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


def _f_measure(fg: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None,
               bound_th: float = 0.008) -> float:
    """Boundary F of one frame's masks, step by step as the official ``f_measure``."""
    void = np.zeros_like(fg).astype(bool) if void is None else void.astype(bool)
    bound_pix = np.ceil(bound_th * np.linalg.norm(fg.shape))
    fg_b = _seg2bmap(fg * np.logical_not(void))
    gt_b = _seg2bmap(gt * np.logical_not(void))
    from skimage.morphology import disk  # where the official tool imports it
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), disk(bound_pix).astype(np.uint8))
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


def _iou(annotation: np.ndarray, segmentation: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """J of one object over frames: boolean ``[T, H, W]`` each -> ``[T]`` (void excluded)."""
    annotation, segmentation = annotation.astype(bool), segmentation.astype(bool)
    void = np.zeros_like(segmentation) if void is None else void.astype(bool)
    inters = np.sum((segmentation & annotation) & np.logical_not(void), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void), axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inters / union
    j[np.isclose(union, 0)] = 1
    return j


def _object_scores(gt_masks: np.ndarray, res_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object boolean masks ``[K, T, H, W]`` -> J and F ``[K, T]``."""
    J = np.zeros(gt_masks.shape[:2])
    F_ = np.zeros(gt_masks.shape[:2])
    for k in range(gt_masks.shape[0]):
        void = gt_masks[k] == VOID           # boolean masks: never true (as in the official tool)
        J[k] = _iou(gt_masks[k], res_masks[k], void)
        for t in range(gt_masks.shape[1]):
            F_[k, t] = _f_measure(res_masks[k, t], gt_masks[k, t], void[t])
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
def _read_all(paths: list[str], void_to_background: bool) -> np.ndarray:
    """``[T, H, W]`` float64 of the PNGs, as the official readers build it (the first file read
    once more for the shape)."""
    first = np.array(Image.open(paths[0]))
    out = np.zeros((len(paths), *first.shape))
    for i, p in enumerate(paths):
        out[i, ...] = np.array(Image.open(p))
        if void_to_background:
            out[i, out[i, ...] == VOID] = 0
    return out


def _list_sequences(davis_root: str, split: str) -> dict[str, tuple[list[str], list[str]]]:
    """``{seq: (frames, annotations)}``: the official dataset class's listing."""
    with open(os.path.join(davis_root, "ImageSets", "2017", f"{split}.txt")) as f:
        names = [line.strip() for line in f.readlines()]
    listing = {}
    for seq in names:
        if not seq:
            continue
        frames = np.sort(glob(os.path.join(davis_root, "JPEGImages", "480p", seq, "*.jpg"))).tolist()
        if not frames:
            raise FileNotFoundError(f"Images for sequence {seq} not found.")
        masks = np.sort(glob(os.path.join(davis_root, "Annotations", "480p", seq, "*.png"))).tolist()
        listing[seq] = (frames, masks)
    return listing


def reference_evaluate(davis_root: str, results: str, split: str = "val") -> tuple[dict, dict]:
    """Every sequence of ``split`` from the PNGs under ``results``: ``(global, per_object)``."""
    per_sequence = []
    for seq, (_, masks) in tqdm(list(_list_sequences(davis_root, split).items())):
        gt = _read_all(masks, void_to_background=True)
        mask_ids = ["".join(os.path.basename(m).split(".")[:-1]) for m in masks]
        n_objects = int(np.max(gt[0, ...]))
        gt_masks = _one_hot(gt, n_objects) > 0
        gt_masks, mask_ids = gt_masks[:, 1:-1], mask_ids[1:-1]
        res = _read_all([os.path.join(results, seq, f"{i}.png") for i in mask_ids], void_to_background=False)
        if res.max() > n_objects:
            sys.exit(f"{seq}: a prediction holds an id higher than the number of objects")
        J, F_ = _object_scores(gt_masks, _one_hot(res, n_objects) > 0)
        per_sequence.append((seq, J, F_))
    return reference_global(per_sequence)


GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def main(argv=None) -> int:
    t0 = time.time()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--split", default="val")
    args = p.parse_args(argv)
    print("Evaluating sequences for the semi-supervised task...")
    g, per_object = reference_evaluate(args.data_root, args.results, args.split)
    table_g = pd.DataFrame(data=np.reshape([g[c] for c in GLOBAL_COLUMNS], (1, -1)), columns=list(GLOBAL_COLUMNS))
    path_g = os.path.join(args.results, f"global_results-{args.split}.csv")
    with open(path_g, "w") as f:
        table_g.to_csv(f, index=False, float_format="%.3f")
    print(f"Global results saved in {path_g}")
    table_seq = pd.DataFrame(data=[(name, jm, fm) for name, (jm, fm) in per_object.items()],
                             columns=["Sequence", "J-Mean", "F-Mean"])
    path_seq = os.path.join(args.results, f"per-sequence_results-{args.split}.csv")
    with open(path_seq, "w") as f:
        table_seq.to_csv(f, index=False, float_format="%.3f")
    print(f"Per-sequence results saved in {path_seq}")
    print(f"--------------------------- Global results for {args.split} ---------------------------")
    print(table_g.to_string(index=False))
    print(f"\n---------- Per sequence results for {args.split} ----------")
    print(table_seq.to_string(index=False))
    print(f"\nTotal time: {time.time() - t0}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
