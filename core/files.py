"""Atomic writes: a reader (or a crash) sees the old file or the complete new one, never a part.

Every writer of the project goes through :func:`atomic_path`: the content is written to a
temporary file in the destination's folder (same file system, so the final ``os.replace`` is
atomic), flushed to disk, given the mode a plain ``open(path, "w")`` would give (``mkstemp``
creates files readable by the owner only, which surprises users sharing result folders), and
renamed over the destination.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Iterator

from .errors import FLSLError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto
    ``path``, on any exception it is removed and ``path`` is untouched."""
    path = Path(path)
    make_parent(path)
    try:
        import tempfile  # here: a tool that writes nothing skips its (and shutil's) import
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise FLSLError(f"{path}: cannot be written ({err.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        raise FLSLError(f"{path}: cannot be written ({err.strerror}); "
                        + ("the previous file is unchanged" if path.exists() else "nothing was written")) from None
    finally:
        if tmp.exists():
            tmp.unlink()


#: errors of the write itself (as opposed to a bug): disk full, quota, file-size limit, read-only
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def make_parent(path: str | os.PathLike) -> None:
    """Create the folder ``path`` goes in; a regular file in the way is an :class:`FLSLError`."""
    make_dirs(Path(path).parent)


def make_dirs(folder: str | os.PathLike) -> Path:
    """``mkdir -p folder``, with one-line errors: a regular file where a folder must be, or no
    permission."""
    folder = Path(folder)
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise FLSLError(f"{folder}: cannot be created: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FLSLError(f"{folder}: cannot be created ({err.strerror})") from None
    return folder


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system
        return False


def check_output_path(out: str | os.PathLike, inputs=(), option: str = "--out", folder: bool = False,
                      need_bytes: int = 0) -> Path:
    """Refuse, before any work, an output that cannot be made or would write over what is read.

    ``out`` (a file or, with ``folder``, a folder the tool writes) must not lie under a regular
    file (nor, with ``folder``, be one), must have no name longer than the file system allows,
    must be writable where it will be created, and must not be, or lie inside, any of ``inputs``
    (files or folders the tool reads; symbolic links resolved). ``need_bytes``: the expected size
    of the output, which must fit in the free space. Raises :class:`FLSLError`; returns
    ``Path(out)``.
    """
    out = Path(out)
    existing = next(p for p in (*out.parents, Path(".")) if _exists(p))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    long = next((part for part in out.parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise FLSLError(f"{out} ({option}): a name of {len(os.fsencode(long))} bytes ({long[:24]}...), more "
                        f"than the {name_max} the file system allows")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise FLSLError(f"{out} ({option}): cannot be created: {blocking} is a file, not a folder")
    if folder and out.exists() and not out.is_dir():
        raise FLSLError(f"{out} ({option}): is a file; a folder is needed here")
    if out.exists():
        existing = out
    target = existing if existing.is_dir() else existing.parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise FLSLError(f"{out} ({option}): cannot be written: {target} is read-only or not writable by you")
    if need_bytes:
        import shutil
        free = shutil.disk_usage(target).free
        if free < need_bytes:
            raise FLSLError(f"{out} ({option}): needs about {need_bytes / 2**20:.1f} MiB, only "
                            f"{free / 2**20:.1f} MiB free on that disk")
    real = Path(os.path.realpath(out))
    for item in inputs:
        if item is None:
            continue
        if _inside(real, Path(os.path.realpath(item))):
            raise FLSLError(f"{out} ({option}): would write into the input {item}; choose an output "
                            "outside the data and checkpoints the tool reads")
    return out


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(obj, path: str | os.PathLike, indent: int | None = None) -> None:
    """``obj`` as JSON (compact unless ``indent``)."""
    sep = (",", ":") if indent is None else (",", ": ")
    write_text_atomic(json.dumps(obj, indent=indent, separators=sep), path)


__all__ = ["atomic_path", "write_text_atomic", "write_json_atomic", "make_dirs",
           "make_parent", "check_output_path"]
