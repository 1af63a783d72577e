"""A small generated DAVIS 2017 tree in the official layout, for tests, the demo and the
benchmark.

Each sequence is a short video of 1-3 textured shapes (:mod:`synthetic.images` primitives)
moving and turning over a static textured scene. Four scenarios repeat over the sequences:

``single``     one object drifting and turning
``occlusion``  two objects crossing, the second passing in front of the first
``leaving``    three objects, one of which leaves the frame for good before the end
``entering``   two objects, one starting half outside the frame and moving in; this sequence
               also has a void (255) ring around its first object in every annotation

Every object is visible in the first frame, so the object count is the first frame's largest
id. Everything is fixed by ``seed``. Layout written (see :mod:`benchmarks.davis.io`)::

    ROOT/JPEGImages/480p/<seq>/00000.jpg ...
    ROOT/Annotations/480p/<seq>/00000.png ...   (indexed PNGs, DAVIS palette)
    ROOT/ImageSets/2017/<split>.txt
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.davis.io import ANNOTATIONS, IMAGES, IMAGESETS, VOID, write_index_png
from synthetic.folder import claim, finish
from synthetic.images import SHAPES, random_scene, shape_mask, texture

SCENARIOS = ("single", "occlusion", "leaving", "entering")
HD_SIZE = (480, 854)  # DAVIS 480p (height, width)


@dataclasses.dataclass
class SyntheticDavis:
    """What was written. ``size`` is ``(height, width)``; ``labels[seq]`` ``[T, H, W]`` uint8
    holds the annotations as written (void 255 included)."""

    root: Path
    split: str
    sequences: list
    size: tuple
    n_frames: dict
    n_objects: dict
    void_sequence: str
    labels: dict


@dataclasses.dataclass
class _Mover:
    kind: str
    ry: float
    rx: float
    cy: float
    cx: float
    vy: float
    vx: float
    angle: float
    spin: float
    tex: np.ndarray  # [2R+1, 2R+1, 3] float32 texture carried by the object

    def at(self, t: int):
        return self.cy + self.vy * t, self.cx + self.vx * t, self.angle + self.spin * t


def _mover(rng, h, w, cy, cx, vy, vx, scale) -> _Mover:
    s = min(h, w)
    ry, rx = rng.uniform(0.7, 1.0, size=2) * scale * s
    r = int(np.ceil(max(ry, rx)))
    tex = 0.25 + 0.75 * texture(rng, 2 * r + 1, 2 * r + 1)
    return _Mover(SHAPES[int(rng.integers(len(SHAPES)))], ry, rx, cy * h, cx * w, vy * h, vx * w,
                  rng.uniform(0, np.pi), rng.uniform(-0.08, 0.08), tex)


def _scenario(kind: str, rng, h, w, n) -> list[_Mover]:
    d = 1.0 / max(n - 1, 1)  # "whole sequence" speed unit
    if kind == "single":
        return [_mover(rng, h, w, 0.4, 0.3, 0.25 * d, 0.4 * d, 0.22)]
    if kind == "occlusion":
        return [_mover(rng, h, w, 0.5, 0.25, 0.0, 0.45 * d, 0.2),
                _mover(rng, h, w, 0.45, 0.8, 0.05 * d, -0.55 * d, 0.17)]
    if kind == "leaving":
        gone = max(n - 3, 1)  # fully out of the frame from frame n-3 on
        return [_mover(rng, h, w, 0.3, 0.25, 0.2 * d, 0.15 * d, 0.15),
                _mover(rng, h, w, 0.7, 0.45, -0.15 * d, 0.2 * d, 0.15),
                _mover(rng, h, w, 0.45, 0.75, 0.0, 0.6 / gone, 0.13)]
    if kind == "entering":
        return [_mover(rng, h, w, 0.45, 0.35, 0.15 * d, 0.1 * d, 0.2),
                _mover(rng, h, w, 0.55, 1.0, -0.05 * d, -0.3 * d, 0.16)]
    raise ValueError(f"unknown scenario {kind!r}")


def _render(bg, movers, t, void_ring: int):
    h, w = bg.shape[:2]
    img = bg.copy()
    lab = np.zeros((h, w), dtype=np.uint8)
    for k, m in enumerate(movers, 1):
        cy, cx, ang = m.at(t)
        mask = shape_mask(m.kind, h, w, cy, cx, m.ry, m.rx, ang)
        ys, xs = np.nonzero(mask)
        r = (m.tex.shape[0] - 1) // 2
        ty = np.clip(np.round(ys - cy).astype(int) + r, 0, 2 * r)
        tx = np.clip(np.round(xs - cx).astype(int) + r, 0, 2 * r)
        img[ys, xs] = m.tex[ty, tx]
        lab[mask] = k
    if void_ring:
        m = movers[0]
        cy, cx, ang = m.at(t)
        ring = shape_mask(m.kind, h, w, cy, cx, m.ry + void_ring, m.rx + void_ring, ang)
        lab[ring & (lab == 0)] = VOID
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), lab


def write_davis(root: str | Path, n_sequences: int = 4, frames: tuple[int, int] = (8, 12),
                size: tuple[int, int] = (96, 160), seed: int = 0, split: str = "val",
                hd: bool = False, quality: int = 90) -> SyntheticDavis:
    """Write a DAVIS-layout tree of ``n_sequences`` sequences under ``root``.

    ``frames``: (min, max) frames per sequence (inclusive); ``size``: frame (height, width),
    replaced by 480x854 when ``hd``. The ``entering`` sequence (index 3) carries the void ring.
    """
    root = Path(root)
    h, w = HD_SIZE if hd else size
    if min(h, w) < 32 or frames[0] < 3 or frames[1] < frames[0]:
        raise ValueError("need frames of at least 32x32 pixels and at least 3 frames per sequence")
    # a set of the same settings is written again (the ground truth is returned from memory)
    stamp = f"davis {n_sequences} {frames[0]}-{frames[1]} {h}x{w} {seed} {split} {quality}"
    claim(root, stamp)
    rng = np.random.default_rng(seed)
    out = SyntheticDavis(root, split, [], (h, w), {}, {}, "", {})
    for i in range(n_sequences):
        kind = SCENARIOS[i % len(SCENARIOS)]
        name = f"synth{i:02d}-{kind}"
        n = int(rng.integers(frames[0], frames[1] + 1))
        bg, _ = random_scene(rng, h, w, 2)
        bg = bg.astype(np.float32) / 255.0
        movers = _scenario(kind, rng, h, w, n)
        ring = max(2, round(0.015 * min(h, w))) if kind == "entering" else 0
        fdir, adir = root / IMAGES / name, root / ANNOTATIONS / name
        fdir.mkdir(parents=True, exist_ok=True)
        labels = np.empty((n, h, w), dtype=np.uint8)
        for t in range(n):
            img, lab = _render(bg, movers, t, ring)
            Image.fromarray(img).save(fdir / f"{t:05d}.jpg", quality=quality)
            write_index_png(adir / f"{t:05d}.png", lab)
            labels[t] = lab
        first = labels[0][labels[0] != VOID]
        assert set(range(1, len(movers) + 1)) <= set(np.unique(first).tolist()), name
        out.sequences.append(name)
        out.n_frames[name] = n
        out.n_objects[name] = len(movers)
        out.labels[name] = labels
        if ring:
            out.void_sequence = name
    split_file = root / IMAGESETS / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("".join(f"{s}\n" for s in out.sequences))
    finish(root, stamp)
    return out


__all__ = ["SCENARIOS", "HD_SIZE", "SyntheticDavis", "write_davis"]
