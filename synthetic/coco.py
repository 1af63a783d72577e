"""A tiny COCO-format instance-segmentation set generated from :func:`synthetic.images.random_scene`.

Layout (what MMDetection's ``CocoDataset`` reads, unchanged)::

    ROOT/train/000000.jpg ...                 RGB JPEG images
    ROOT/val/000000.jpg ...
    ROOT/annotations/instances_train.json     COCO json: images, annotations, categories
    ROOT/annotations/instances_val.json

Three categories (ids 1-3): the shape kinds of :data:`synthetic.images.SHAPES`. Each object's
visible mask is stored as compressed RLE (``iscrowd`` 0), with its pixel area and its tight box
``[x, y, w, h]`` (pixels). Seeds fix every pixel; a finished folder is reused.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from synthetic.folder import claim, finish
from synthetic.images import SHAPES, random_scene

CLASSES = tuple(SHAPES)
CATEGORIES = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
SPLITS = ("train", "val")


def encode_mask(mask: np.ndarray) -> dict:
    """Boolean ``[H, W]`` mask -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def make_split(root: Path, split: str, n_images: int, height: int, width: int,
               rng: np.random.Generator, max_objects: int) -> dict:
    """Write the images of ``split`` and return its COCO dictionary."""
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        img, objects = random_scene(rng, height, width, int(rng.integers(1, max_objects + 1)),
                                    min_radius=0.12, max_radius=0.3)
        name = f"{i:06d}.jpg"
        Image.fromarray(img).save(folder / name, quality=92)
        image_id = i + 1
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        for obj in objects:
            rle = encode_mask(obj.mask)
            x, y, w, h = (float(v) for v in mask_utils.toBbox(_bytes_rle(rle)))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": obj.label + 1, "segmentation": rle,
                                "area": float(obj.mask.sum()), "bbox": [x, y, w, h], "iscrowd": 0})
    return {"info": {"description": f"flsl-bench synthetic shapes ({split})"},
            "images": images, "annotations": annotations, "categories": CATEGORIES}


def _bytes_rle(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def write_coco(root: str | Path, n_train: int = 24, n_val: int = 8, height: int = 128, width: int = 160,
               seed: int = 0, max_objects: int = 4) -> Path:
    """Generate the set under ``root`` (see the module docstring); returns ``root``."""
    root = Path(root)
    stamp = f"coco {n_train} {n_val} {height} {width} {seed} {max_objects}"
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, n in zip(SPLITS, (n_train, n_val)):
        coco = make_split(root, split, n, height, width, rng, max_objects)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    finish(root, stamp)
    return root


__all__ = ["CLASSES", "CATEGORIES", "write_coco", "encode_mask"]
