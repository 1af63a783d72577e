"""Reading and writing the official DAVIS 2017 layout.

::

    ROOT/JPEGImages/480p/<seq>/00000.jpg ...      frames
    ROOT/Annotations/480p/<seq>/00000.png ...     indexed (palette) PNGs: 0 background,
                                                  1..K object ids, 255 void
    ROOT/ImageSets/2017/<split>.txt               one sequence name per line
    OUT/<seq>/00000.png ...                       predictions, same format as the annotations

Every problem with the files raises :class:`DavisError` with a one-line message that names the
file (or the split line) at fault.
"""
from __future__ import annotations

from core.errors import FLSLError
from core.files import atomic_path, check_output_path
from core.images import TruncatedJPEG, check_jpeg_complete as jpeg_complete

import dataclasses
import io
import json
import logging
from pathlib import Path

import numpy as np

from .png import decode_label_png, png_size

IMAGES = Path("JPEGImages/480p")
ANNOTATIONS = Path("Annotations/480p")
IMAGESETS = Path("ImageSets/2017")
VOID = 255
log = logging.getLogger("flsl")


class DavisError(FLSLError, ValueError):
    """Bad DAVIS input; the message names the file."""


def _pillow():
    """Pillow's ``Image`` module, imported on first use: scoring decodes its label maps without
    it (:mod:`benchmarks.davis.png`), so a process that only scores skips its 10 ms import."""
    from PIL import Image
    return Image


def unreadable():
    """Pillow's errors for a file it cannot decode (for ``except``); DecompressionBombError (a
    header declaring a huge image) is not an OSError."""
    return (OSError, SyntaxError, ValueError, _pillow().DecompressionBombError)


# ------------------------------------------------------------------------------------ palette
def default_palette() -> np.ndarray:
    """The 256-colour palette DAVIS annotations use (the PASCAL VOC bit-interleaved one).

    Returns ``[768]`` uint8 (R, G, B per index): index 1 is dark red, 2 dark green, ...
    """
    idx = np.arange(256)
    pal = np.zeros((256, 3), dtype=np.int64)
    for bit in range(8):  # bit ``bit`` of channel c comes from bit 3*(bit)+c of the index
        for c in range(3):
            pal[:, c] |= ((idx >> (3 * bit + c)) & 1) << (7 - bit)
    return pal.astype(np.uint8).reshape(-1)


def read_palette(path: str | Path) -> np.ndarray:
    """Palette of an indexed PNG as ``[768]`` uint8 (padded with the default palette)."""
    try:
        with _pillow().open(path) as im:
            pal = im.getpalette() or []
    except unreadable() as err:
        raise DavisError(f"{path}: unreadable annotation ({err})") from None
    out = default_palette()
    pal = np.asarray(pal[:768], dtype=np.uint8)
    out[:pal.size] = pal
    return out


def write_index_png(path: str | Path, mask: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write ``mask`` ``[H, W]`` (ids 0..255) as an indexed PNG with ``palette`` ``[768]``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DavisError(f"{path}: a label map must be 2-D, got shape {mask.shape}")
    im = _pillow().fromarray(np.ascontiguousarray(mask, dtype=np.uint8))  # "L"; putpalette makes it "P"
    im.putpalette((default_palette() if palette is None else palette).tolist())
    with atomic_path(path) as tmp:  # a full disk leaves the old file or none, never a 0-byte PNG
        im.save(tmp, format="PNG")


def read_index_png(path: str | Path, what: str = "annotation", allow_grey: bool = False) -> np.ndarray:
    """Label map ``[H, W]`` uint8 of an indexed PNG.

    ``allow_grey`` also accepts single-channel 8-bit PNGs (mode ``L``) holding the ids, which
    the official tool reads the same way; RGB and other modes are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DavisError(f"{path}: {what} not found")
    try:
        data = path.read_bytes()
        fast = decode_label_png(data)  # the common layout, decoded directly; else Pillow
        if fast is not None:
            labels, mode = fast
            if mode == "P" or (allow_grey and mode == "L"):
                return labels
        else:
            with _pillow().open(io.BytesIO(data)) as im:
                mode = im.mode
                if mode == "P" or (allow_grey and mode == "L"):
                    return np.array(im, dtype=np.uint8)
    except unreadable() as err:
        raise DavisError(f"{path}: unreadable {what} ({err})") from None
    allowed = "P (palette)" + (" or L (grey ids)" if allow_grey else "")
    raise DavisError(f"{path}: {what} is not an indexed palette PNG (mode {mode}, expected "
                     f"{allowed})")


def image_size(path: str | Path, what: str = "frame") -> tuple[int, int]:
    """``(height, width)`` from the file header (no decoding)."""
    if str(path).lower().endswith(".png"):
        try:
            with open(path, "rb") as f:
                size = png_size(f.read(33))
            if size is not None:
                return size
        except OSError:
            pass  # Pillow below reports it
    try:
        with _pillow().open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DavisError(f"{path}: {what} not found") from None
    except unreadable() as err:
        raise DavisError(f"{path}: unreadable {what} ({err})") from None
    return h, w


def check_jpeg_complete(path: str | Path) -> None:
    """Refuse a JPEG frame whose end-of-image marker is missing (a truncated download or copy):
    decoders fill the missing part with grey, and it would be scored as if it were the real
    frame (:func:`core.images.check_jpeg_complete`; a file that is not a JPEG stream is left to
    the decoder's own error)."""
    path = Path(path)
    try:
        jpeg_complete(path)
    except TruncatedJPEG as err:
        raise DavisError(f"{path}: truncated JPEG frame ({err}); re-extract or re-download it") from None


def check_output_folder(out: str | Path, davis_root: str | Path, inputs=(), option: str = "--out",
                        need_bytes: int = 0) -> Path:
    """Refuse, before any work, an output folder inside the DAVIS folder read (its frames,
    annotations and split lists: the README promises an output is never an input) or onto an
    input file, one that is a file or lies under one, one that cannot be written, or one on a
    disk without ``need_bytes`` free (:func:`core.files.check_output_path`)."""
    root = Path(davis_root)
    return check_output_path(out, [root / IMAGES.parts[0], root / ANNOTATIONS.parts[0],
                                   root / IMAGESETS.parts[0], *inputs, root], option, folder=True,
                             need_bytes=need_bytes)


#: ``OUT/predictions.json``: what produced the predictions of an output folder (checkpoint and
#: its SHA-256, protocol settings) and which sequences are complete
MANIFEST = "predictions.json"


def read_manifest(out_dir: str | Path) -> dict | None:
    """The record of ``out_dir`` (None when there is none)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DavisError(f"{path}: unreadable record of the predictions ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("producer"), dict) or \
            not isinstance(doc.get("sequences"), list):
        raise DavisError(f"{path}: not a record of predictions (needs 'producer' and 'sequences')")
    return doc



# ------------------------------------------------------------------------------------ layout
def read_split(root: str | Path, split: str = "val") -> list[str]:
    """Sequence names listed in ``ROOT/ImageSets/2017/<split>.txt`` (order kept, blanks skipped)."""
    if not split or "/" in split or "\\" in split or split.startswith("."):
        raise DavisError(f"{split!r} (--split): not a split name (a file name under {Path(root) / IMAGESETS}, "
                         "without '/' or a leading '.')")
    path = Path(root) / IMAGESETS / f"{split}.txt"
    if not path.is_file():
        raise DavisError(f"{path}: split file not found (is --data-root the DAVIS 2017 folder?)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DavisError(f"{path}: split file is not UTF-8 text ({err.reason} at byte {err.start})") from None
    names = []
    for line in text.splitlines():
        name = line.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise DavisError(f"{path}: split file lists no sequence")
    return names


@dataclasses.dataclass
class Sequence:
    """Files of one sequence. ``frames`` and ``annotations`` are sorted by frame name;
    ``names`` are the frame stems (``00000`` ...); ``size`` is ``(height, width)``."""

    name: str
    frames: list[Path]
    annotations: list[Path]
    size: tuple[int, int]

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.frames]


def _listing(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix and p.is_file())


def _check_contiguous(paths: list[Path], folder: Path, suffix: str, what: str) -> None:
    stems = [p.stem for p in paths]
    if not all(s.isdigit() for s in stems):
        return
    nums = sorted(int(s) for s in stems)
    width = len(stems[0])
    missing = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums))
    if missing:
        raise DavisError(f"{folder / (str(missing[0]).zfill(width) + suffix)}: {what} missing "
                         f"(the sequence has {stems[0]}{suffix} .. {stems[-1]}{suffix})")


def sequence_files(root: str | Path, seq: str, need_frames: bool = True,
                   split_file: str = "the split") -> Sequence:
    """List and cross-check the files of one sequence.

    Checks: the folders exist and are not empty; frame numbers have no gap; every annotation
    has its frame; the first annotation is the first frame's; every annotation has the size of
    its frame and every frame the size of the first one. With ``need_frames=False`` (scoring
    only) the frames folder is not looked at (the official evaluator opens no frame either),
    only the annotations are checked, and the frames list is named after the annotations.
    """
    root = Path(root)
    fdir, adir = root / IMAGES / seq, root / ANNOTATIONS / seq
    if not adir.is_dir():
        raise DavisError(f"{adir}: annotation folder of sequence {seq!r} (listed in {split_file}) "
                         "not found")
    anns = _listing(adir, ".png")
    if not anns:
        raise DavisError(f"{adir}: no annotation PNG for sequence {seq!r}")
    if not need_frames or not fdir.is_dir():
        if need_frames:
            raise DavisError(f"{fdir}: frame folder of sequence {seq!r} (listed in {split_file}) "
                             "not found")
        # scoring reads no frame (as the official evaluator): the annotations' own checks only
        _check_contiguous(anns, adir, ".png", "annotation")
        return Sequence(seq, [fdir / (p.stem + ".jpg") for p in anns], anns,
                        image_size(anns[0], "annotation"))
    frames = _listing(fdir, ".jpg")
    if not frames:
        raise DavisError(f"{fdir}: no JPEG frame for sequence {seq!r}")
    _check_contiguous(frames, fdir, ".jpg", "frame")
    by_stem = {p.stem: p for p in frames}
    for a in anns:
        if a.stem not in by_stem:
            raise DavisError(f"{fdir / (a.stem + '.jpg')}: frame missing (annotation {a} exists)")
    if anns[0].stem != frames[0].stem:
        raise DavisError(f"{adir / (frames[0].stem + '.png')}: annotation of the first frame "
                         f"missing (first annotation is {anns[0].name})")
    size = image_size(frames[0], "frame")
    for f in frames:
        check_jpeg_complete(f)
    for f in frames[1:]:
        s = image_size(f, "frame")
        if s != size:
            raise DavisError(f"{f}: frame is {s[1]}x{s[0]} (WxH), the first frame "
                             f"{frames[0].name} is {size[1]}x{size[0]}")
    for a in anns:
        s = image_size(a, "annotation")
        if s != size:
            raise DavisError(f"{a}: annotation is {s[1]}x{s[0]} (WxH) but its frame "
                             f"{by_stem[a.stem].name} is {size[1]}x{size[0]}")
    return Sequence(seq, frames, anns, size)


def read_annotations(seq: Sequence) -> np.ndarray:
    """All annotations of a sequence as ``[T, H, W]`` uint8 (ids, 255 void)."""
    out = np.empty((len(seq.annotations), *seq.size), dtype=np.uint8)
    for i, p in enumerate(seq.annotations):
        m = read_index_png(p, "annotation")
        if m.shape != seq.size:
            raise DavisError(f"{p}: annotation is {m.shape[1]}x{m.shape[0]} (WxH), expected "
                             f"{seq.size[1]}x{seq.size[0]}")
        out[i] = m
    return out


def _ids_present(labels: np.ndarray) -> np.ndarray:
    """The ids 1..254 occurring in a uint8 label map, ascending (counted, not sorted; only the
    non-background pixels, usually a small part, are widened to the integers bincount takes)."""
    labels = np.asarray(labels, dtype=np.uint8)
    counts = np.bincount(labels[labels != 0], minlength=256)
    return np.flatnonzero(counts[1:VOID]) + 1


def n_objects(first_annotation: np.ndarray) -> int:
    """Objects of a sequence: ids 1..(largest id of the first annotation, void excluded)."""
    ids = _ids_present(first_annotation)
    return int(ids[-1]) if ids.size else 0


_WARNED: set = set()  # first annotations already warned about (propagation, then scoring)


def check_first_annotation(first_annotation: np.ndarray, path: str | Path) -> int:
    """The object count of a sequence, after checking its first annotation (``[H, W]`` ids).

    No object at all is an error (nothing to propagate or score). Ids missing below the largest
    one are legal (the official evaluation counts ids 1..max) but each missing id becomes an
    object with an empty mask that scores J = F = 1 when predicted empty, so a stray pixel of id
    200 turns two objects into 200 and lifts J&F towards 1: that is warned about, naming the ids.
    """
    present = _ids_present(first_annotation).tolist()
    k = present[-1] if present else 0
    if k == 0:
        raise DavisError(f"{path}: the first-frame annotation holds no object (only background "
                         "0 and void 255); there is nothing to propagate or score")
    missing = k - len(present)
    if missing and str(path) not in _WARNED:
        _WARNED.add(str(path))
        shown = ", ".join(str(i) for i in sorted(present)[:8]) + (" ..." if len(present) > 8 else "")
        log.warning("warning: %s: first-frame ids %s: %d of the ids 1..%d are absent, so %d objects "
                    "with empty masks are scored (each J = F = 1 when predicted empty), as the "
                    "official evaluation does; check for stray pixels if that is not intended",
                    path, shown, missing, k, missing)
    return k


__all__ = ["DavisError", "IMAGES", "ANNOTATIONS", "IMAGESETS", "VOID", "default_palette",
           "read_palette", "write_index_png", "read_index_png", "image_size", "read_split",
           "Sequence", "sequence_files", "read_annotations", "n_objects", "check_first_annotation",
           "check_jpeg_complete", "check_output_folder", "unreadable", "MANIFEST", "read_manifest"]
