"""One training run per work folder: ``WORK_DIR/run.lock`` names the process that owns it.

Two runs started on one ``--work-dir`` used to interleave: the second resumed the first's
unfinished ``latest.pth`` under its own settings and both wrote checkpoints and the exported
backbone, which then belonged to neither. The lock is a small JSON file (process id, host,
the process's start time, command) made atomically with ``os.link`` of a complete temporary
file, so a reader never sees it half written. A lock whose process is gone (a killed run) is
taken over with a warning; one held by a live process is an error naming it.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

from core.errors import FLSLError

log = logging.getLogger("flsl")
LOCK_NAME = "run.lock"


class WorkDirLocked(FLSLError):
    """The work folder belongs to another running process."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``; None elsewhere):
    tells a live owner from an unrelated process that later got the same id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = _start_time(pid)
    return started is None or now is None or now == started


def _me() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_time(pid),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


class WorkDirLock:
    """``with WorkDirLock(folder):`` holds the folder for this process (re-entrant within it)."""

    def __init__(self, folder: str | os.PathLike, option: str = "--work-dir"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.option = option
        self.held = False

    def owner(self) -> dict | None:
        """The lock's content, None when there is no lock (an unreadable one: ``{}``)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _refuse_if_owned(self, owner: dict) -> bool:
        """Raise when ``owner`` is another live process; True when it is this process, False
        when the lock is stale."""
        me = _me()
        pid, host = owner.get("pid"), owner.get("host")
        if not isinstance(pid, int):
            return False
        if host == me["host"] and pid == me["pid"]:
            return True
        if host != me["host"]:
            raise WorkDirLocked(
                f"{self.folder} ({self.option}): in use by process {pid} on host {host} "
                f"({owner.get('command', '?')}); if no run is active there, delete {self.path}")
        if _alive(pid, owner.get("started")):
            raise WorkDirLocked(
                f"{self.folder} ({self.option}): in use by running process {pid} "
                f"({owner.get('command', '?')}); wait for it to end, stop it, or choose another "
                f"{self.option}")
        return False

    def check(self) -> None:
        """Raise :class:`WorkDirLocked` if another live process holds the folder (no lock taken)."""
        owner = self.owner()
        if owner:
            self._refuse_if_owned(owner)

    def acquire(self) -> None:
        me = _me()
        tmp = self.folder / f".{LOCK_NAME}.{me['pid']}.tmp"
        tmp.write_text(json.dumps(me))
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # fails if a lock exists: atomic test-and-set
                    self.held = True
                    return
                except FileExistsError:
                    owner = self.owner()
                    if owner is None:
                        continue  # released meanwhile
                    if owner and self._refuse_if_owned(owner):
                        return  # this process holds it already (the outer holder releases it)
                    log.warning("warning: %s: taking over the lock of process %s, which is no longer "
                                "running (an interrupted run)", self.path, owner.get("pid", "?"))
                    self.path.unlink(missing_ok=True)
            raise WorkDirLocked(f"{self.folder} ({self.option}): the lock {self.path} changes hands "
                                "repeatedly; is another run starting there?")
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            owner = self.owner() or {}
            if owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "WorkDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["WorkDirLock", "WorkDirLocked", "LOCK_NAME"]
