"""The probes' data sets in their release layouts: readers, checks and converters.

Each reader returns the samples of a split as dicts (``id``, ``image``, and ``label`` / ``depth``
paths) after checking the layout; a missing or malformed part is a :class:`ProbeDataError` whose
message starts with the file at fault. Layouts (docs/probes.md):

- ``voc2012``: ``VOC2012/{JPEGImages, SegmentationClass, SegmentationClassAug,
  ImageSets/Segmentation/{train,val,aug,trainaug}.txt}`` (MMSegmentation's layout after
  ``voc_aug.py``); :func:`convert_voc_aug` makes the SBD part from SBD's ``dataset/cls/*.mat``.
- ``ade20k``: ``ADEChallengeData2016/{images,annotations}/{training,validation}``.
- ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``; :func:`convert_cityscapes` writes the
  latter from ``*_gtFine_labelIds.png``.
- ``nyu``: the depth toolbox's ``data/nyu`` folder: ``nyu_train.txt`` / ``nyu_test.txt`` lines
  ``<rgb> <depth png (uint16 mm)> <focal>`` relative to the folder.
- ``spair``: ``SPair-71k/{JPEGImages/<cat>, ImageAnnotation/<cat>, PairAnnotation/<split>}``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import FLSLError
from core.files import atomic_path, make_dirs, write_text_atomic


class ProbeDataError(FLSLError):
    """A data set the probes cannot read; the message names the file."""


VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
#: Cityscapes label id -> train id (cityscapesscripts ``labels.py``); every other id -> 255
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
SPAIR_CATEGORIES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "dog",
                    "horse", "motorbike", "person", "pottedplant", "sheep", "train", "tvmonitor")


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise ProbeDataError(f"{path}: not found ({what})")
    return path


def _lines(path: Path, what: str) -> list[str]:
    _need(path, what)
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def read_rgb(path: str | Path) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except (OSError, ValueError) as err:
        raise ProbeDataError(f"{path}: cannot read image ({err})") from None


def read_label(path: str | Path) -> np.ndarray:
    """``[H, W]`` uint8 label map (palette indices of a palette PNG, values of a grey one)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise ProbeDataError(f"{path}: label map of mode {im.mode}, expected a palette or 8-bit grey PNG")
            return np.array(im)
    except OSError as err:
        raise ProbeDataError(f"{path}: cannot read label map ({err})") from None


def check_label(path, label: np.ndarray, n_classes: int, ignore: int = 255, image_shape=None) -> np.ndarray:
    """``label`` unchanged when every value is a class ``0..n_classes-1`` or ``ignore`` and its size
    is the image's; else a :class:`ProbeDataError` naming the file."""
    if image_shape is not None and tuple(label.shape) != tuple(image_shape[:2]):
        raise ProbeDataError(f"{path}: label map is {label.shape[1]}x{label.shape[0]}, its image "
                             f"{image_shape[1]}x{image_shape[0]}")
    bad = (label >= n_classes) & (label != ignore)
    if bad.any():
        raise ProbeDataError(f"{path}: label value {int(label[bad].max())} outside 0..{n_classes - 1} "
                             f"and not the ignore value {ignore}")
    return label


def read_depth(path: str | Path) -> np.ndarray:
    """``[H, W]`` float32 metres from a 16-bit PNG in millimetres (0 = no measurement)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except OSError as err:
        raise ProbeDataError(f"{path}: cannot read depth map ({err})") from None
    if arr.dtype not in (np.uint16, np.int32) or arr.ndim != 2:
        raise ProbeDataError(f"{path}: depth map must be a 16-bit single-channel PNG (millimetres), got {arr.dtype} {arr.shape}")
    return arr.astype(np.float32) / 1000.0


def _pairs(samples: list[dict], keys=("image", "label")) -> list[dict]:
    for s in samples:
        for k in keys:
            _need(Path(s[k]), f"{k} of {s['id']}")
    return samples


# ----------------------------------------------------------------------------- segmentation sets
def voc_split(root: str | Path, split: str, prefer_aug: bool = False) -> list[dict]:
    """VOC 2012 samples of ``split``: ``trainaug`` (VOC ``train.txt`` with ``SegmentationClass`` plus
    ``aug.txt`` with ``SegmentationClassAug``, as MMSegmentation's aug config), ``train`` or ``val``.
    ``prefer_aug`` reads ``SegmentationClassAug`` for any image that has one there (the
    Hummingbird reference's memory labels)."""
    root = Path(root)
    sets = root / "ImageSets" / "Segmentation"
    parts = [("train", "SegmentationClass"), ("aug", "SegmentationClassAug")] if split == "trainaug" \
        else [(split, "SegmentationClass")]
    out = []
    for name, folder in parts:
        for i in _lines(sets / f"{name}.txt", f"VOC {name} list; run `python tools/probe.py --convert voc-aug` for aug.txt"
                        if name == "aug" else f"VOC {name} list"):
            label = root / folder / f"{i}.png"
            if prefer_aug and (root / "SegmentationClassAug" / f"{i}.png").is_file():
                label = root / "SegmentationClassAug" / f"{i}.png"
            out.append({"id": i, "image": root / "JPEGImages" / f"{i}.jpg", "label": label})
    if not out:
        raise ProbeDataError(f"{sets}: the {split} list is empty")
    return _pairs(out)


def ade_split(root: str | Path, split: str) -> list[dict]:
    """ADE20K samples of ``training`` / ``validation`` (every image of the folder, sorted)."""
    root = Path(root)
    images = sorted(_need(root / "images" / split, "ADE20K images").glob("*.jpg"))
    if not images:
        raise ProbeDataError(f"{root / 'images' / split}: no .jpg images")
    return _pairs([{"id": p.stem, "image": p, "label": root / "annotations" / split / f"{p.stem}.png"}
                   for p in images])


def cityscapes_split(root: str | Path, split: str) -> list[dict]:
    """Cityscapes samples of ``train`` / ``val`` with ``labelTrainIds`` maps."""
    root = Path(root)
    images = sorted(_need(root / "leftImg8bit" / split, "Cityscapes images").glob("*/*_leftImg8bit.png"))
    if not images:
        raise ProbeDataError(f"{root / 'leftImg8bit' / split}: no *_leftImg8bit.png images")
    out = []
    for p in images:
        stem = p.name[: -len("_leftImg8bit.png")]
        label = root / "gtFine" / split / p.parent.name / f"{stem}_gtFine_labelTrainIds.png"
        if not label.exists():
            raise ProbeDataError(f"{label}: not found (run `python tools/probe.py --convert cityscapes "
                                 f"--data-root {root}` to write labelTrainIds from labelIds)")
        out.append({"id": stem, "image": p, "label": label})
    return out


def convert_cityscapes(root: str | Path) -> int:
    """Write ``*_gtFine_labelTrainIds.png`` beside every ``*_gtFine_labelIds.png`` that lacks one
    (label id -> train id, all else 255); returns the number written. Existing files are kept."""
    lut = np.full(256, 255, np.uint8)
    for k, v in CITYSCAPES_TRAIN_IDS.items():
        lut[k] = v
    written = 0
    for src in sorted(Path(root, "gtFine").glob("*/*/*_gtFine_labelIds.png")):
        dst = src.with_name(src.name.replace("_labelIds.png", "_labelTrainIds.png"))
        if dst.exists():
            continue
        ids = read_label(src)
        with atomic_path(dst) as tmp:
            Image.fromarray(lut[ids]).save(tmp, format="PNG")
        written += 1
    if not written and not list(Path(root, "gtFine").glob("*/*/*_gtFine_labelTrainIds.png")):
        raise ProbeDataError(f"{Path(root, 'gtFine')}: no *_gtFine_labelIds.png maps to convert")
    return written


def convert_voc_aug(voc_root: str | Path, sbd_root: str | Path) -> int:
    """MMSegmentation's ``voc_aug.py`` step: SBD's ``cls/<id>.mat`` (``GTcls.Segmentation``) ->
    ``SegmentationClassAug/<id>.png``; lists ``trainaug.txt`` = (VOC train + SBD train + SBD val)
    minus VOC val, and ``aug.txt`` = trainaug minus VOC train (sorted). Returns the maps written."""
    from scipy.io import loadmat
    voc_root, sbd_root = Path(voc_root), Path(sbd_root)
    sets = voc_root / "ImageSets" / "Segmentation"
    voc_train, voc_val = set(_lines(sets / "train.txt", "VOC train list")), set(_lines(sets / "val.txt", "VOC val list"))
    sbd = set(_lines(sbd_root / "train.txt", "SBD train list")) | set(_lines(sbd_root / "val.txt", "SBD val list"))
    out_dir = make_dirs(voc_root / "SegmentationClassAug")
    written = 0
    for i in sorted(sbd):
        mat_path = _need(sbd_root / "cls" / f"{i}.mat", f"SBD class map of {i}")
        dst = out_dir / f"{i}.png"
        if dst.exists():
            continue
        try:
            seg = loadmat(str(mat_path), mat_dtype=True)["GTcls"][0]["Segmentation"][0]
        except (OSError, ValueError, KeyError, IndexError) as err:
            raise ProbeDataError(f"{mat_path}: not an SBD class map (GTcls.Segmentation: {err})") from None
        with atomic_path(dst) as tmp:
            Image.fromarray(np.asarray(seg, dtype=np.uint8)).save(tmp, format="PNG")
        written += 1
    trainaug = sorted((voc_train | sbd) - voc_val)
    write_text_atomic("".join(f"{i}\n" for i in trainaug), sets / "trainaug.txt")
    write_text_atomic("".join(f"{i}\n" for i in sorted(set(trainaug) - voc_train)), sets / "aug.txt")
    return written


# ----------------------------------------------------------------------------- depth
def nyu_split(root: str | Path, split: str) -> list[dict]:
    """NYU Depth v2 samples listed in ``nyu_<split>.txt`` (toolbox layout; a leading ``/`` of the
    train list's paths is relative to the folder, as the toolbox joins them)."""
    root = Path(root)
    lst = root / f"nyu_{split}.txt"
    out = []
    for n, line in enumerate(_lines(lst, f"NYU {split} list"), 1):
        parts = line.split()
        if len(parts) < 2:
            raise ProbeDataError(f"{lst}: line {n}: expected '<rgb> <depth> [focal]', got {line!r}")
        rgb, depth = parts[0].lstrip("/"), parts[1].lstrip("/")
        out.append({"id": rgb.replace("/", "_").rsplit(".", 1)[0], "image": root / rgb, "depth": root / depth})
    return _pairs(out, ("image", "depth"))


def convert_nyu_test(root: str | Path, labeled_mat: str | Path, splits_mat: str | Path) -> int:
    """BTS's extraction of the official test frames (``utils/extract_official_train_test_set_from_mat.py``)
    into the depth toolbox's folder: for every frame listed in ``splits.mat`` ``testNdxs`` (1-based)
    of ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3), ``root/<sceneType>/rgb_%05d.jpg`` (0-based frame
    index; black outside rows 7..473 and columns 7..631, as BTS writes it) and
    ``sync_depth_%05d.png`` (``rawDepths`` x 1000 as uint16 millimetres, 0 = missing), and
    ``root/nyu_test.txt`` when absent. Existing frames are kept; returns the frames written."""
    import h5py
    from scipy.io import loadmat
    root, labeled_mat = Path(root), Path(labeled_mat)
    try:
        test = sorted(int(v) for v in np.asarray(loadmat(str(splits_mat))["testNdxs"]).ravel())
    except (OSError, ValueError, KeyError) as err:
        raise ProbeDataError(f"{splits_mat}: not NYU's splits.mat with testNdxs ({err})") from None
    try:
        f = h5py.File(labeled_mat, "r")
    except OSError as err:
        raise ProbeDataError(f"{labeled_mat}: not a MATLAB v7.3 (HDF5) file ({err})") from None
    lines, written = [], 0
    with f:
        for key in ("images", "rawDepths", "sceneTypes"):
            if key not in f:
                raise ProbeDataError(f"{labeled_mat}: no {key!r} array (expected nyu_depth_v2_labeled.mat)")
        images, depths = f["images"], f["rawDepths"]
        scenes = ["".join(chr(int(c)) for c in np.asarray(f[ref]).ravel()) for ref in f["sceneTypes"][0]]
        for idx in test:
            i = idx - 1
            if not 0 <= i < len(scenes):
                raise ProbeDataError(f"{splits_mat}: test index {idx} outside the {len(scenes)} labelled frames")
            folder = make_dirs(root / scenes[i])
            rgb, dep = folder / f"rgb_{i:05d}.jpg", folder / f"sync_depth_{i:05d}.png"
            lines.append(f"{scenes[i]}/{rgb.name} {scenes[i]}/{dep.name} 518.8579")
            if rgb.exists() and dep.exists():
                continue
            image = np.asarray(images[i]).T                                      # [480, 640, 3] RGB
            framed = np.zeros_like(image)
            framed[7:474, 7:632] = image[7:474, 7:632]
            with atomic_path(rgb) as tmp:
                Image.fromarray(framed).save(tmp, format="JPEG", quality=95)
            with atomic_path(dep) as tmp:
                Image.fromarray((np.asarray(depths[i]).T * 1000.0).astype(np.uint16)).save(tmp, format="PNG")
            written += 1
    if not (root / "nyu_test.txt").exists():
        write_text_atomic("".join(f"{ln}\n" for ln in lines), root / "nyu_test.txt")
    return written


# ----------------------------------------------------------------------------- correspondence
def spair_pairs(root: str | Path, split: str = "test") -> list[dict]:
    """SPair-71k pair annotations of ``split`` (sorted by file name), checked for the fields the
    protocol reads; each dict adds the image paths."""
    root = Path(root)
    folder = _need(root / "PairAnnotation" / split, "SPair-71k pair annotations")
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ProbeDataError(f"{p}: not valid JSON ({err})") from None
        for field in ("src_imname", "trg_imname", "category", "src_kps", "trg_kps", "trg_bndbox", "src_imsize",
                      "trg_imsize", "viewpoint_variation"):
            if field not in d:
                raise ProbeDataError(f"{p}: missing field {field!r}")
        if len(d["src_kps"]) != len(d["trg_kps"]):
            raise ProbeDataError(f"{p}: {len(d['src_kps'])} source and {len(d['trg_kps'])} target keypoints")
        d["src_path"] = _need(root / "JPEGImages" / d["category"] / d["src_imname"], f"source image of {p.name}")
        d["trg_path"] = _need(root / "JPEGImages" / d["category"] / d["trg_imname"], f"target image of {p.name}")
        d["pair"] = p.stem
        out.append(d)
    if not out:
        raise ProbeDataError(f"{folder}: no pair annotations")
    return out


__all__ = ["ProbeDataError", "VOC_CLASSES", "CITYSCAPES_CLASSES", "CITYSCAPES_TRAIN_IDS", "SPAIR_CATEGORIES",
           "read_rgb", "read_label", "check_label", "read_depth", "voc_split", "ade_split", "cityscapes_split", "convert_cityscapes",
           "convert_voc_aug", "convert_nyu_test", "nyu_split", "spair_pairs"]
