"""Score predictions of a DAVIS split: from PNG folders (``OUT/<seq>/<frame>.png``) or from
label maps held in memory, sequence by sequence.

Semi-supervised protocol: the first and the last frame of each sequence are not scored;
objects are ids 1..K with K the largest id of the first annotation (void excluded); void pixels
of the ground truth count as background; a prediction without some id scores an empty mask
for it; a prediction holding an id above K is an error.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .io import (DavisError, Sequence, check_first_annotation, read_annotations, read_index_png, read_split,
                 sequence_files)
from .metrics import DavisResults, sequence_scores


class Scorer:
    """Scores sequences of one DAVIS split into a :class:`DavisResults`."""

    def __init__(self, davis_root: str | Path, split: str = "val"):
        self.root = Path(davis_root)
        self.split = split
        self.sequences = read_split(self.root, split)
        self.results = DavisResults()

    def files(self, seq: str) -> Sequence:
        if seq not in self.sequences:
            raise DavisError(f"{seq!r} is not listed in the {self.split} split")
        return sequence_files(self.root, seq, need_frames=False,
                              split_file=f"ImageSets/2017/{self.split}.txt")

    def ground_truth(self, seq: str) -> tuple[Sequence, np.ndarray, int]:
        """Files, annotations ``[T, H, W]`` and object count of ``seq``."""
        files = self.files(seq)
        if len(files.annotations) < 3:
            raise DavisError(f"{files.annotations[0].parent}: {len(files.annotations)} annotated "
                             "frames; the evaluation needs at least 3 (first and last are not scored)")
        gt = read_annotations(files)
        return files, gt, check_first_annotation(gt[0], files.annotations[0])

    def score(self, seq: str, prediction: Callable[[str], tuple[np.ndarray, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Score ``seq``. ``prediction(stem)`` returns ``(label map [H, W], its name for error
        messages)`` for each scored frame. Returns ``(J, F)`` ``[K, n]`` and records them."""
        J, F = self.compute(seq, prediction)
        self.results.add(seq, J, F)
        return J, F

    def compute(self, seq: str, prediction: Callable[[str], tuple[np.ndarray, str]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score` without recording (safe to run for several sequences at once)."""
        files, gt, k = self.ground_truth(seq)
        stems = [p.stem for p in files.annotations][1:-1]
        pred = np.empty((len(stems), *files.size), dtype=np.uint8)
        for i, stem in enumerate(stems):
            m, where = prediction(stem)
            if m.shape != files.size:
                raise DavisError(f"{where}: prediction is {m.shape[1]}x{m.shape[0]} (WxH), the "
                                 f"annotation is {files.size[1]}x{files.size[0]}")
            top = int(m.max()) if m.size else 0
            if top > k:
                raise DavisError(f"{where}: prediction holds id {top} but sequence {seq!r} has "
                                 f"{k} object(s) (ids 1..{k} in its first annotation)")
            pred[i] = m
        return sequence_scores(gt[1:-1], pred, k)

    def score_folder(self, seq: str, results_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
        """Score ``seq`` from ``results_dir/<seq>/<frame>.png``."""
        return self.score(seq, _png_reader(Path(results_dir) / seq))

    def score_arrays(self, seq: str, masks: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Score ``seq`` from label maps held in memory, keyed by frame stem."""
        def get(stem):
            where = f"{seq}/{stem} (in-memory prediction)"
            if stem not in masks:
                raise DavisError(f"{where}: prediction not found")
            return np.asarray(masks[stem]), where
        return self.score(seq, get)


def _png_reader(folder: Path) -> Callable[[str], tuple[np.ndarray, str]]:
    def read(stem):
        path = folder / f"{stem}.png"
        if not path.is_file():
            raise DavisError(f"{path}: prediction not found")
        return read_index_png(path, "prediction", allow_grey=True), str(path)
    return read


def evaluate_folder(davis_root: str | Path, results_dir: str | Path, split: str = "val",
                    log: Callable[[str], None] | None = None, workers: int | None = None) -> DavisResults:
    """Score every sequence of ``split`` from the PNGs under ``results_dir``.

    Sequences are scored by ``workers`` threads (default: the CPU count, at most 8; PNG decoding
    and the bit-packed scoring release the GIL) and recorded, logged and, on bad input, reported
    in split order, as one thread would.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DavisError(f"{results_dir}: results folder not found")
    scorer = Scorer(davis_root, split)
    workers = workers or min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(scorer.compute, seq, _png_reader(results_dir / seq)) for seq in scorer.sequences]
        for i, (seq, future) in enumerate(zip(scorer.sequences, futures), 1):
            J, F = future.result()
            scorer.results.add(seq, J, F)
            if log:
                log(f"[{i}/{len(scorer.sequences)}] {seq}: {J.shape[0]} object(s), {J.shape[1]} frames, "
                    f"J {J.mean() if J.size else float('nan'):.3f} F {F.mean() if F.size else float('nan'):.3f}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)    # after an error: no more sequences started
    return scorer.results


__all__ = ["Scorer", "evaluate_folder"]
