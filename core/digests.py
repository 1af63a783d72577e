"""File digests: SHA-256 of a file's bytes and the ``<file>.sha256`` sidecar beside it.

Every checkpoint or export this project writes gets ``<file>.sha256`` in ``sha256sum`` format
(``sha256sum -c`` checks it from that folder); the provenance of a result reuses it so a large
checkpoint is not hashed again on every plan.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .files import write_text_atomic

DIGEST_SUFFIX = ".sha256"


def digest_path(path: str | os.PathLike) -> Path:
    """``<path>.sha256``."""
    return Path(str(path) + DIGEST_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def recorded_digests(path: str | os.PathLike) -> list[str] | None:
    """Digests listed in ``<path>.sha256`` (None when there is none). While a checkpoint is being
    replaced the file lists the new digest and the old one, so a crash between the two renames
    leaves a pair that still verifies."""
    side = digest_path(path)
    if not side.is_file():
        return None
    out = []
    for line in side.read_text(errors="replace").splitlines():
        word = line.split(" ", 1)[0].strip().lower()
        if re.fullmatch(r"[0-9a-f]{64}", word):
            out.append(word)
    return out


def write_digest(path: str | os.PathLike, digests: list[str]) -> None:
    """Write ``<path>.sha256`` listing ``digests`` (atomically)."""
    name = Path(path).name
    write_text_atomic("".join(f"{d}  {name}\n" for d in digests), digest_path(path))


def cached_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file (None when it does not exist), taken from its ``.sha256`` when that is
    not older than the file and lists one digest."""
    path = Path(path)
    if not path.is_file():
        return None
    side = digest_path(path)
    if side.is_file() and side.stat().st_mtime_ns >= path.stat().st_mtime_ns:
        recorded = recorded_digests(path)
        if recorded and len(recorded) == 1:
            return recorded[0]
    return file_sha256(path)


__all__ = ["DIGEST_SUFFIX", "digest_path", "file_sha256", "recorded_digests", "write_digest", "cached_sha256"]
