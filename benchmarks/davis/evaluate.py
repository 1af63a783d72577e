"""Score predictions of a DAVIS split: from PNG folders (``OUT/<seq>/<frame>.png``) or from
label maps held in memory, sequence by sequence.

Semi-supervised protocol: the first and the last frame of each sequence are not scored;
objects are ids 1..K with K the largest id of the first annotation (void excluded); void pixels
of the ground truth count as background; a prediction without some id scores an empty mask
for it; a prediction holding an id above K is an error.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from .io import (MANIFEST, DavisError, Sequence, check_first_annotation, read_annotations, read_index_png,
                 read_manifest, read_split, sequence_files)
from .metrics import DavisResults, sequence_scores


class Scorer:
    """Scores sequences of one DAVIS split into a :class:`DavisResults`."""

    def __init__(self, davis_root: str | Path, split: str = "val"):
        self.root = Path(davis_root)
        self.split = split
        self.sequences = read_split(self.root, split)
        self.results = DavisResults(self.sequences)

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


def check_recorded(results_dir: Path, sequences: list[str]) -> None:
    """A folder written by ``tools/davis_propagate.py`` carries ``predictions.json``: every
    sequence scored must be listed there as complete, so the scores never mix predictions of an
    unfinished sequence, or of another run copied in, with the recorded run's. (Folders of other
    tools, without a record, are scored as they are.)"""
    record = read_manifest(results_dir)
    if record is None:
        return
    missing = [s for s in sequences if s not in record["sequences"]]
    if missing:
        made = record["producer"].get("checkpoint")
        raise DavisError(f"{results_dir / missing[0]}: not recorded as complete in {results_dir / MANIFEST} "
                         f"(its run, of {made}, did not finish it; {len(missing)} of {len(sequences)} "
                         "sequences missing); run davis_propagate for them into this folder")


def evaluate_folder(davis_root: str | Path, results_dir: str | Path, split: str = "val",
                    log: Callable[[str], None] | None = None, workers: int | None = None) -> DavisResults:
    """Score every sequence of ``split`` from the PNGs under ``results_dir``.

    Sequences are scored by ``workers`` workers (default: the CPU count, at most 8) and
    recorded, logged and, on bad input, reported in split order, as one worker would. Workers
    are forked processes when this process can fork safely (:func:`_can_fork`), else threads: scoring is many numpy calls on frame-sized arrays, which
    hold the GIL often enough that threads gain little (66 frames of 854x480: 46 ms with one
    thread, 48 ms with two; 400 frames: 0.26 s, 0.22 s), while two processes share the work.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DavisError(f"{results_dir}: results folder not found")
    scorer = Scorer(davis_root, split)
    check_recorded(results_dir, scorer.sequences)
    workers = max(1, min(workers or min(8, os.cpu_count() or 1), len(scorer.sequences)))

    def score(seq):
        return scorer.compute(seq, _png_reader(results_dir / seq))

    mapper = _forked_map if workers > 1 and _can_fork() else _threaded_map
    for i, (seq, (J, F)) in enumerate(zip(scorer.sequences, mapper(score, scorer.sequences, workers)), 1):
        scorer.results.add(seq, J, F)
        if log:
            log(f"[{i}/{len(scorer.sequences)}] {seq}: {J.shape[0]} object(s), {J.shape[1]} frames, "
                f"J {J.mean() if J.size else float('nan'):.3f} F {F.mean() if F.size else float('nan'):.3f}")
    return scorer.results


def _can_fork() -> bool:
    """Forking is safe here only in a process with no other thread: not with Python threads
    running, nor once torch is loaded (its OpenMP pool is threads Python does not see, and a
    child may inherit one of their locks held)."""
    import threading
    return hasattr(os, "fork") and threading.active_count() == 1 and "torch" not in sys.modules


def _threaded_map(fn, items: list, workers: int) -> Iterator:
    """``fn`` over ``items`` in ``workers`` threads; results (or the first error) in order."""
    if workers == 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(fn, item) for item in items]
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)    # after an error: no more items started


def _forked_map(fn, items: list, workers: int) -> Iterator:
    """``fn`` over ``items`` in this process and ``workers - 1`` forked children; results (or
    the first error, in item order, as one worker would raise it) in order.

    Item ``i`` belongs to worker ``i % workers`` (worker 0 is this process). Each child streams
    a pickled ``(ok, value)`` per item of its share through a pipe and stops at its first error;
    this process computes its own items and reads the children's in between, so results come
    in order while every worker runs. Children are killed and reaped when this ends early. If
    the system refuses a process (a limit on processes or memory), threads do the work instead.
    """
    import pickle
    children = []                                   # (pid, read end as a file)
    try:
        try:
            for w in range(1, workers):
                children.append(_fork_worker(fn, items[w::workers]))
        except OSError:
            _reap(children)
            children = []
            yield from _threaded_map(fn, items, workers)
            return
        for i, item in enumerate(items):
            w = i % workers
            if w == 0:
                yield fn(item)
                continue
            try:
                ok, value = pickle.load(children[w - 1][1])
            except (EOFError, pickle.UnpicklingError):
                raise RuntimeError(f"scoring worker {children[w - 1][0]} ended without a result") from None
            if not ok:
                raise value
            yield value
    finally:
        _reap(children)


def _fork_worker(fn, share: list):
    """Fork a child that streams ``(ok, fn(item))`` for each item of ``share`` (stopping after
    the first error) into a pipe; returns ``(pid, the pipe's read end)``."""
    import pickle
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:                                    # the child: never returns
        code = 0
        try:
            os.close(read_fd)
            with os.fdopen(write_fd, "wb") as out:
                for item in share:
                    try:
                        ok, value = True, fn(item)
                    except Exception as err:        # raised again, in order, by the parent
                        ok, value = False, err
                    try:
                        data = pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception:               # an error that does not pickle: its text
                        ok, value = False, RuntimeError(f"{type(value).__name__}: {value}")
                        data = pickle.dumps((ok, value))
                    out.write(data)
                    out.flush()
                    if not ok:
                        break
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb")


def _reap(children: list) -> None:
    """Close the pipes of forked workers, kill those still running, wait for all."""
    import signal
    for pid, pipe in children:
        pipe.close()
        try:
            os.kill(pid, signal.SIGKILL)            # done already, or no longer needed
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


__all__ = ["Scorer", "evaluate_folder"]
