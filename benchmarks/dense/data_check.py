"""Up-front checks of the data a config points to, with one-line errors naming the file.

MMDetection / MMSegmentation report a malformed annotation file or a missing image deep inside
a data-loader worker (or as a bare ``json`` traceback). These checks run before the runner is
built so that the message names the file, the line, or the first missing image.
"""
from __future__ import annotations

from core.errors import FLSLError

import json
import os
from pathlib import Path


class AnnotationError(FLSLError):
    """Unusable data; the message names the file (and line / key)."""


def _join(root: str | None, path: str | None) -> Path:
    if not path:
        return Path(root or ".")
    return Path(path) if os.path.isabs(path) or not root else Path(root) / path


def load_json(path: str | Path) -> dict:
    """Parse a JSON file; errors name the file, the line and the column."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err.reason})") from None


def check_coco(ann_file: str | Path, img_dir: str | Path | None = None) -> dict:
    """Check a COCO json: the three lists, image / category references, and (when ``img_dir``
    is given) that every listed image exists. Returns ``{"images", "annotations", "categories"}``
    counts."""
    ann_file = Path(ann_file)
    coco = load_json(ann_file)
    if not isinstance(coco, dict):
        raise AnnotationError(f"{ann_file}: top level must be a JSON object, found {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(f"{ann_file}: key {key!r} missing or not a list")
    image_ids, files = set(), []
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise AnnotationError(f"{ann_file}: images[{i}] needs 'id' and 'file_name'")
        image_ids.add(img["id"])
        files.append(img["file_name"])
    cat_ids = {c.get("id") for c in coco["categories"] if isinstance(c, dict)}
    for i, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise AnnotationError(f"{ann_file}: annotations[{i}] is not an object")
        for key, known in (("image_id", image_ids), ("category_id", cat_ids)):
            if ann.get(key) not in known:
                raise AnnotationError(f"{ann_file}: annotations[{i}] (id {ann.get('id')}) refers to "
                                f"{key} {ann.get(key)!r}, not listed in the file")
        if "bbox" not in ann or len(ann["bbox"]) != 4:
            raise AnnotationError(f"{ann_file}: annotations[{i}] (id {ann.get('id')}) needs a 4-number 'bbox'")
    if img_dir is not None:
        img_dir = Path(img_dir)
        missing = [f for f in files if not (img_dir / f).is_file()]
        if missing:
            raise AnnotationError(f"{ann_file}: {len(missing)} listed image(s) missing, first: "
                            f"{img_dir / missing[0]}")
    return {key: len(coco[key]) for key in ("images", "annotations", "categories")}


def check_seg_folders(img_dir: str | Path, seg_dir: str | Path, img_suffix: str = ".jpg",
                      seg_suffix: str = ".png") -> int:
    """Every image under ``img_dir`` needs its label map under ``seg_dir``; returns the count."""
    img_dir, seg_dir = Path(img_dir), Path(seg_dir)
    for d in (img_dir, seg_dir):
        if not d.is_dir():
            raise AnnotationError(f"folder not found: {d}")
    images = sorted(p for p in img_dir.rglob(f"*{img_suffix}") if p.is_file())
    if not images:
        raise AnnotationError(f"{img_dir}: no *{img_suffix} images")
    for p in images:
        label = seg_dir / p.relative_to(img_dir).with_name(p.name[:-len(img_suffix)] + seg_suffix)
        if not label.is_file():
            raise AnnotationError(f"{p}: label map missing: {label}")
    return len(images)


def _datasets(cfg: dict):
    """Leaf dataset configs of a (possibly wrapped) dataset config."""
    if not isinstance(cfg, dict):
        return
    if "dataset" in cfg:
        yield from _datasets(cfg["dataset"])
    elif "datasets" in cfg:
        for d in cfg["datasets"]:
            yield from _datasets(d)
    else:
        yield cfg


def check_dataset_cfg(ds: dict) -> None:
    """Check one MMDetection (COCO-style json) or MMSegmentation (image / label folders) dataset."""
    root = ds.get("data_root")
    prefix = ds.get("data_prefix") or {}
    ann = ds.get("ann_file")
    if ann and str(ann).endswith(".json"):
        img = prefix.get("img")
        check_coco(_join(root, ann), _join(root, img) if img is not None else None)
    elif "img_path" in prefix and "seg_map_path" in prefix and not ann:
        check_seg_folders(_join(root, prefix["img_path"]), _join(root, prefix["seg_map_path"]),
                          ds.get("img_suffix", ".jpg"), ds.get("seg_map_suffix", ".png"))


def check_config_data(cfg, loaders=("train_dataloader", "val_dataloader"),
                      evaluators=("val_evaluator",)) -> None:
    """Run the checks above on the datasets and COCO evaluators a config uses."""
    for name in loaders:
        loader = cfg.get(name)
        if loader:
            for ds in _datasets(loader.get("dataset")):
                check_dataset_cfg(ds)
    seen = {str(_join(ds.get("data_root"), ds.get("ann_file")))
            for name in loaders if cfg.get(name)
            for ds in _datasets(cfg[name].get("dataset")) if ds.get("ann_file")}
    for name in evaluators:
        ev = cfg.get(name)
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if isinstance(e, dict) and str(e.get("ann_file") or "").endswith(".json") \
                    and str(Path(e["ann_file"])) not in seen:
                load_json(e["ann_file"])


__all__ = ["AnnotationError", "load_json", "check_coco", "check_seg_folders", "check_dataset_cfg",
           "check_config_data"]
