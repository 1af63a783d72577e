"""A DAVIS split end to end: frames -> batched features -> propagation -> palette PNGs.

Features of a sequence are computed in batches of frames (they do not depend on the labels);
propagation then runs frame by frame, and the soft labels are turned into label maps in
batches. Frame decoding with the encoder, label-map conversion and PNG writing each run in a
helper thread, overlapping the propagation. Only one sequence is held in memory at a time.
"""
from __future__ import annotations

import collections
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from core.constants import DINO_DAVIS_STD, IMAGENET_MEAN
from core.files import write_json_atomic

from .evaluate import Scorer
from .features import FeatureExtractor, read_frame, resized_size
from .io import (MANIFEST, VOID, DavisError, Sequence, check_first_annotation, check_output_folder,
                 read_index_png, read_manifest, read_palette, read_split, sequence_files, write_index_png)
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


def _read_frames(paths, short_side, multiple, mean=IMAGENET_MEAN, std=DINO_DAVIS_STD):
    frames, size = [], None
    for path in paths:
        x, size = read_frame(path, short_side, multiple, mean, std)
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
        x, size = _read_frames(chunk, short_side, multiple, extractor.mean, extractor.std)
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


def producer(extractor: FeatureExtractor, params: PropagationParams, short_side: int,
             multiple: int) -> dict:
    """What decides the predictions: the checkpoint (path and SHA-256 of its bytes), the encoder
    chosen in it, and the protocol settings (the batch size does not change a label)."""
    from pretrain.checkpoint import file_sha256
    source = Path(extractor.source) if extractor.source else None
    return {"checkpoint": str(source) if source else None,
            "checkpoint_sha256": file_sha256(source) if source and source.is_file() else None,
            "which": getattr(extractor, "which", None), "rule": extractor.rule,
            "params": dataclasses.asdict(params), "short_side": short_side, "multiple": multiple}


def _differences(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys)


def claim_output(out_dir: Path, made_by: dict, option: str = "--out") -> dict:
    """The record to extend in ``out_dir``: a new or empty folder gets a fresh one; a folder of
    earlier predictions is continued only if the same checkpoint and settings made them, so one
    folder never mixes the predictions of two checkpoints; a folder of other files is refused."""
    record = read_manifest(out_dir)
    if record is None:
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise DavisError(f"{out_dir} ({option}): holds files but no {MANIFEST}, so what made them is "
                             "unknown; give a new or empty folder")
        return {"producer": made_by, "split": None, "sequences": []}
    if record["producer"] != made_by:
        raise DavisError(f"{out_dir} ({option}): holds predictions made otherwise "
                         f"({_differences(record['producer'], made_by)}); give another folder, or delete "
                         "this one to replace them")
    return record


def check_run_settings(extractor: FeatureExtractor, short_side: int, multiple: int, batch_size: int) -> None:
    """Settings checked before any frame is read (each would otherwise fail mid-run)."""
    p = extractor.patch_size
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DavisError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
    if not isinstance(multiple, int) or multiple < 1 or multiple % p:
        raise DavisError(f"multiple: must be a positive multiple of the patch size {p}, got {multiple!r}")
    if not isinstance(short_side, int) or short_side < p or short_side % p:
        raise DavisError(f"short_side: must be a positive multiple of the patch size {p} (frames are "
                         f"resized to it), got {short_side!r}")


def propagate_split(extractor: FeatureExtractor, davis_root: str | Path, out_dir: str | Path,
                    params: PropagationParams, split: str = "val", short_side: int = 480,
                    multiple: int = 64, batch_size: int = 8, device: str | torch.device = "cpu",
                    scorer: Scorer | None = None, sequences: list[str] | None = None,
                    log: Callable[[str], None] | None = print) -> list[str]:
    """Propagate every sequence of ``split`` and write ``out_dir/<seq>/<frame>.png``.

    All sequences and the output folder are checked before any computation: an ``out_dir`` inside
    the DAVIS folder, one that cannot be written or lacks space, or one holding predictions of
    another checkpoint or settings (:func:`claim_output`) is refused. Each PNG is written
    atomically; ``out_dir/predictions.json`` records what made the predictions and lists each
    sequence once all its frames are written. With a ``scorer`` each sequence is also scored
    from the in-memory label maps. Returns the sequence names.
    """
    root, out_dir = Path(davis_root), Path(out_dir)
    check_run_settings(extractor, short_side, multiple, batch_size)
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
    for files in all_files:
        try:
            resized_size(*files.size, short_side, multiple)
        except ValueError as err:
            raise DavisError(f"{files.frames[0]}: {err}") from None
    # label-map PNGs take well under one byte per pixel: an eighth, plus a header, is generous
    need = sum(len(f.frames) * (f.size[0] * f.size[1] // 8 + 1024) for f in all_files)
    check_output_folder(out_dir, root, need_bytes=need)
    record = claim_output(out_dir, producer(extractor, params, short_side, multiple))
    record["split"] = split
    write_json_atomic(record, out_dir / MANIFEST, indent=1)
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
        if files.name not in record["sequences"]:
            record["sequences"].append(files.name)
            write_json_atomic(record, out_dir / MANIFEST, indent=1)
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
