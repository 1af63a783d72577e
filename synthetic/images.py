"""Procedural images of textured shapes on textured backgrounds (no downloads).

The primitives here are shared by every generated data set of the suite (pretraining images,
COCO / ADE20K / DAVIS / UAVDT-layout sets in ``synthetic``): one implementation.
All randomness comes from the ``numpy.random.Generator`` passed in, so a seed fixes the output.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from synthetic.folder import claim, finish

SHAPES = ("ellipse", "rectangle", "triangle")


def texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random colour texture ``[H, W, 3]`` float32 in [0, 1]: stripes, checks or smooth noise."""
    kind = rng.integers(3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base, other = rng.uniform(0.05, 0.95, size=3), rng.uniform(0.05, 0.95, size=3)
    if kind == 0:  # oriented stripes
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)
    elif kind == 1:  # checkerboard
        cell = int(rng.integers(4, 14))
        t = (((ys // cell) + (xs // cell)) % 2).astype(np.float32)
    else:  # smooth noise: bilinear upsampling of a coarse random grid
        gh, gw = max(2, height // 12), max(2, width // 12)
        coarse = rng.uniform(0, 1, size=(gh, gw)).astype(np.float32)
        t = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height),
                       Image.BILINEAR), dtype=np.float32) / 255.0
    return (base[None, None] * t[..., None] + other[None, None] * (1 - t[..., None])).astype(np.float32)


def shape_mask(kind: str, height: int, width: int, cy: float, cx: float, ry: float, rx: float,
               angle: float = 0.0) -> np.ndarray:
    """Boolean mask ``[H, W]`` of a shape centred at (cy, cx) pixels with radii (ry, rx)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    u = ((xs - cx) * c + (ys - cy) * s) / max(rx, 1e-3)
    v = (-(xs - cx) * s + (ys - cy) * c) / max(ry, 1e-3)
    if kind == "ellipse":
        return u * u + v * v <= 1.0
    if kind == "rectangle":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if kind == "triangle":
        return (v <= 1.0) & (v >= 2 * np.abs(u) - 1.0)
    raise ValueError(f"unknown shape {kind!r}")


@dataclasses.dataclass
class SceneObject:
    kind: str
    label: int
    mask: np.ndarray  # [H, W] bool, visible part (after later objects occlude it)


def random_scene(rng: np.random.Generator, height: int, width: int, n_objects: int,
                 min_radius: float = 0.08, max_radius: float = 0.25):
    """Image ``[H, W, 3]`` uint8 and a list of :class:`SceneObject` with visible masks.

    Each object has a shape kind (its class label is the index in :data:`SHAPES`) and its own
    texture; later objects occlude earlier ones.
    """
    img = texture(rng, height, width)
    objects: list[SceneObject] = []
    for _ in range(n_objects):
        label = int(rng.integers(len(SHAPES)))
        size = min(height, width)
        ry, rx = rng.uniform(min_radius, max_radius, size=2) * size
        cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
        m = shape_mask(SHAPES[label], height, width, cy, cx, ry, rx, rng.uniform(0, np.pi))
        if m.sum() < 16:
            continue
        img[m] = texture(rng, height, width)[m]
        for o in objects:
            o.mask &= ~m
        objects.append(SceneObject(SHAPES[label], label, m))
    objects = [o for o in objects if o.mask.sum() >= 16]
    return (img * 255).round().astype(np.uint8), objects


def image_folder_stamp(n_images: int, size: int, seed: int = 0, n_classes: int = 0) -> str:
    """The settings line :func:`write_image_folder` marks its folder with."""
    return f"{n_images} {size} {seed} {n_classes}"


def write_image_folder(root: str | Path, n_images: int = 256, size: int = 128, seed: int = 0,
                       n_classes: int = 0) -> Path:
    """Write ``n_images`` JPEG scenes under ``root`` (flat, or ImageNet layout with
    ``n_classes`` class folders). A complete set of the same settings is reused; any folder the
    generator did not create is refused (:func:`synthetic.folder.claim`). Returns ``root``."""
    root = Path(root)
    stamp = image_folder_stamp(n_images, size, seed, n_classes)
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        img, _ = random_scene(rng, size, size, int(rng.integers(1, 5)))
        folder = root / f"class_{i % n_classes:03d}" if n_classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"img_{i:05d}.jpg", quality=92)
    finish(root, stamp)
    return root
