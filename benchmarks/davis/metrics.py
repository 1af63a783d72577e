"""DAVIS 2017 semi-supervised metrics: J (region IoU), F (boundary F measure), their
Mean / Recall / Decay per object, object averaging, and the official CSV files.

The numbers are those of the official ``davis2017-evaluation`` package (see docs/davis.md for
the one deliberate difference: Decay bin edges for sequences of more than 256 scored frames).
The computation is vectorised: all objects of all frames of a sequence are cropped to the rows
they occupy, packed 64 pixels to a word (:mod:`benchmarks.davis.bitmaps`) and processed
together.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from core.files import atomic_path, write_text_atomic

from . import bitmaps

BOUND_TH = 0.008
GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


def boundary_radius(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``ceil(bound_th * image diagonal)`` (8 for 854x480)."""
    return int(math.ceil(bound_th * math.sqrt(height * height + width * width)))


# ------------------------------------------------------------------------------------ J and F
def sequence_scores(gt: np.ndarray, pred: np.ndarray, n_objects: int,
                    bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every object in every frame.

    ``gt``, ``pred``: ``[T, H, W]`` uint8 label maps of the scored frames (object ``k`` is the
    pixels equal to ``k``; any other value, void 255 included, is background).
    Returns ``(J, F)``, each ``[n_objects, T]`` float64.

    J is the IoU (1 when both masks are empty). F is ``2PR / (P + R)`` of the boundary
    precision P and recall R within a disk of :func:`boundary_radius`; P = 1, R = 0 without a
    predicted boundary, P = 0, R = 1 without a true one, P = R = 1 without either, F = 0 when
    P + R = 0.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 3:
        raise ValueError(f"gt {gt.shape} and prediction {pred.shape} must both be [T, H, W]")
    n_frames, height, width = gt.shape
    J = np.ones((n_objects, n_frames))
    F = np.ones((n_objects, n_frames))
    if n_objects == 0 or n_frames == 0:
        return J, F
    radius = boundary_radius(height, width, bound_th)
    ids = np.arange(1, n_objects + 1, dtype=np.uint8)[:, None, None]
    last_byte, last_bit = divmod(width - 1, 8)
    g_blocks, p_blocks, bottom, last_col, where = [], [], [], [], []
    for t in range(n_frames):  # frame by frame: the K masks of a frame stay in cache
        # every object at once, 8 pixels to a byte: [K, H, ceil(W / 8)]
        gp = np.packbits(gt[t] == ids, axis=-1, bitorder="little")
        pp = np.packbits(pred[t] == ids, axis=-1, bitorder="little")
        both = gp | pp
        rows_any, cols_any = both.any(axis=2), both.any(axis=1)
        for k in np.flatnonzero(rows_any.any(axis=1)):                # objects present
            rows, cols = np.flatnonzero(rows_any[k]), np.flatnonzero(cols_any[k])
            # a boundary pixel sits on the mask or just above / left of it
            y0, y1 = max(int(rows[0]) - 1, 0), int(rows[-1]) + 1
            c0, c1 = max(int(cols[0]) - 1, 0), int(cols[-1]) + 1
            g_blocks.append(gp[k, y0:y1, c0:c1])
            p_blocks.append(pp[k, y0:y1, c0:c1])
            bottom.append(y1 == height)
            last_col.append(8 * (last_byte - c0) + last_bit if c1 > last_byte else -1)
            where.append((k, t))
    if not where:  # every object absent from both masks in every frame
        return J, F
    ks, ts = np.array(where).T
    gs = bitmaps.pack_bytes(g_blocks, bottom, last_col, radius)
    ps = bitmaps.pack_bytes(p_blocks, bottom, last_col, radius)

    inter = bitmaps.block_counts(gs.words & ps.words, gs)
    union = bitmaps.block_counts(gs.words | ps.words, gs)
    J[ks, ts] = inter / union

    gb, pb = bitmaps.boundaries(gs), bitmaps.boundaries(ps)
    dil = bitmaps.dilate_disk(gs.like(np.concatenate([gb, pb])), radius)  # both in one pass
    g_dil, p_dil = dil[:gb.size], dil[gb.size:]
    n_gt = bitmaps.block_counts(gb, gs)
    n_fg = bitmaps.block_counts(pb, gs)
    fg_match = bitmaps.block_counts(pb & g_dil, gs)
    gt_match = bitmaps.block_counts(gb & p_dil, gs)
    F[ks, ts] = f_from_counts(n_fg, n_gt, fg_match, gt_match)
    return J, F


def f_from_counts(n_fg, n_gt, fg_match, gt_match) -> np.ndarray:
    """F measure from boundary pixel counts, with the official special cases."""
    n_fg, n_gt = np.asarray(n_fg), np.asarray(n_gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_fg > 0, np.asarray(fg_match) / n_fg.astype(np.float64), 1.0)
        recall = np.where(n_gt > 0, np.asarray(gt_match) / n_gt.astype(np.float64), 1.0)
    precision = np.where((n_fg > 0) & (n_gt == 0), 0.0, precision)
    recall = np.where((n_fg == 0) & (n_gt > 0), 0.0, recall)
    denom = precision + recall
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 2 * precision * recall / denom
    return np.where(denom == 0, 0.0, f)


# ------------------------------------------------------------------------------------ statistics
def decay_edges(n: int) -> np.ndarray:
    """0-based edges of the 4 Decay bins over ``n`` frames: ``floor(k (n-1) / 4 + 1/2)``.

    n = 14 -> 0, 3, 7, 10, 13; n = 2 -> 0, 0, 1, 1, 1; n = 1 -> all 0. Exact integers for any
    ``n`` (the official tool stores them as uint8, which wraps past 256 frames).
    """
    if n < 1:
        raise ValueError("Decay needs at least one frame")
    return np.array([(k * (n - 1) + 2) // 4 for k in range(5)], dtype=np.int64)


def statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, Recall and Decay of each row of ``values`` ``[K, n]`` (one row per object).

    Recall: fraction of frames with a value strictly above 0.5. Decay: mean of bin 0 minus
    mean of bin 3, bins ``v[e_k .. e_{k+1}]`` with both edges included (:func:`decay_edges`).
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"statistics need [objects, frames>=1] values, got {values.shape}")
    e = decay_edges(values.shape[1])
    mean = values.mean(axis=1)
    recall = (values > 0.5).mean(axis=1)
    decay = values[:, e[0]:e[1] + 1].mean(axis=1) - values[:, e[3]:e[4] + 1].mean(axis=1)
    return mean, recall, decay


# ------------------------------------------------------------------------------------ results
@dataclasses.dataclass
class SequenceResult:
    name: str
    J: np.ndarray  # [K, n] per object, per scored frame
    F: np.ndarray


class DavisResults:
    """Per-frame scores of the evaluated sequences and everything derived from them."""

    def __init__(self, split_sequences: list[str] | None = None):
        self.sequences: list[SequenceResult] = []
        #: every sequence of the split, when known: results of fewer are written under other names
        self.split_sequences = split_sequences

    @property
    def subset(self) -> bool:
        """Whether fewer sequences than the split's were scored (``--sequences``)."""
        done = {s.name for s in self.sequences}
        return self.split_sequences is not None and not set(self.split_sequences) <= done

    def add(self, name: str, J: np.ndarray, F: np.ndarray) -> None:
        self.sequences.append(SequenceResult(name, np.asarray(J, np.float64), np.asarray(F, np.float64)))

    def per_object(self) -> dict[str, dict[str, float]]:
        """``{"<seq>_<id>": {"J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"}}``."""
        out = {}
        for s in self.sequences:
            if s.J.shape[0] == 0:
                continue
            jm, jr, jd = statistics(s.J)
            fm, fr, fd = statistics(s.F)
            for k in range(s.J.shape[0]):
                out[f"{s.name}_{k + 1}"] = {"J-Mean": jm[k], "J-Recall": jr[k], "J-Decay": jd[k],
                                            "F-Mean": fm[k], "F-Recall": fr[k], "F-Decay": fd[k]}
        return out

    def global_scores(self) -> dict[str, float]:
        """The 7 global numbers: means over all objects of all sequences."""
        objs = list(self.per_object().values())
        if not objs:
            raise ValueError("no object to average (no sequence evaluated)")
        col = {c: np.array([o[c] for o in objs]) for c in objs[0]}
        res = {"J-Mean": float(np.mean(col["J-Mean"])), "J-Recall": float(np.mean(col["J-Recall"])),
               "J-Decay": float(np.mean(col["J-Decay"])), "F-Mean": float(np.mean(col["F-Mean"])),
               "F-Recall": float(np.mean(col["F-Recall"])), "F-Decay": float(np.mean(col["F-Decay"]))}
        return {"J&F-Mean": (res["J-Mean"] + res["F-Mean"]) / 2.0, **res}

    # -------------------------------------------------------------------------------- writers
    def write(self, out_dir: str | Path, split: str = "val") -> list[Path]:
        """Write ``global_results-<split>.csv``, ``per-sequence_results-<split>.csv`` (official
        columns, ``%.3f``) and ``davis_results.json`` (full precision), atomically. Results of a
        :attr:`subset` of the split go to ``*-subset`` files, so they never replace a whole
        split's (the official names stand for the whole split). Returns the paths."""
        out_dir = Path(out_dir)
        g = self.global_scores()
        per = self.per_object()
        tag = "-subset" if self.subset else ""
        paths = [out_dir / f"global_results-{split}{tag}.csv", out_dir / f"per-sequence_results-{split}{tag}.csv",
                 out_dir / f"davis_results{tag}.json"]
        _write_csv(paths[0], GLOBAL_COLUMNS, [[g[c] for c in GLOBAL_COLUMNS]])
        _write_csv(paths[1], SEQUENCE_COLUMNS,
                   [[name, o["J-Mean"], o["F-Mean"]] for name, o in per.items()])
        doc = {"global": {c: g[c] for c in GLOBAL_COLUMNS},
               "per_object": {name: {"J-Mean": float(o["J-Mean"]), "F-Mean": float(o["F-Mean"])}
                              for name, o in per.items()}}
        if self.subset:
            doc["sequences"] = [s.name for s in self.sequences]
        write_text_atomic(json.dumps(doc, indent=1) + "\n", paths[2])
        return paths

    def table(self, split: str = "val") -> str:
        """The global table as printed by the tools (aligned, 3 decimals)."""
        g = self.global_scores()
        cells = [f"{g[c]:.3f}" for c in GLOBAL_COLUMNS]
        widths = [max(len(c), len(v)) for c, v in zip(GLOBAL_COLUMNS, cells)]
        head = " ".join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths))
        row = " ".join(v.rjust(w) for v, w in zip(cells, widths))
        title = f" Global results for {split} "
        return f"{title:-^{len(head)}}\n{head}\n{row}"


def _fmt(v) -> str:
    return v if isinstance(v, str) else f"{float(v):.3f}"


def _write_csv(path: Path, columns, rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_fmt(v) for v in r])


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a results CSV as dicts of strings (for tests and scripts)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


__all__ = ["BOUND_TH", "GLOBAL_COLUMNS", "SEQUENCE_COLUMNS", "boundary_radius", "sequence_scores",
           "f_from_counts", "decay_edges", "statistics", "DavisResults", "SequenceResult", "read_csv"]
