"""Checks of image files that need no decoder.

A JPEG cut short (a half-finished download or copy) still has a valid header, so a header-only
check passes it, and decoders fill the missing part with grey and carry on: the image would be
trained on or scored as if it were the real one. :func:`check_jpeg_complete` refuses such a file,
usually for one small read at its end. Each benchmark turns :class:`TruncatedJPEG` into its own
error type, naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path

JPEG_START = b"\xff\xd8"   # start-of-image marker: the first two bytes of every JPEG stream
JPEG_END = b"\xff\xd9"     # end-of-image marker
TAIL_BYTES = 4096          # how far from the end the end-of-image marker is looked for


class TruncatedJPEG(ValueError):
    """A JPEG stream without its end-of-image marker.

    ``path``: the file; ``searched``: how many bytes at its end were looked at; ``size``: its
    size in bytes. The message is the detail only (``no end-of-image marker in its last ...``):
    the caller names the file and says what the file was to it.
    """

    def __init__(self, path: str | os.PathLike, searched: int, size: int):
        self.path, self.searched, self.size = Path(path), searched, size
        super().__init__(f"no end-of-image marker in its last {searched} bytes of {size}")


def check_jpeg_complete(path: str | os.PathLike) -> None:
    """Raise :class:`TruncatedJPEG` if ``path`` is a JPEG stream that ends before its image does.

    Only files starting with the JPEG start-of-image marker ``FF D8`` are checked, whatever their
    name; anything else (a PNG, a file that is no image) returns at once and is left to the
    caller's header check. ``OSError`` (a file that cannot be opened) is the caller's to report.

    First the cheap test, one read at the end: the end-of-image marker ``FF D9`` within the last
    :data:`TAIL_BYTES` bytes (past any padding some writers append). The marker cannot occur
    inside entropy-coded data (a literal ``FF`` there is always followed by ``00``). A file that
    fails it is not refused on that alone, since some complete files carry more than that after
    their image (camera trailers, appended data): it is read whole and its marker segments are
    walked (:func:`jpeg_image_ends`); only a stream that ends before its end-of-image marker is
    refused.
    """
    with open(path, "rb") as f:
        if f.read(2) != JPEG_START:
            return
        f.seek(0, os.SEEK_END)
        size = f.tell()
        start = max(2, size - TAIL_BYTES)
        f.seek(start)
        tail = f.read()
        # the marker must lie past the header segments: an EXIF thumbnail there has its own
        end = tail.rfind(JPEG_END)
        if end >= 0 and start + end >= _first_scan(f, size):
            return
        f.seek(0)
        data = f.read()
    if not jpeg_image_ends(data):
        raise TruncatedJPEG(path, len(tail), size)


def _first_scan(f, size: int) -> int:
    """Offset of the first start-of-scan marker, found by stepping over the header segments by
    their length fields (a few small reads); ``size`` when the header cannot be followed so."""
    pos = 2
    while pos + 4 <= size:
        f.seek(pos)
        head = f.read(4)
        if head[0] != 0xFF or head[1] in _NO_LENGTH or head[1] in (0x00, 0xFF, 0xD9):
            return size                        # not a plain segment here: let the walk decide
        if head[1] == 0xDA:
            return pos
        pos += 2 + int.from_bytes(head[2:4], "big")
    return size


#: markers without a length field: RST0-RST7, TEM (SOI and EOI are handled apart)
_NO_LENGTH = frozenset(range(0xD0, 0xD8)) | {0x01}


def jpeg_image_ends(data: bytes) -> bool:
    """Whether the JPEG stream ``data`` reaches the end-of-image marker of its main image.

    Walks the marker segments from the start as a decoder does: a segment's length field skips
    its body (so an EXIF thumbnail inside APP1, a JPEG with its own end marker, is passed over
    whole), the entropy-coded data after each start-of-scan runs to the next ``FF`` not
    followed by ``00`` or a restart marker, and bytes between segments that are not a marker
    are skipped to the next ``FF`` (decoders tolerate them too). True at the first ``FF D9``
    reached this way; False when the data ends before.
    """
    n, pos = len(data), 2
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < n - 1 and data[pos + 1] == 0xFF:      # fill bytes before a marker
            pos += 1
        if pos < 0 or pos + 1 >= n:
            return False
        marker = data[pos + 1]
        pos += 2
        if marker == 0xD9:
            return True
        if marker in _NO_LENGTH or marker == 0x00:
            continue
        if pos + 2 > n:
            return False
        pos += int.from_bytes(data[pos:pos + 2], "big")        # the length counts its own 2 bytes
        if pos > n:
            return False
        if marker == 0xDA:                                      # start of scan: entropy-coded data
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return False
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    pos += 2                                    # stuffed FF, or a restart marker
                    continue
                break


__all__ = ["TruncatedJPEG", "check_jpeg_complete", "jpeg_image_ends", "JPEG_START", "JPEG_END", "TAIL_BYTES"]
