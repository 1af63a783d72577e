"""Atomic writes: a reader (or a crash) sees the old file or the complete new one, never a part.

Every writer of the project goes through :func:`atomic_path`: the content is written to a
temporary file in the destination's folder (same file system, so the final ``os.replace`` is
atomic), flushed to disk, given the mode a plain ``open(path, "w")`` would give (``mkstemp``
creates files readable by the owner only, which surprises users sharing result folders), and
renamed over the destination.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto
    ``path``, on any exception it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(obj, path: str | os.PathLike, indent: int | None = None) -> None:
    """``obj`` as JSON (compact unless ``indent``)."""
    sep = (",", ":") if indent is None else (",", ": ")
    write_text_atomic(json.dumps(obj, indent=indent, separators=sep), path)


__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic", "write_json_atomic"]
