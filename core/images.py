"""Checks of image files that need no decoder.

A JPEG cut short (a half-finished download or copy) still has a valid header, so a header-only
check passes it, and decoders fill the missing part with grey and carry on: the image would be
trained on or scored as if it were the real one. :func:`check_jpeg_complete` refuses such a file
for one small read at its end. Each benchmark turns :class:`TruncatedJPEG` into its own error
type, naming the file.
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
    """Raise :class:`TruncatedJPEG` if ``path`` is a JPEG stream whose end-of-image marker is missing.

    Only files starting with the JPEG start-of-image marker ``FF D8`` are checked, whatever their
    name; anything else (a PNG, a file that is no image) returns at once and is left to the
    caller's header check. The marker ``FF D9`` cannot occur inside the entropy-coded data (a
    literal ``FF`` byte there is always followed by ``00``), so it is looked for in the last
    :data:`TAIL_BYTES` bytes, past any padding some writers append after it. ``OSError`` (a file
    that cannot be opened) is the caller's to report.
    """
    with open(path, "rb") as f:
        if f.read(2) != JPEG_START:
            return
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(2, size - TAIL_BYTES))
        tail = f.read()
    if JPEG_END not in tail:
        raise TruncatedJPEG(path, len(tail), size)


__all__ = ["TruncatedJPEG", "check_jpeg_complete", "JPEG_START", "JPEG_END", "TAIL_BYTES"]
