"""A direct decoder for the PNGs DAVIS label maps are stored in, with Pillow as the fallback.

Why: scoring a DAVIS split decodes every annotation and every prediction, and for these files
Pillow's decoding is almost all inflating (zlib) of long runs of equal bytes: 0.7 ms of a 0.72 ms
decode of an 854x480 label map on the 2-core machine of speed/bench_davis.py. zlib-ng inflates
the same streams about 30x faster (the ``zlib-ng`` package; stdlib ``zlib`` when it is absent:
inflating is fully specified, so both give the same bytes).

Only the common layout is decoded here, and only when nothing about the file is unusual:

* 8 bits per pixel, colour type 3 (palette, Pillow's mode ``P``) or 0 (grey, mode ``L``, not
  with a ``tRNS`` chunk), compression and filter method 0, no interlacing;
* every chunk's CRC correct, the IDAT chunks contiguous, the zlib stream complete and exactly
  ``height * (width + 1)`` bytes long;
* every row's filter type 0 (none). libpng and Pillow write palette images unfiltered, so
  DAVIS annotations and the predictions of DINO's script and of this suite all are.

Anything else (other bit depths or colour types, interlacing, filtered rows, a damaged or
truncated file, a header declaring more pixels than Pillow allows) returns ``None`` and the
caller decodes with Pillow, which then reads, or refuses, the file exactly as before. So a
file decoded here gives the array Pillow gives, and a file not decoded here meets the same
checks and error messages as ever (tests/benchmarks/davis/test_png.py holds both to Pillow).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

try:  # about 30x faster on label maps; same output
    from zlib_ng import zlib_ng as _inflate_lib
except ImportError:  # pragma: no cover - zlib-ng is in requirements.txt
    _inflate_lib = zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Pillow's default Image.MAX_IMAGE_PIXELS: above it Pillow warns or refuses (a decompression
#: bomb); such headers go to Pillow so that its check and message apply unchanged
MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)
_CHUNK = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")


def png_size(head: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from the first 33 bytes of a PNG file (signature and an intact IHDR
    chunk), or ``None`` (ask Pillow then)."""
    if len(head) < 33 or not head.startswith(SIGNATURE):
        return None
    length, kind = _CHUNK.unpack_from(head, 8)
    if kind != b"IHDR" or length != 13 or zlib.crc32(head[12:29]) != struct.unpack_from(">I", head, 29)[0]:
        return None
    width, height = struct.unpack_from(">II", head, 16)
    return (height, width) if 0 < width * height <= MAX_PIXELS else None


def decode_label_png(data: bytes) -> tuple[np.ndarray, str] | None:
    """``(label map [H, W] uint8, Pillow mode "P" or "L")`` of a PNG file's bytes, or ``None``
    when the file is not of the layout described in the module docstring (decode it with
    Pillow then)."""
    if not data.startswith(SIGNATURE):
        return None
    pos, end = len(SIGNATURE), len(data)
    header, idat, mode, idat_done, palette = None, [], None, False, False
    while True:
        if pos + 12 > end:
            return None                                   # truncated: no IEND
        length, kind = _CHUNK.unpack_from(data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return None
        body = data[pos + 8:body_end]
        crc = struct.unpack_from(">I", data, body_end)[0]
        if zlib.crc32(kind + body) != crc:
            return None
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = _IHDR.unpack(body)
            width, height, depth, colour, compression, filtering, interlace = header
            if (depth != 8 or colour not in (0, 3) or compression or filtering or interlace
                    or not 0 < width * height <= MAX_PIXELS):
                return None
            mode = "P" if colour == 3 else "L"
        elif kind == b"IDAT":
            if idat_done or (mode == "P" and not palette):
                return None                               # contiguous, after the palette
            idat.append(body)
        elif kind == b"IEND":
            break
        else:
            if idat:
                idat_done = True
            if kind == b"tRNS" and mode == "L":
                return None                               # Pillow's handling decides there
            if kind == b"PLTE":
                if mode == "L":
                    return None
                palette = True
        pos = body_end + 4
    if not idat:
        return None
    width, height = header[0], header[1]
    expected = height * (width + 1)
    inflater = _inflate_lib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)  # bounded: no bomb through here
    except (zlib.error, getattr(_inflate_lib, "error", zlib.error)):
        return None                                       # damaged stream: Pillow reports it
    if len(raw) != expected or not inflater.eof:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():
        return None                                       # filtered rows: Pillow unfilters them
    return np.ascontiguousarray(rows[:, 1:]), mode


__all__ = ["decode_label_png", "png_size", "SIGNATURE", "MAX_PIXELS"]
