"""Up-front checks of the data a config points to, with one-line errors naming the file.

MMDetection / MMSegmentation report a malformed annotation file or a missing image deep inside
a data-loader worker (or as a bare ``json`` traceback). These checks run before the runner is
built so that the message names the file, the line, or the first missing image.
"""
from __future__ import annotations

from core.errors import FLSLError
from core.images import TruncatedJPEG, check_jpeg_complete

import json
import logging
import math
import os
from pathlib import Path

from PIL import Image

log = logging.getLogger("flsl")


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rle_counts(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string.

    Each number is stored in 5-bit groups, least significant first, one character per group
    (character code - 48; bit 0x20 says another group follows, bit 0x10 of the last group is
    the sign); from the fourth number on, the stored value is the difference to the number two
    places earlier. Raises ``ValueError`` for a character out of range or a number cut short.
    """
    out, i = [], 0
    while i < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if i >= len(counts):
                raise ValueError("the string ends inside a number")
            c = ord(counts[i]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[i]!r} is outside the RLE alphabet")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            shift += 5
            i += 1
            if not more and c & 0x10:
                value -= 1 << shift  # sign-extend
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def _check_segmentation(seg, size: tuple | None) -> str | None:
    """Why ``seg`` (polygons or RLE) is unusable for an image of ``size`` (h, w), or None."""
    if isinstance(seg, list):
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or \
                    not all(_is_number(v) for v in poly):
                return "polygons must be lists of at least 3 (x, y) number pairs"
        return None
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        return "must be a list of polygons or an RLE object with 'size' and 'counts'"
    rle_size = seg["size"]
    if not (isinstance(rle_size, list) and len(rle_size) == 2 and all(_is_id(v) and v > 0 for v in rle_size)):
        return f"RLE 'size' must be [height, width], found {rle_size!r}"
    if size is not None and tuple(rle_size) != tuple(size):
        return f"RLE 'size' {rle_size} differs from the image's [height, width] {list(size)}"
    counts = seg["counts"]
    if isinstance(counts, str):
        try:
            counts = rle_counts(counts)
        except ValueError as err:
            return f"RLE 'counts' string is malformed ({err})"
    elif not (isinstance(counts, list) and all(_is_id(v) for v in counts)):
        return "RLE 'counts' must be a string or a list of integers"
    if any(v < 0 for v in counts) or sum(counts) != rle_size[0] * rle_size[1]:
        return (f"RLE 'counts' cover {sum(counts)} pixels with {sum(v < 0 for v in counts)} negative "
                f"run(s); a {rle_size[0]}x{rle_size[1]} mask has {rle_size[0] * rle_size[1]}")
    return None


def _usable_box(box, size: tuple | None) -> bool:
    """MMDetection's rule for training boxes: width and height >= 1 pixel, positive area, and
    some overlap with the image (boxes failing it are dropped without a word)."""
    x, y, w, h = box
    if w < 1 or h < 1:
        return False
    if size is None:
        return True
    img_h, img_w = size
    return min(x + w, img_w) - max(x, 0) > 0 and min(y + h, img_h) - max(y, 0) > 0


def check_coco(ann_file: str | Path, img_dir: str | Path | None = None, classes=None,
               training: bool = False) -> dict:
    """Check a COCO json before MMDetection reads it.

    Errors (:class:`AnnotationError`, naming the file and the entry): the three lists; ids and
    references (``image_id`` / ``category_id`` must be integers listed in the file); ``bbox`` as 4
    numbers and ``area`` as a number; segmentations (polygons, or RLE whose ``size`` matches the
    image and whose runs cover it exactly); no usable box at all in a file with annotations
    (zero-area, negative or outside the image: MMDetection drops such boxes, and training on
    nothing reports ``loss_bbox 0.0``); unique ids, category names, and every name of
    ``classes`` (the config's) among them; with ``img_dir``, every listed image must exist and be
    a readable image, a JPEG one complete (not cut short). Warnings (legal but suspicious): some
    unusable boxes, no annotation at all (an error for ``training`` data: MMDetection drops every
    image without a box and stops on an empty data set with a traceback), an image whose size
    differs from its entry. Returns ``{"images", "annotations", "categories"}`` counts.
    """
    ann_file = Path(ann_file)
    coco = load_json(ann_file)
    if not isinstance(coco, dict):
        raise AnnotationError(f"{ann_file}: top level must be a JSON object, found {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(f"{ann_file}: key {key!r} missing or not a list")
    sizes, files = {}, []
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise AnnotationError(f"{ann_file}: images[{i}] needs 'id' and 'file_name'")
        if not _is_id(img["id"]) or not isinstance(img["file_name"], str):
            raise AnnotationError(f"{ann_file}: images[{i}] needs an integer 'id' and a string "
                                  f"'file_name', found id {img['id']!r}, file_name {img['file_name']!r}")
        if img["id"] in sizes:
            raise AnnotationError(f"{ann_file}: images[{i}] repeats image id {img['id']}")
        h, w = img.get("height"), img.get("width")
        if not (_is_id(h) and _is_id(w) and h > 0 and w > 0):  # both frameworks read them
            raise AnnotationError(f"{ann_file}: images[{i}] (id {img['id']}) needs positive integer "
                                  f"'height' and 'width', found {h!r} x {w!r}")
        sizes[img["id"]] = (h, w)
        files.append((img["file_name"], sizes[img["id"]]))
    cat_ids, names = set(), set()
    for i, cat in enumerate(coco["categories"]):
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise AnnotationError(f"{ann_file}: categories[{i}] needs an integer 'id' and a string 'name'")
        if cat["id"] in cat_ids:
            raise AnnotationError(f"{ann_file}: categories[{i}] repeats category id {cat['id']}")
        cat_ids.add(cat["id"])
        names.add(cat["name"])
    missing_classes = [c for c in classes or () if c not in names]
    if missing_classes:
        # MMDetection keeps only the categories named by the config's classes: the others'
        # annotations would be dropped without a word
        raise AnnotationError(f"{ann_file}: the config's class {missing_classes[0]!r} is not a category "
                              f"name of the file (its categories: {', '.join(sorted(names))})")
    unusable, first_bad, plain, ann_ids = 0, None, 0, set()
    for i, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise AnnotationError(f"{ann_file}: annotations[{i}] is not an object")
        where = f"{ann_file}: annotations[{i}] (id {ann.get('id')!r})"
        if not _is_id(ann.get("id")):
            raise AnnotationError(f"{where}: needs an integer 'id'")
        if ann["id"] in ann_ids:
            raise AnnotationError(f"{where}: repeats an annotation id")
        ann_ids.add(ann["id"])
        for key, known in (("image_id", sizes), ("category_id", cat_ids)):
            value = ann.get(key)
            if not _is_id(value):
                raise AnnotationError(f"{where}: {key} must be an integer, found {value!r}")
            if value not in known:
                raise AnnotationError(f"{where} refers to {key} {value!r}, not listed in the file")
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise AnnotationError(f"{where} needs a 4-number 'bbox' [x, y, width, height], found {box!r}")
        if not _is_number(ann.get("area")):
            raise AnnotationError(f"{where} needs a number 'area', found {ann.get('area')!r}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, bool):
            raise AnnotationError(f"{where}: iscrowd must be 0 or 1, found {crowd!r}")
        if "segmentation" in ann:
            why = _check_segmentation(ann["segmentation"], sizes[ann["image_id"]])
            if why:
                raise AnnotationError(f"{where}: segmentation {why}")
        if not crowd:
            plain += 1
            if not _usable_box(box, sizes[ann["image_id"]]) or ann["area"] <= 0:
                unusable += 1
                first_bad = first_bad or (i, ann.get("id"), box, sizes[ann["image_id"]])
    if unusable:
        i, ann_id, box, size = first_bad
        example = (f"first: annotations[{i}] (id {ann_id!r}) bbox {box}"
                   + (f" in a {size[1]}x{size[0]} image" if size else ""))
        if unusable == plain:
            raise AnnotationError(f"{ann_file}: none of the {plain} boxes is usable (zero or negative "
                                  f"size, zero area, or outside the image; {example}); training would "
                                  "see no object")
        log.warning("warning: %s: %d of %d boxes are zero-area, negative or outside the image and "
                    "are ignored by MMDetection (%s)", ann_file, unusable, plain, example)
    if not coco["annotations"]:
        if training:
            raise AnnotationError(f"{ann_file}: holds no annotation (\"annotations\": []); training would see "
                                  "no object")
        log.warning("warning: %s: holds no annotation", ann_file)
    if img_dir is not None:
        img_dir = Path(img_dir)
        missing = [f for f, _ in files if not (img_dir / f).is_file()]
        if missing:
            raise AnnotationError(f"{ann_file}: {len(missing)} listed image(s) missing, first: "
                                  f"{img_dir / missing[0]}")
        _check_image_headers(ann_file, img_dir, files)
    return {key: len(coco[key]) for key in ("images", "annotations", "categories")}


def _header_size(path: Path, what: str) -> tuple[int, int]:
    """``(width, height)`` from an image file's header (no decoding), after checking that a JPEG
    is complete; ``what`` names the file in the one-line error (e.g. "label map")."""
    try:
        with Image.open(path) as im:
            size = im.size
        check_jpeg_complete(path)
    except TruncatedJPEG as err:
        raise AnnotationError(f"{path}: truncated JPEG {what} ({err}); re-extract or re-download it") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise AnnotationError(f"{path}: unreadable {what} ({err})") from None
    return size


def _check_image_headers(ann_file: Path, img_dir: Path, files: list) -> None:
    """Every listed image opens as an image (header only, no decoding) and, if a JPEG, is complete
    (its end-of-image marker present); a size different from its entry is a warning (masks are
    drawn at the entry's size)."""
    mismatched = []
    for name, size in files:
        path = img_dir / name
        w, h = _header_size(path, f"image listed in {ann_file}")
        if size is not None and (h, w) != tuple(size):
            mismatched.append(f"{path} is {w}x{h}, listed as {size[1]}x{size[0]}")
    if mismatched:
        log.warning("warning: %s: %d image(s) differ in size from their entry (first: %s)",
                    ann_file, len(mismatched), mismatched[0])


def check_seg_folders(img_dir: str | Path, seg_dir: str | Path, img_suffix: str = ".jpg",
                      seg_suffix: str = ".png") -> int:
    """Every image under ``img_dir`` needs its label map under ``seg_dir``, both readable (headers),
    complete if JPEG (end-of-image marker present) and of the same size; returns the count."""
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
        for path, what in ((p, "image"), (label, "label map")):
            size = _header_size(path, what)
            if what == "image":
                image_size = size
            elif size != image_size:
                raise AnnotationError(f"{path}: label map is {size[0]}x{size[1]}, its image {p.name} is "
                                      f"{image_size[0]}x{image_size[1]}")
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


def check_dataset_cfg(ds: dict, training: bool = False) -> None:
    """Check one MMDetection (COCO-style json) or MMSegmentation (image / label folders) dataset
    (``training``: one a model is trained on, which must hold annotations)."""
    root = ds.get("data_root")
    prefix = ds.get("data_prefix") or {}
    ann = ds.get("ann_file")
    if ann and str(ann).endswith(".json"):
        img = prefix.get("img")
        classes = (ds.get("metainfo") or {}).get("classes")
        check_coco(_join(root, ann), _join(root, img) if img is not None else None, classes, training)
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
                check_dataset_cfg(ds, training=name == "train_dataloader")
    seen = {str(_join(ds.get("data_root"), ds.get("ann_file")))
            for name in loaders if cfg.get(name)
            for ds in _datasets(cfg[name].get("dataset")) if ds.get("ann_file")}
    for name in evaluators:
        ev = cfg.get(name)
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if isinstance(e, dict) and str(e.get("ann_file") or "").endswith(".json") \
                    and str(Path(e["ann_file"])) not in seen:
                load_json(e["ann_file"])


__all__ = ["AnnotationError", "load_json", "check_coco", "rle_counts", "check_seg_folders", "check_dataset_cfg",
           "check_config_data"]
