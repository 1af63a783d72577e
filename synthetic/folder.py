"""Where a generator may write: a folder it creates, or one it marked as its own earlier.

A generator used to write into whatever folder it was given: pointed (through a config's
``data.root``) at a user's image folder it overwrote ``img_00000.jpg`` ... with generated scenes,
and an empty folder (an unmounted mount point) was filled and trained on. Now every generator
first :func:`claim` s its folder:

* absent: created, and marked at once with ``.flsl-generated`` holding the generator's settings;
* marked with the same settings: written again (an interrupted generation), or reused as it is
  when ``.complete`` holds them too;
* anything else (an empty folder, a folder of other files, a generated set of other settings)
  is a :class:`GeneratedFolderError` naming it, and nothing is written.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import FLSLError
from core.files import make_dirs

MARK = ".flsl-generated"   # written first: the folder is the generator's
DONE = ".complete"         # written last: the set is whole (older versions wrote only this one)


class GeneratedFolderError(FLSLError):
    """A folder a generator must not write into: ``root`` and the ``reason``."""

    def __init__(self, root: Path, reason: str):
        super().__init__(f"{root}: {reason}")
        self.root, self.reason = root, reason


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def is_complete(root: str | os.PathLike, stamp: str) -> bool:
    """Whether ``root`` holds the generated set described by ``stamp``, complete."""
    return _read(Path(root) / DONE) == stamp


def claim(root: str | os.PathLike, stamp: str) -> bool:
    """Make ``root`` the generator's folder for the set described by ``stamp`` (one line of its
    settings). Returns True when that set is already there complete (nothing to write), False
    when the caller must write it (and then call :func:`finish`)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise GeneratedFolderError(root, "is a file; generated data needs a folder that does not exist yet")
    if root.is_dir():
        done, mark = _read(root / DONE), _read(root / MARK)
        if done == stamp:
            return True
        if done is None and mark is None:
            what = "is empty" if not any(root.iterdir()) else "holds files the generator did not write"
            raise GeneratedFolderError(
                root, f"exists and {what}; generated data is written only into a folder the generator "
                f"creates (or one it marked with {MARK}): give a path that does not exist yet")
        if (mark or done) != stamp:
            raise GeneratedFolderError(
                root, f"holds a generated set of other settings ({mark or done}, wanted {stamp}); "
                "delete it or give a path that does not exist yet")
        return False  # ours, same settings, not finished: written again
    make_dirs(root.parent)
    try:
        root.mkdir()
    except FileExistsError:  # made meanwhile by another process: judge it as above
        return claim(root, stamp)
    (root / MARK).write_text(stamp + "\n")
    return False


def finish(root: str | os.PathLike, stamp: str) -> None:
    """Record that the set described by ``stamp`` is complete under ``root``."""
    (Path(root) / DONE).write_text(stamp)


__all__ = ["MARK", "DONE", "GeneratedFolderError", "claim", "finish", "is_complete"]
