"""A small generated UAVDT tree in the exact release layout, for tests and the demo.

Each sequence is a short "video" of textured vehicles (axis-aligned rectangles; car, truck, bus
by size) driving over a static textured ground with a road band, seen from above. One static
ignore region per sequence holds a few parked vehicles that are drawn but not annotated, as in
the release. Everything is fixed by ``seed``. Layout written (see :mod:`benchmarks.uavdt`)::

    ROOT/UAV-benchmark-M/<seq>/img000001.jpg ...
    ROOT/UAV-benchmark-MOTD_v1.0/GT/<seq>_gt_whole.txt, <seq>_gt.txt, <seq>_gt_ignore.txt
    ROOT/M_attr/{train,test}/<seq>_attr.txt            (when ``write_attr``)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from synthetic.folder import claim, finish
from synthetic.images import texture

IMAGE_DIR = "UAV-benchmark-M"
GT_DIR = "UAV-benchmark-MOTD_v1.0/GT"
# (length, breadth) ranges in pixels at an image height of 96; scaled with the height.
VEHICLE_SIZES = {1: ((10, 14), (6, 8)), 2: ((16, 20), (8, 10)), 3: ((20, 26), (8, 10))}
CATEGORY_PROBS = (0.6, 0.2, 0.2)


@dataclasses.dataclass
class SyntheticUAVDT:
    """What was written. ``boxes[seq]``: ``[N, 9]`` int rows of ``_gt_whole.txt``;
    ``ignore[seq]``: ``[M, 9]`` int rows of ``_gt_ignore.txt``; ``sizes[seq]``: (width, height)."""
    root: Path
    split: dict
    sizes: dict
    n_frames: dict
    boxes: dict
    ignore: dict


def _vehicle_patch(rng: np.random.Generator, length: int, breadth: int, horizontal: bool):
    """Textured vehicle ``[h, w, 3]`` float32 with a dark windscreen band near the front."""
    h, w = (breadth, length) if horizontal else (length, breadth)
    body = 0.35 + 0.65 * texture(rng, h, w)
    band = max(1, length // 5)
    if horizontal:
        body[:, length - 2 * band:length - band] *= 0.25
    else:
        body[band:2 * band, :] *= 0.25
    return body


def _overlap_fraction(box, region) -> float:
    """Fraction of ``box`` (x, y, w, h) covered by ``region`` (x, y, w, h)."""
    ix = max(0, min(box[0] + box[2], region[0] + region[2]) - max(box[0], region[0]))
    iy = max(0, min(box[1] + box[3], region[1] + region[3]) - max(box[1], region[1]))
    return ix * iy / float(box[2] * box[3])


def _sequence(rng, width, height, n_frames, n_vehicles):
    """Frames ``[T, H, W, 3]`` uint8, box rows ``[N, 9]`` and ignore rows ``[M, 9]``."""
    scale = height / 96.0
    ground = texture(rng, height, width) * 0.5 + 0.25
    road_y, road_h = int(rng.integers(0, height // 2)), max(8, height // 4)
    ground[road_y:road_y + road_h] = ground[road_y:road_y + road_h] * 0.3 + 0.25
    rw, rh = int(rng.integers(width // 6, width // 4)), int(rng.integers(height // 5, height // 3))
    region = (int(rng.integers(0, width - rw)), int(rng.integers(0, height - rh)), rw, rh)

    def make(cat, horizontal):
        (l0, l1), (b0, b1) = VEHICLE_SIZES[cat]
        length = max(3, int(round(rng.uniform(l0, l1) * scale)))
        breadth = max(2, int(round(rng.uniform(b0, b1) * scale)))
        return _vehicle_patch(rng, length, breadth, horizontal)

    vehicles = []  # (target_id, category, patch, x0, y0, vx, vy)
    for tid in range(1, n_vehicles + 1):
        cat = int(rng.choice([1, 2, 3], p=CATEGORY_PROBS))
        horizontal = bool(rng.integers(2))
        patch = make(cat, horizontal)
        ph, pw = patch.shape[:2]
        speed = float(rng.uniform(1, 4) * scale) * (1 if rng.integers(2) else -1)
        vx, vy = (speed, 0.0) if horizontal else (0.0, speed)
        vehicles.append((tid, cat, patch, rng.uniform(0, width - pw), rng.uniform(0, height - ph),
                         vx, vy))
    parked = []  # inside the ignore region: drawn, never annotated
    for _ in range(2):
        patch = make(1, bool(rng.integers(2)))
        ph, pw = patch.shape[:2]
        if pw < region[2] and ph < region[3]:
            parked.append((patch, region[0] + int(rng.integers(0, region[2] - pw)),
                           region[1] + int(rng.integers(0, region[3] - ph))))

    frames, rows, ignore = [], [], []
    for f in range(1, n_frames + 1):
        img = ground.copy()
        for patch, x, y in parked:
            img[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
        owner = np.zeros((height, width), dtype=np.int64)  # which vehicle is visible per pixel
        placed = []
        for tid, cat, patch, x0, y0, vx, vy in vehicles:
            ph, pw = patch.shape[:2]
            x, y = int(round(x0 + vx * (f - 1))), int(round(y0 + vy * (f - 1)))
            cx0, cy0 = max(x, 0), max(y, 0)
            cx1, cy1 = min(x + pw, width), min(y + ph, height)
            if cx1 <= cx0 or cy1 <= cy0:
                continue  # drove out of the picture
            img[cy0:cy1, cx0:cx1] = patch[cy0 - y:cy1 - y, cx0 - x:cx1 - x]
            owner[cy0:cy1, cx0:cx1] = tid
            box = (cx0, cy0, cx1 - cx0, cy1 - cy0)
            placed.append((tid, cat, box, box[2] * box[3] / float(pw * ph)))
        for tid, cat, box, inside in placed:
            visible = (owner[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] == tid).mean()
            if visible == 0 or _overlap_fraction(box, region) > 0.5:
                continue
            out_of_view = 1 if inside == 1 else (2 if inside >= 0.5 else 3)
            occlusion = 1 if visible == 1 else (2 if visible >= 0.5 else 3)
            rows.append((f, tid, *box, out_of_view, occlusion, cat))
        ignore.append((f, -1, *region, -1, -1, -1))
        frames.append((img * 255).round().clip(0, 255).astype(np.uint8))
    return (np.stack(frames), np.array(rows, dtype=np.int64).reshape(-1, 9),
            np.array(ignore, dtype=np.int64).reshape(-1, 9))


def _write_rows(path: Path, rows: np.ndarray) -> None:
    path.write_text("".join(",".join(str(int(v)) for v in r) + "\n" for r in rows))


def write_uavdt_tree(root: str | Path, train=("M0101", "M0201"), test=("M0203",),
                     n_frames: int = 6, size=(160, 96), sizes: dict | None = None,
                     n_vehicles: int = 6, seed: int = 0, write_attr: bool = True
                     ) -> SyntheticUAVDT:
    """Write a generated UAVDT tree under ``root`` and return its ground truth.

    ``size``: (width, height) in pixels of every sequence unless ``sizes[seq]`` says otherwise.
    ``n_frames``: an int for all sequences or a dict per sequence. With ``write_attr`` the split
    is also written the release's way (``M_attr/train``, ``M_attr/test``).
    """
    root = Path(root)
    sizes = dict(sizes or {})
    split = {"train": list(train), "test": list(test)}
    stamp = (f"uavdt {' '.join(split['train'])} / {' '.join(split['test'])} {n_frames} {size} "
             f"{sorted(sizes.items())} {n_vehicles} {seed} {write_attr}")
    claim(root, stamp)  # a set of the same settings is written again (ground truth from memory)
    gt_dir = root / GT_DIR
    gt_dir.mkdir(parents=True, exist_ok=True)
    out = SyntheticUAVDT(root, split, {}, {}, {}, {})
    for index, seq in enumerate(split["train"] + split["test"]):
        rng = np.random.default_rng([seed, index])
        width, height = sizes.get(seq, size)
        count = n_frames[seq] if isinstance(n_frames, dict) else n_frames
        frames, rows, ignore = _sequence(rng, width, height, count, n_vehicles)
        folder = root / IMAGE_DIR / seq
        folder.mkdir(parents=True, exist_ok=True)
        for f, img in enumerate(frames, 1):
            Image.fromarray(img).save(folder / f"img{f:06d}.jpg", quality=92)
        _write_rows(gt_dir / f"{seq}_gt_whole.txt", rows)
        mot = rows.copy()
        mot[:, 6:] = (1, -1, -1)  # the MOT file: same boxes, attributes replaced by constants
        _write_rows(gt_dir / f"{seq}_gt.txt", mot)
        _write_rows(gt_dir / f"{seq}_gt_ignore.txt", ignore)
        out.sizes[seq], out.n_frames[seq] = (width, height), count
        out.boxes[seq], out.ignore[seq] = rows, ignore
    if write_attr:
        for name, seqs in split.items():
            folder = root / "M_attr" / name
            folder.mkdir(parents=True, exist_ok=True)
            for seq in seqs:
                flags = np.random.default_rng([seed, 7, len(seq)]).integers(0, 2, size=10)
                (folder / f"{seq}_attr.txt").write_text(",".join(map(str, flags)) + "\n")
    finish(root, stamp)
    return out
