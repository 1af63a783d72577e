"""A DAVIS split end to end: frames -> batched features -> propagation -> palette PNGs.

Features of a sequence are computed in batches of frames (they do not depend on the labels);
propagation then runs frame by frame, and the soft labels are turned into label maps in
batches. Frame decoding with the encoder, label-map conversion and PNG writing each run in a
helper thread, overlapping the propagation. Only one sequence is held in memory at a time.
"""
from __future__ import annotations

import collections
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from .evaluate import Scorer
from .features import FeatureExtractor, read_frame
from .io import (VOID, DavisError, Sequence, check_first_annotation, check_output_folder, read_index_png,
                 read_palette, read_split, sequence_files, write_index_png)
from .propagation import PropagationParams, Propagator, one_hot_labels, soft_to_masks


def first_labels(annotation: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """One-hot labels ``[h * w, L]`` of the first annotation at feature resolution.

    Void (255) counts as background; the map is resized to ``(w, h)`` with Pillow's nearest
    neighbour and one-hot encoded over 0..max of the *downsampled* map.
    """
    lab = np.where(annotation == VOID, 0, annotation).astype(np.uint8)
    h, w = grid
    return one_hot_labels(np.asarray(Image.fromarray(lab).resize((w, h), Image.NEAREST)))


def _batches(paths, size):
    for i in range(0, len(paths), size):
        yield paths[i:i + size]


def _read_frames(paths, short_side, multiple):
    frames, size = [], None
    for path in paths:
        x, size = read_frame(path, short_side, multiple)
        frames.append(x)
    return torch.stack(frames), size


#: batches of frame features computed ahead of the propagation (each ~10 MB at 480p, ViT-S/16)
FEATURES_AHEAD = 2


def propagate_sequence(extractor: FeatureExtractor, files: Sequence, params: PropagationParams,
                       short_side: int = 480, multiple: int = 64, batch_size: int = 8,
                       device: str | torch.device = "cpu") -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(frame stem, label map [H0, W0] uint8)`` for every frame; frame 0 is the given
    annotation.

    Work that does not depend on the propagation order overlaps with it in two helper threads:
    one decodes the frames and runs the encoder up to ``FEATURES_AHEAD`` batches ahead (the
    features do not depend on the labels), the other turns each batch's soft labels into label
    maps. The main thread only propagates. Decoding (OpenCV), the encoder, the propagation and
    the label maps (torch, Pillow) release the GIL, so the three share the cores; the features
    and the label maps are the ones a single thread computes (same batches, same kernels).
    """
    p = extractor.patch_size
    annotation = read_index_png(files.annotations[0], "annotation")
    yield files.frames[0].stem, annotation
    chunks = list(_batches(files.frames, batch_size))

    def features(chunk):
        x, size = _read_frames(chunk, short_side, multiple)
        if x.shape[2] % p or x.shape[3] % p:
            raise DavisError(f"{chunk[0]}: network input {x.shape[3]}x{x.shape[2]} is not a "
                             f"multiple of the patch size {p} (short_side / multiple settings)")
        return extractor(x.to(device)).float(), (x.shape[2] // p, x.shape[3] // p), size   # [B, N, C]

    prop, pending = None, None
    with ThreadPoolExecutor(max_workers=1) as encoder, ThreadPoolExecutor(max_workers=1) as masks:
        ahead = collections.deque(encoder.submit(features, c) for c in chunks[:FEATURES_AHEAD])
        for i, chunk in enumerate(chunks):
            feats, grid, size = ahead.popleft().result()
            if i + FEATURES_AHEAD < len(chunks):
                ahead.append(encoder.submit(features, chunks[i + FEATURES_AHEAD]))
            start = 0
            if prop is None:
                prop = Propagator(params, grid, feats[0], first_labels(annotation, grid).to(feats.device))
                start = 1
            soft = [prop.step(f) for f in feats[start:]]
            if pending is not None:
                yield from zip(pending[0], pending[1].result())
                pending = None
            if soft:
                soft = torch.stack(soft).transpose(1, 2).reshape(len(soft), -1, *grid)  # [B, L, h, w]
                pending = ([q.stem for q in chunk[start:]], masks.submit(soft_to_masks, soft, p, size))
        if pending is not None:
            yield from zip(pending[0], pending[1].result())


def propagate_split(extractor: FeatureExtractor, davis_root: str | Path, out_dir: str | Path,
                    params: PropagationParams, split: str = "val", short_side: int = 480,
                    multiple: int = 64, batch_size: int = 8, device: str | torch.device = "cpu",
                    scorer: Scorer | None = None, sequences: list[str] | None = None,
                    log: Callable[[str], None] | None = print) -> list[str]:
    """Propagate every sequence of ``split`` and write ``out_dir/<seq>/<frame>.png``.

    All sequences are checked before any computation, and an ``out_dir`` that would write into
    the DAVIS folders is refused. With a ``scorer`` each sequence is also scored from the in-memory
    label maps. Returns the sequence names.
    """
    root, out_dir = Path(davis_root), Path(out_dir)
    check_output_folder(out_dir, root)
    names = read_split(root, split)
    if sequences:
        unknown = [s for s in sequences if s not in names]
        if unknown:
            raise DavisError(f"{root / 'ImageSets/2017' / (split + '.txt')}: does not list "
                             f"{', '.join(unknown)}")
        names = [s for s in names if s in sequences]
    all_files = [sequence_files(root, s, need_frames=True, split_file=f"ImageSets/2017/{split}.txt")
                 for s in names]
    for files in all_files:  # every first annotation must be usable before any computation
        check_first_annotation(read_index_png(files.annotations[0], "annotation"), files.annotations[0])
    for i, files in enumerate(all_files, 1):
        t0 = time.perf_counter()
        palette = read_palette(files.annotations[0])
        keep, written = {}, []
        with ThreadPoolExecutor(max_workers=1) as writer:   # PNG encoding overlaps the rest
            for stem, mask in propagate_sequence(extractor, files, params, short_side, multiple,
                                                 batch_size, device):
                written.append(writer.submit(write_index_png, out_dir / files.name / f"{stem}.png",
                                             mask, palette))
                if scorer is not None:
                    keep[stem] = mask
            for future in written:
                future.result()                             # a failed write stops the run here
        dt = time.perf_counter() - t0
        msg = f"[{i}/{len(all_files)}] {files.name}: {len(files.frames)} frames in {dt:.1f} s " \
              f"({len(files.frames) / dt:.2f} frames/s)"
        if scorer is not None:
            J, F = scorer.score_arrays(files.name, keep)
            if J.size:
                msg += f", J {J.mean():.3f} F {F.mean():.3f}"
        if log:
            log(msg)
    return names


__all__ = ["first_labels", "propagate_sequence", "propagate_split"]
