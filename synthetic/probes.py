"""Generated stand-ins of the probes' data sets, each in its release layout (tests and the demo).

- :func:`write_voc`: ``VOC2012/`` (JPEGImages, palette SegmentationClass with a 255 boundary band,
  ImageSets/Segmentation/{train,val}.txt) and SBD's ``sbd/dataset/`` (``cls/<id>.mat`` MATLAB
  structs ``GTcls.Segmentation`` without boundary band, train.txt, val.txt): the input of
  MMSegmentation's ``voc_aug.py`` step (``tools/probe.py --convert voc-aug``).
- :func:`write_cityscapes`: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` (Cityscapes label ids, including ids that map to
  255), the input of the labelTrainIds conversion.
- :func:`write_nyu`: the depth toolbox's ``nyu/`` folder: training scenes
  ``<scene>/rgb_%05d.jpg`` + ``sync_depth_%05d.png`` (uint16 mm, 0 = missing), test frames as
  BTS's extraction writes them (``<sceneType>/rgb_%05d.jpg`` black outside rows 7..473 and
  columns 7..631), and ``nyu_train.txt`` / ``nyu_test.txt`` (train paths with a leading ``/``).
- :func:`write_nyu_labeled`: the labelled release's ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3)
  and ``splits.mat``, the input of ``tools/probe.py --convert nyu-test``.
- :func:`write_spair`: ``SPair-71k/`` with JPEGImages, ImageAnnotation, PairAnnotation/test
  (``<id>-<src>-<trg>:<category>.json``) and Layout/large/test.txt; a pair shows the same textured
  object at two positions / scales, keypoints at corresponding object points.

Images are scenes of :mod:`synthetic.images`; every set is a pure function of its arguments.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from synthetic.folder import claim, finish
from synthetic.images import SHAPES, random_scene, shape_mask, texture


def _palette_png(labels: np.ndarray, path: Path) -> None:
    from benchmarks.probes.run import palette
    im = Image.fromarray(labels.astype(np.uint8))
    im.putpalette(palette())                    # grey -> palette image
    im.save(path)


def _border(labels: np.ndarray) -> np.ndarray:
    b = np.zeros(labels.shape, bool)
    b[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    b[1:, :] |= labels[1:, :] != labels[:-1, :]
    return b


def _scene_labels(rng, h, w, first_class: int, max_objects: int = 3):
    img, objects = random_scene(rng, h, w, int(rng.integers(1, max_objects + 1)), min_radius=0.15, max_radius=0.3)
    labels = np.zeros((h, w), np.uint8)
    for o in objects:
        labels[o.mask] = first_class + o.label
    return img, labels


def write_voc(root: str | Path, n_train: int = 6, n_val: int = 3, n_sbd_only: int = 4, height: int = 64,
              width: int = 80, seed: int = 0) -> tuple[Path, Path]:
    """``root/VOC2012`` and ``root/sbd/dataset`` (module docstring); returns both folders. Shapes
    are classes 1..3, background 0; SBD covers some VOC train images plus ``n_sbd_only`` more and
    one VOC val image (which the aug lists must leave out)."""
    from scipy.io import savemat
    root = Path(root)
    stamp = f"voc {n_train} {n_val} {n_sbd_only} {height} {width} {seed}"
    voc, sbd = root / "VOC2012", root / "sbd" / "dataset"
    if claim(root, stamp):
        return voc, sbd
    rng = np.random.default_rng(seed)
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / d).mkdir(parents=True, exist_ok=True)
    (sbd / "cls").mkdir(parents=True, exist_ok=True)
    ids = [f"2008_{i:06d}" for i in range(n_train + n_val + n_sbd_only)]
    train, val, sbd_only = ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]
    sbd_ids = train[n_train // 2:] + sbd_only + val[:1]
    for i in ids:
        img, labels = _scene_labels(rng, height, width, 1)
        Image.fromarray(img).save(voc / "JPEGImages" / f"{i}.jpg", quality=92)
        if i in train or i in val:
            boundary = labels.copy()
            boundary[_border(labels)] = 255
            _palette_png(boundary, voc / "SegmentationClass" / f"{i}.png")
        if i in sbd_ids:
            savemat(str(sbd / "cls" / f"{i}.mat"), {"GTcls": {"Segmentation": labels.astype(np.uint8),
                                                              "Boundaries": np.zeros((1, 1)),
                                                              "CategoriesPresent": np.unique(labels[labels > 0])[None]}})
    (voc / "ImageSets/Segmentation/train.txt").write_text("".join(f"{i}\n" for i in train))
    (voc / "ImageSets/Segmentation/val.txt").write_text("".join(f"{i}\n" for i in val))
    half = len(sbd_ids) // 2
    (sbd / "train.txt").write_text("".join(f"{i}\n" for i in sbd_ids[:half]))
    (sbd / "val.txt").write_text("".join(f"{i}\n" for i in sbd_ids[half:]))
    finish(root, stamp)
    return voc, sbd


#: label ids written by :func:`write_cityscapes`: road, building, car, sky, and 0 / 4 / 9 (ignored)
CITY_IDS = (7, 11, 26, 23, 0, 4, 9)


def write_cityscapes(root: str | Path, n_train: int = 4, n_val: int = 2, height: int = 64, width: int = 128,
                     seed: int = 0) -> Path:
    """Cityscapes layout with ``labelIds`` maps (module docstring); returns ``root``."""
    root = Path(root)
    stamp = f"cityscapes {n_train} {n_val} {height} {width} {seed}"
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    for split, n, city in (("train", n_train, "aachen"), ("val", n_val, "frankfurt")):
        (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img, labels = _scene_labels(rng, height, width, 1)
            ids = np.asarray(CITY_IDS, np.uint8)[labels % len(CITY_IDS)]
            ids[: height // 8] = 23                            # sky band
            ids[-2:] = 0                                       # ego-vehicle rows: unlabelled
            stem = f"{city}_{k:06d}_000019"
            Image.fromarray(img).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
    finish(root, stamp)
    return root


def _depth_scene(rng, h: int = 480, w: int = 640):
    """A room-like scene: a tilted plane (floor / wall gradient) and shapes at nearer depths; RGB
    shaded by depth. Returns ``(rgb uint8, depth metres float32)``."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = 2.0 + 5.0 * (1 - ys / h) + rng.uniform(-1, 1) * xs / w
    img = texture(rng, h, w)
    for _ in range(int(rng.integers(1, 4))):
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        ry, rx = rng.uniform(0.1, 0.25, 2) * h
        m = shape_mask(kind, h, w, rng.uniform(ry, h - ry), rng.uniform(rx, w - rx), ry, rx, rng.uniform(0, np.pi))
        depth[m] = rng.uniform(0.8, 3.0)
        img[m] = texture(rng, h, w)[m]
    img = img * (1.2 - depth[..., None] / 10.0)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), depth.astype(np.float32)


def write_nyu(root: str | Path, n_train: int = 4, n_test: int = 2, seed: int = 0) -> Path:
    """The toolbox's NYU folder (module docstring), 480x640 frames; returns ``root``."""
    root = Path(root)
    stamp = f"nyu {n_train} {n_test} {seed}"
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    train_lines, test_lines = [], []
    for k in range(n_train):
        scene = f"kitchen_{k // 2:04d}a"
        (root / scene).mkdir(parents=True, exist_ok=True)
        img, depth = _depth_scene(rng)
        mm = np.round(depth * 1000).astype(np.uint16)
        mm[rng.uniform(size=mm.shape) < 0.02] = 0              # missing measurements
        Image.fromarray(img).save(root / scene / f"rgb_{k:05d}.jpg", quality=95)
        Image.fromarray(mm).save(root / scene / f"sync_depth_{k:05d}.png")
        train_lines.append(f"/{scene}/rgb_{k:05d}.jpg /{scene}/sync_depth_{k:05d}.png 518.8579")
    (root / "bathroom").mkdir(parents=True, exist_ok=True)
    for k in range(n_test):
        img, depth = _depth_scene(rng)
        frame = np.zeros_like(img)
        frame[7:474, 7:632] = img[7:474, 7:632]               # BTS keeps only this window of the RGB
        mm = np.round(depth * 1000).astype(np.uint16)
        Image.fromarray(frame).save(root / "bathroom" / f"rgb_{k:05d}.jpg", quality=95)
        Image.fromarray(mm).save(root / "bathroom" / f"sync_depth_{k:05d}.png")
        test_lines.append(f"bathroom/rgb_{k:05d}.jpg bathroom/sync_depth_{k:05d}.png 518.8579")
    (root / "nyu_train.txt").write_text("\n".join(train_lines) + "\n")
    (root / "nyu_test.txt").write_text("\n".join(test_lines) + "\n")
    finish(root, stamp)
    return root


def write_nyu_labeled(folder: str | Path, n_frames: int = 4, test=(2, 4), seed: int = 0) -> tuple[Path, Path]:
    """NYU's labelled release in miniature: ``nyu_depth_v2_labeled.mat`` as MATLAB v7.3 stores it
    (HDF5; ``images`` ``[N, 3, 640, 480]`` uint8 and ``rawDepths`` ``[N, 640, 480]`` metres, both
    transposed; ``sceneTypes`` references to uint16 character arrays) and ``splits.mat``
    (``trainNdxs`` / ``testNdxs``, 1-based column vectors). Returns both paths."""
    import h5py
    from scipy.io import savemat
    folder = Path(folder)
    stamp = f"nyu-labeled {n_frames} {list(test)} {seed}"
    mat, splits = folder / "nyu_depth_v2_labeled.mat", folder / "splits.mat"
    if claim(folder, stamp):
        return mat, splits
    rng = np.random.default_rng(seed)
    frames = [_depth_scene(rng) for _ in range(n_frames)]
    scenes = ["bathroom" if i % 2 else "kitchen" for i in range(n_frames)]
    with h5py.File(mat, "w") as f:
        f["images"] = np.stack([img.T for img, _ in frames])                  # [N, 3, 640, 480]
        depth = np.stack([d.T for _, d in frames])
        depth[:, :8, :8] = 0                                                  # a missing patch
        f["rawDepths"] = depth
        refs = f.create_group("#refs#")
        names = []
        for i, name in enumerate(scenes):
            refs[f"s{i}"] = np.array([ord(c) for c in name], np.uint16)[:, None]
            names.append(refs[f"s{i}"].ref)
        f.create_dataset("sceneTypes", data=np.array([names], dtype=h5py.ref_dtype))
    train = [i for i in range(1, n_frames + 1) if i not in test]
    savemat(str(splits), {"trainNdxs": np.array(train, np.float64)[:, None], "testNdxs": np.array(test, np.float64)[:, None]})
    finish(folder, stamp)
    return mat, splits


def _object_view(rng, tex: np.ndarray, kind: str, h: int, w: int, cy: float, cx: float, r: float):
    """Background texture with the object (texture ``tex`` mapped by scale) centred at (cy, cx)."""
    img = texture(rng, h, w)
    m = shape_mask(kind, h, w, cy, cx, r, r)
    ys, xs = np.nonzero(m)
    u = np.clip(((ys - cy) / r * 0.5 + 0.5) * (tex.shape[0] - 1), 0, tex.shape[0] - 1).astype(int)
    v = np.clip(((xs - cx) / r * 0.5 + 0.5) * (tex.shape[1] - 1), 0, tex.shape[1] - 1).astype(int)
    img[ys, xs] = tex[u, v]
    return (img * 255).astype(np.uint8), m


def write_spair(root: str | Path, n_pairs_per_category: int = 2, categories=("cat", "car"), height: int = 96,
                width: int = 128, seed: int = 0) -> Path:
    """SPair-71k layout (module docstring); returns ``root``. Keypoints are 5 fixed object
    coordinates (centre and four points at half radius); one is invisible in the source image
    of every second pair (``null`` in its image annotation, absent from the pair)."""
    from benchmarks.probes.datasets import SPAIR_CATEGORIES
    root = Path(root)
    stamp = f"spair {n_pairs_per_category} {','.join(categories)} {height} {width} {seed}"
    if claim(root, stamp):
        return root
    rng = np.random.default_rng(seed)
    offsets = np.array([[0, 0], [-0.5, 0], [0.5, 0], [0, -0.5], [0, 0.5]])     # (dy, dx) in radii
    pair_dir = root / "PairAnnotation" / "test"
    pair_dir.mkdir(parents=True, exist_ok=True)
    (root / "Layout" / "large").mkdir(parents=True, exist_ok=True)
    names, n = [], 0
    for cat in categories:
        if cat not in SPAIR_CATEGORIES:
            raise ValueError(f"{cat}: not an SPair-71k category")
        (root / "JPEGImages" / cat).mkdir(parents=True, exist_ok=True)
        (root / "ImageAnnotation" / cat).mkdir(parents=True, exist_ok=True)
        for p in range(n_pairs_per_category):
            tex = texture(rng, 32, 32)
            kind = SHAPES[int(rng.integers(len(SHAPES)))]
            kps, boxes, files = [], [], []
            for side in range(2):
                r = rng.uniform(0.2, 0.3) * min(height, width)
                cy, cx = rng.uniform(r, height - r), rng.uniform(r, width - r)
                img, _ = _object_view(rng, tex, kind, height, width, cy, cx, r)
                name = f"{2008 + side}_{n:06d}.jpg"
                Image.fromarray(img).save(root / "JPEGImages" / cat / name, quality=95)
                pts = [[int(round(cx + dx * r)), int(round(cy + dy * r))] for dy, dx in offsets]
                box = [int(cx - r), int(cy - r), int(np.ceil(cx + r)), int(np.ceil(cy + r))]
                visible = [not (side == 0 and p % 2 == 1 and j == 4) for j in range(len(pts))]
                (root / "ImageAnnotation" / cat / name.replace(".jpg", ".json")).write_text(json.dumps({
                    "filename": name, "src_database": "synthetic", "image_width": width, "image_height": height,
                    "bndbox": box, "category": cat,
                    "kps": {str(j): (pt if v else None) for j, (pt, v) in enumerate(zip(pts, visible))}}))
                kps.append((pts, visible))
                boxes.append(box)
                files.append(name)
            both = [j for j in range(len(offsets)) if kps[0][1][j] and kps[1][1][j]]
            pair = f"{n:06d}-{files[0][:-4]}-{files[1][:-4]}:{cat}"
            (pair_dir / f"{pair}.json").write_text(json.dumps({
                "pair_id": n, "filename": pair, "src_imname": files[0], "trg_imname": files[1], "category": cat,
                "src_imsize": [width, height, 3], "trg_imsize": [width, height, 3],
                "src_bndbox": boxes[0], "trg_bndbox": boxes[1], "kps_ids": [str(j) for j in both],
                "src_kps": [kps[0][0][j] for j in both], "trg_kps": [kps[1][0][j] for j in both],
                "viewpoint_variation": int(p % 3), "scale_variation": 0, "truncation": 0, "occlusion": 0,
                "mirror": 0}))
            names.append(pair)
            n += 1
    (root / "Layout" / "large" / "test.txt").write_text("".join(f"{x}\n" for x in names))
    finish(root, stamp)
    return root


__all__ = ["write_voc", "write_cityscapes", "write_nyu", "write_nyu_labeled", "write_spair", "CITY_IDS"]
