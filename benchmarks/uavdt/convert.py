"""UAVDT (Du et al., ECCV 2018) detection ground truth: parsing, validation and COCO conversion.

Release layout read here (the DET/MOT part)::

    ROOT/UAV-benchmark-M/<seq>/img000001.jpg ...
    ROOT/UAV-benchmark-MOTD_v1.0/GT/<seq>_gt_whole.txt     boxes with attributes
    ROOT/UAV-benchmark-MOTD_v1.0/GT/<seq>_gt_ignore.txt    regions to ignore (optional file)
    ROOT/M_attr/{train,test}/<seq>_attr.txt                 the release's split (optional)

Every ground-truth line has 9 comma-separated numbers: ``frame_index, target_id, bbox_left,
bbox_top, bbox_width, bbox_height, out_of_view, occlusion, object_category`` (pixels; frame
indices start at 1 and match ``img%06d.jpg``). Categories: car=1, truck=2, bus=3. In the ignore
file the last three columns are constants and are not interpreted.

The COCO output has one image per kept frame, boxes ``[x, y, w, h]`` in pixels clipped to the
image, and each ignore region written once per category as an ``iscrowd=1`` annotation with its
area and a box polygon, so that COCO evaluation ignores detections inside it instead of counting
them as false positives.
"""
from __future__ import annotations

from core.errors import FLSLError
from core.images import TruncatedJPEG, check_jpeg_complete

import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

IMAGE_DIR = "UAV-benchmark-M"
GT_DIR = "UAV-benchmark-MOTD_v1.0/GT"
ATTR_DIRS = ("M_attr", "UAV-benchmark-MOTD_v1.0/M_attr")
CATEGORIES = {1: "car", 2: "truck", 3: "bus"}
N_COLUMNS = 9
DEFAULT_SPLIT = Path(__file__).resolve().parent / "split.json"
SPLITS = ("train", "test")
_FRAME_RE = re.compile(r"^img(\d+)\.jpg$")
log = logging.getLogger("flsl")

# Column indices of a ground-truth line.
FRAME, TARGET, LEFT, TOP, WIDTH, HEIGHT, OUT_OF_VIEW, OCCLUSION, CATEGORY = range(N_COLUMNS)


class UAVDTError(FLSLError, ValueError):
    """Unusable UAVDT input; the one-line message names the file (and line, where there is one)."""


# ------------------------------------------------------------------------------------ parsing
@dataclasses.dataclass
class SequenceAnnotations:
    """Validated ground truth of one sequence.

    ``frames``: sorted frame indices of the sequence's images ``[F]``.
    ``boxes``: ``[N, 9]`` float64 rows of ``_gt_whole.txt`` (columns as :data:`FRAME` ...).
    ``ignore``: ``[M, 9]`` float64 rows of ``_gt_ignore.txt`` (empty if the file is absent).
    """
    name: str
    frames: np.ndarray
    boxes: np.ndarray
    ignore: np.ndarray


def sequence_frames(root: str | os.PathLike, seq: str) -> np.ndarray:
    """Sorted frame indices ``[F]`` (int64) of the ``img%06d.jpg`` files of a sequence."""
    folder = Path(root) / IMAGE_DIR / seq
    if not folder.is_dir():
        raise UAVDTError(f"{folder}: image folder of sequence {seq} not found")
    frames = [int(m.group(1)) for m in map(_FRAME_RE.match, os.listdir(folder)) if m]
    if not frames:
        raise UAVDTError(f"{folder}: no img<NNNNNN>.jpg frames in sequence {seq}")
    return np.array(sorted(frames), dtype=np.int64)


def _numbers_ok(line: str) -> bool:
    """Whether numpy's parser reads ``line`` as finite numbers (the slow, per-line check)."""
    try:
        return bool(np.isfinite(np.loadtxt([line], delimiter=",", comments=None,
                                           dtype=np.float64)).all())
    except ValueError:
        return False


def _bad_field(line: str) -> str:
    """Which field of an unreadable line is the problem, in words."""
    for col, value in enumerate(line.split(",")):
        try:
            ok = np.isfinite(float(value)) and "_" not in value
        except ValueError:
            ok = False
        if not ok:
            return f"column {col + 1} is not a finite number ({value.strip()!r})"
    return "not a line of finite numbers"


def _line_error(path: Path, lineno: int, what: str) -> UAVDTError:
    return UAVDTError(f"{path}:{lineno}: {what}")


def parse_gt_file(path: str | os.PathLike, frames: np.ndarray, check_category: bool) -> np.ndarray:
    """Read and validate a 9-column UAVDT ground-truth file; returns ``[N, 9]`` float64.

    ``frames``: the frame indices that exist in the sequence; every line must refer to one.
    ``check_category``: require ``object_category`` in :data:`CATEGORIES` (boxes, not ignore
    regions). Blank lines are skipped. The first invalid line raises :class:`UAVDTError`
    naming the file and its 1-based line number.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UAVDTError(f"{path}: cannot be read ({err})") from None
    lines = text.splitlines()
    nonblank = np.fromiter((bool(line.strip()) for line in lines), dtype=bool, count=len(lines))
    if not nonblank.all():
        lines = [line for line, keep in zip(lines, nonblank) if keep]
    linenos = np.flatnonzero(nonblank) + 1  # 1-based line number of each kept line
    if not lines:
        return np.zeros((0, N_COLUMNS), dtype=np.float64)
    counts = np.fromiter((line.count(",") for line in lines), dtype=np.int64,
                         count=len(lines)) + 1
    bad = np.flatnonzero(counts != N_COLUMNS)
    if bad.size:
        k = bad[0]
        raise _line_error(path, linenos[k], f"expected {N_COLUMNS} comma-separated columns, "
                          f"found {counts[k]}")
    try:  # numpy's C parser; the slow loop below runs only to name a bad line
        rows = np.loadtxt(lines, delimiter=",", comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        rows = None
    if rows is None or not np.isfinite(rows).all():
        for k, line in enumerate(lines):
            if not _numbers_ok(line):
                raise _line_error(path, linenos[k], f"{_bad_field(line)}: {line.strip()}")
        raise UAVDTError(f"{path}: cannot be parsed as comma-separated numbers")
    checks = [
        (rows[:, FRAME] != np.round(rows[:, FRAME]), "frame index is not an integer"),
        ((rows[:, WIDTH] <= 0) | (rows[:, HEIGHT] <= 0), "box width and height must be > 0"),
        (~np.isin(rows[:, FRAME], frames),
         f"frame index not among the sequence's {len(frames)} images "
         f"(frames {frames[0]}..{frames[-1]})"),
    ]
    if check_category:
        checks.append((~np.isin(rows[:, CATEGORY], list(CATEGORIES)),
                       f"unknown object_category (expected one of {sorted(CATEGORIES)})"))
    failed = np.stack([c for c, _ in checks])  # [n_checks, N]
    bad_lines = np.flatnonzero(failed.any(axis=0))
    if bad_lines.size:  # report the first bad line, with the first check it fails
        k = bad_lines[0]
        what = checks[int(np.argmax(failed[:, k]))][1]
        values = ",".join(f.strip() for f in lines[k].split(","))
        raise _line_error(path, linenos[k], f"{what}: {values}")
    return _without_duplicates(path, rows, linenos, check_category)


def _without_duplicates(path: Path, rows: np.ndarray, linenos: np.ndarray, boxes: bool) -> np.ndarray:
    """``rows`` with exact copies of a line dropped, with a warning: a copied line says nothing new,
    and kept it would add a second ground-truth box no detection can match (a lower AP for
    every detector). For boxes (not ignore regions), one target twice in one frame with
    different values is an error: which of the two boxes is right cannot be told."""
    _, first = np.unique(rows, axis=0, return_index=True)
    if len(first) < len(rows):
        keep = np.sort(first)
        later = np.setdiff1d(np.arange(len(rows)), keep)
        k = int(later[0])
        same = int(next(i for i in keep if np.array_equal(rows[i], rows[k])))
        log.warning("warning: %s:%d: %d duplicated line(s) dropped, each box counted once (the first is "
                    "line %d repeated: %s)", path, linenos[k], len(later), linenos[same],
                    ",".join(_number_text(v) for v in rows[k]))
        rows, linenos = rows[keep], linenos[keep]
    if boxes and len(rows):
        _, first = np.unique(rows[:, [FRAME, TARGET]], axis=0, return_index=True)
        if len(first) < len(rows):
            k = int(np.setdiff1d(np.arange(len(rows)), first)[0])
            same = int(next(i for i in range(k) if rows[i, FRAME] == rows[k, FRAME]
                            and rows[i, TARGET] == rows[k, TARGET]))
            raise _line_error(path, linenos[k], f"target {_number_text(rows[k, TARGET])} appears again in "
                              f"frame {_number_text(rows[k, FRAME])} with another box (line {linenos[same]}); "
                              "one box per target and frame")
    return rows


def _number_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def load_sequence(root: str | os.PathLike, seq: str) -> SequenceAnnotations:
    """Frames and validated ground truth (boxes and ignore regions) of one sequence."""
    root = Path(root)
    frames = sequence_frames(root, seq)
    whole = root / GT_DIR / f"{seq}_gt_whole.txt"
    if not whole.is_file():
        raise UAVDTError(f"{whole}: ground truth of sequence {seq} not found")
    boxes = parse_gt_file(whole, frames, check_category=True)
    if not len(boxes):
        # every UAVDT sequence shows vehicles: an empty file is a failed copy, and converted it
        # would make every detection in the sequence a false positive
        raise UAVDTError(f"{whole}: holds no box; every sequence of the release has boxes, so the file "
                         "was cut or not copied: copy it again from the release")
    ignore_file = root / GT_DIR / f"{seq}_gt_ignore.txt"
    ignore = (parse_gt_file(ignore_file, frames, check_category=False) if ignore_file.is_file()
              else np.zeros((0, N_COLUMNS), dtype=np.float64))
    return SequenceAnnotations(seq, frames, boxes, ignore)


def check_output_folder(out: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Refuse, before any work, an output folder that is one the conversion reads (frames, ground
    truth, the release's split folders), lies inside one, or is the UAVDT folder itself, besides
    what :func:`core.files.check_output_path` refuses. A new folder under the root, such as the
    ``annotations`` the UAVDT configs read, is fine: the conversion never reads it."""
    from core.files import check_output_path
    root = Path(root)
    read = [root / IMAGE_DIR, root / GT_DIR.split("/")[0], *(root / d.split("/")[0] for d in ATTR_DIRS)]
    out = check_output_path(out, read, "--out", folder=True)
    if os.path.realpath(out) == os.path.realpath(root):
        raise UAVDTError(f"{out} (--out): is the UAVDT folder itself; give the COCO files a folder of their own "
                         f"(the configs read {root / 'annotations'})")
    return out


# -------------------------------------------------------------------------------------- split
def _check_split(split, source: str) -> dict[str, list[str]]:
    if not isinstance(split, dict):
        raise UAVDTError(f"{source}: expected a JSON object with keys 'train' and 'test'")
    out = {}
    for key in SPLITS:
        names = split.get(key)
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise UAVDTError(f"{source}: key {key!r} must be a list of sequence names")
        if len(set(names)) != len(names):
            raise UAVDTError(f"{source}: key {key!r} lists a sequence twice")
        out[key] = list(names)
    both = sorted(set(out["train"]) & set(out["test"]))
    if both:
        raise UAVDTError(f"{source}: sequences in both train and test: {' '.join(both)}")
    return out


def load_split(path: str | os.PathLike = DEFAULT_SPLIT) -> dict[str, list[str]]:
    """Read a split file ``{"train": [...], "test": [...]}`` (other keys, e.g. a note, ignored)."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
    except OSError as err:
        raise UAVDTError(f"{path}: cannot be read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise UAVDTError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return _check_split(split, str(path))


def release_split(root: str | os.PathLike) -> tuple[dict[str, list[str]], str] | None:
    """The split defined by the release's ``M_attr/train`` and ``M_attr/test`` folders, if present.

    Returns ``(split, folder)`` or ``None``. Sequence names are the file-name prefixes before
    the first ``_`` (``M0101_attr.txt`` -> ``M0101``).
    """
    for rel in ATTR_DIRS:
        folder = Path(root) / rel
        if all((folder / s).is_dir() for s in SPLITS):
            split = {s: sorted({f.split("_")[0] for f in os.listdir(folder / s)
                                if f.endswith(".txt")}) for s in SPLITS}
            return _check_split(split, str(folder)), str(folder)
    return None


def resolve_split(root: str | os.PathLike, split_file: str | os.PathLike | None = None
                  ) -> tuple[dict[str, list[str]], str]:
    """The split to use and where it came from: an explicit file, else the release's
    ``M_attr`` folders, else the repository's default :data:`DEFAULT_SPLIT`."""
    if split_file is not None:
        return load_split(split_file), str(split_file)
    found = release_split(root)
    if found is not None:
        return found
    return load_split(DEFAULT_SPLIT), str(DEFAULT_SPLIT)


# --------------------------------------------------------------------------------- conversion
@dataclasses.dataclass
class Summary:
    """Counts of one converted split."""
    sequences: int = 0
    frames: int = 0
    boxes: dict = dataclasses.field(default_factory=lambda: {n: 0 for n in CATEGORIES.values()})
    ignore_regions: int = 0   # distinct (frame, region) lines kept; each is written 3 times
    clipped_boxes: int = 0    # boxes partly outside the image, clipped to it
    dropped_boxes: int = 0    # boxes entirely outside the image, not written

    def lines(self, name: str) -> list[str]:
        per_class = ", ".join(f"{k} {v}" for k, v in self.boxes.items())
        return [f"{name}: {self.sequences} sequences, {self.frames} frames, "
                f"{sum(self.boxes.values())} boxes ({per_class}), "
                f"{self.ignore_regions} ignore regions",
                f"{name}: {self.clipped_boxes} boxes clipped to the image, "
                f"{self.dropped_boxes} boxes outside the image dropped"]


def _clip_xywh(xywh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip boxes ``[K, 4]`` (x, y, w, h pixels) to the image; empty boxes get w or h <= 0."""
    x1 = np.clip(xywh[:, 0], 0, width)
    y1 = np.clip(xywh[:, 1], 0, height)
    x2 = np.clip(xywh[:, 0] + xywh[:, 2], 0, width)
    y2 = np.clip(xywh[:, 1] + xywh[:, 3], 0, height)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


def _number(v: float):
    """JSON-friendly number: an int when integral (UAVDT boxes are integer pixels)."""
    return int(v) if float(v).is_integer() else float(v)


def _group_rows(rows: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Split rows ``[N, 9]`` by frame: one ``[n_f, 9]`` array per entry of ``frames``."""
    order = np.argsort(rows[:, FRAME], kind="stable")
    rows = rows[order]
    start = np.searchsorted(rows[:, FRAME], frames, "left")
    end = np.searchsorted(rows[:, FRAME], frames, "right")
    return [rows[a:b] for a, b in zip(start, end)]


def split_step(split: str, every: int) -> int:
    """Frame step used for ``split``: ``every`` thins only the training split; the test split is
    always converted complete (the benchmark scores every test frame)."""
    if every < 1:
        raise UAVDTError(f"--every must be >= 1, got {every}")
    return int(every) if split == "train" else 1


def select_frames(frames: np.ndarray, every: int) -> np.ndarray:
    """Every ``every``-th frame of a sequence, starting with its first: ``frames[::every]``."""
    if every < 1:
        raise UAVDTError(f"--every must be >= 1, got {every}")
    return frames[::every]


def convert(root: str | os.PathLike, sequences: Sequence[str], every: int = 1,
            progress: Callable[[Iterable, int, str], Iterable] | None = None
            ) -> tuple[dict, Summary]:
    """Convert sequences to one COCO detection dict; returns ``(coco, summary)``.

    All sequences are parsed and validated before any frame is converted. Image ids and
    annotation ids count from 1 in sequence order then frame order; ``file_name`` is relative
    to ``root``. Image sizes are read from the JPEG headers; a JPEG cut short (no end-of-image
    marker) is refused. ``progress(iterable, total, desc)`` may wrap the frame loop (e.g. with
    tqdm).
    """
    root = Path(root)
    every = int(every)
    seqs = [load_sequence(root, s) for s in sequences]
    work = []
    for seq in seqs:
        kept = select_frames(seq.frames, every)
        work.append((seq, kept, _group_rows(seq.boxes, kept), _group_rows(seq.ignore, kept)))
    total = sum(len(w[1]) for w in work)
    summary = Summary(sequences=len(seqs))
    images, annotations = [], []

    def frames_iter():
        for seq, kept, boxes, ignore in work:
            for i, frame in enumerate(kept):
                yield seq.name, int(frame), boxes[i], ignore[i]

    it = frames_iter()
    if progress is not None:
        it = progress(it, total, "frames")
    for seq_name, frame, boxes, ignore in it:
        file_name = f"{IMAGE_DIR}/{seq_name}/img{frame:06d}.jpg"
        try:
            with Image.open(root / file_name) as im:
                width, height = im.size
            check_jpeg_complete(root / file_name)
        except TruncatedJPEG as err:
            raise UAVDTError(f"{root / file_name}: truncated JPEG frame ({err}); re-extract or "
                             "re-download it") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            # DecompressionBombError (a header declaring a huge image) is not an OSError
            raise UAVDTError(f"{root / file_name}: cannot read the image ({err})") from None
        image_id = len(images) + 1
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height,
                           sequence=seq_name, frame=frame))
        summary.frames += 1
        clipped = _clip_xywh(boxes[:, LEFT:HEIGHT + 1], width, height)
        inside = (clipped[:, 2] > 0) & (clipped[:, 3] > 0)
        changed = np.any(clipped != boxes[:, LEFT:HEIGHT + 1], axis=1)
        summary.dropped_boxes += int((~inside).sum())
        summary.clipped_boxes += int((changed & inside).sum())
        for row, box in zip(boxes[inside], clipped[inside]):
            cat = int(row[CATEGORY])
            summary.boxes[CATEGORIES[cat]] += 1
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=cat,
                bbox=[_number(v) for v in box], area=_number(box[2] * box[3]), iscrowd=0,
                target_id=int(row[TARGET]), out_of_view=int(row[OUT_OF_VIEW]),
                occlusion=int(row[OCCLUSION])))
        regions = _clip_xywh(ignore[:, LEFT:HEIGHT + 1], width, height)
        regions = regions[(regions[:, 2] > 0) & (regions[:, 3] > 0)]
        summary.ignore_regions += len(regions)
        for x, y, w, h in regions:
            box = [_number(v) for v in (x, y, w, h)]
            polygon = [_number(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h)]
            for cat in CATEGORIES:
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=cat, bbox=box,
                    area=_number(w * h), iscrowd=1, segmentation=[polygon]))
    coco = dict(
        info=dict(description="UAVDT (UAV-benchmark-M) converted by flsl-bench tools/uavdt2coco.py",
                  sequences=list(sequences), every=every),
        images=images, annotations=annotations,
        categories=[dict(id=k, name=v, supercategory="vehicle") for k, v in CATEGORIES.items()])
    return coco, summary


