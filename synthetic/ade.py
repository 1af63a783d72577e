"""A tiny ADE20K-layout semantic-segmentation set generated from
:func:`synthetic.images.random_scene`.

Layout (what MMSegmentation's ``ADE20KDataset`` reads, unchanged)::

    ROOT/images/training/ADE_train_00000000.jpg          RGB JPEG
    ROOT/annotations/training/ADE_train_00000000.png     uint8 label map [H, W]
    ROOT/images/validation/ADE_val_00000000.jpg
    ROOT/annotations/validation/ADE_val_00000000.png

Label values follow ADE20K's convention (0 = unlabelled, ignored through ``reduce_zero_label``;
``k >= 1`` = class ``k - 1`` of the 150): the background texture is 1, the shapes are 2, 3, 4
(:data:`LABELS`), and a one-pixel band on every region border is 0, as ADE leaves object
outlines unlabelled. The ADE class names attached to those indices are irrelevant here; the set
exists so that the ADE20K config runs unchanged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from synthetic.folder import claim, finish
from synthetic.images import SHAPES, random_scene

#: label value written for the background and for each shape kind
LABELS = {"background": 1, **{kind: 2 + i for i, kind in enumerate(SHAPES)}}
SPLITS = {"training": "ADE_train", "validation": "ADE_val"}


def label_map(height: int, width: int, objects) -> np.ndarray:
    """``[H, W]`` uint8 labels from the scene's visible masks, region borders set to 0."""
    labels = np.full((height, width), LABELS["background"], dtype=np.uint8)
    for obj in objects:
        labels[obj.mask] = LABELS[obj.kind]
    border = np.zeros_like(labels, dtype=bool)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[1:, :] |= labels[1:, :] != labels[:-1, :]
    labels[border] = 0
    return labels


def write_ade(root: str | Path, n_train: int = 24, n_val: int = 8, height: int = 128, width: int = 160,
              seed: int = 0, max_objects: int = 4) -> Path:
    """Generate the set under ``root`` (see the module docstring); returns ``root``."""
    root = Path(root)
    stamp = f"ade {n_train} {n_val} {height} {width} {seed} {max_objects}"
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    for (split, prefix), n in zip(SPLITS.items(), (n_train, n_val)):
        img_dir, ann_dir = root / "images" / split, root / "annotations" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, objects = random_scene(rng, height, width, int(rng.integers(1, max_objects + 1)),
                                        min_radius=0.12, max_radius=0.3)
            Image.fromarray(img).save(img_dir / f"{prefix}_{i:08d}.jpg", quality=92)
            Image.fromarray(label_map(height, width, objects)).save(ann_dir / f"{prefix}_{i:08d}.png")
    finish(root, stamp)
    return root


__all__ = ["LABELS", "label_map", "write_ade"]
