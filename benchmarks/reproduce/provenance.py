"""What produced each reproduction result, and whether the result still matches it.

Beside a step's output file ``OUT`` (a test_metrics.json, a davis_results.json, a final
checkpoint, a pretrained backbone) a record ``OUT.provenance.json`` holds::

    {"command": "tools/dist_test.sh configs/... work_dirs/.../epoch_12.pth 8 ...",
     "argv": [...],
     "inputs": {"work_dirs/.../epoch_12.pth": "<sha256>", ...},
     "config": {"path": "configs/coco/mask_rcnn_flsl_vits16.py", "sha256": "<sha256 of the merged config>"},
     "written": "2025-01-31T12:00:00+00:00"}

A result is *stale* when it has no record, or when its command, the merged content of its
config (``_base_`` files included) or the SHA-256 of one of its input files differs from the
record: the step must run again (a table re-run with another ``--checkpoint`` used to reuse the
previous checkpoint's numbers because only the output's existence was checked).

Input digests reuse the ``<file>.sha256`` a checkpoint carries (:mod:`pretrain.checkpoint`) when
it is at least as new as the file, so large checkpoints are not re-hashed on every plan.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shlex
from pathlib import Path

from core.files import write_json_atomic

RECORD_SUFFIX = ".provenance.json"


def _abs(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or root is None else Path(root) / p


def record_path(output: str | os.PathLike) -> Path:
    """``OUT.provenance.json`` beside ``output``."""
    return Path(str(output) + RECORD_SUFFIX)


def file_digest(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file (None when it does not exist), from its ``.sha256`` when that is not
    older than the file."""
    from pretrain.checkpoint import digest_path, file_sha256, recorded_digests
    path = Path(path)
    if not path.is_file():
        return None
    side = digest_path(path)
    if side.is_file() and side.stat().st_mtime_ns >= path.stat().st_mtime_ns:
        recorded = recorded_digests(path)
        if recorded and len(recorded) == 1:
            return recorded[0]
    return file_sha256(path)


def config_digest(path: str | os.PathLike) -> str | None:
    """SHA-256 of a config's merged text (its ``_base_`` files included); of its bytes when MMEngine
    cannot read it; None when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from mmengine.config import Config
        text = Config.fromfile(str(path), import_custom_modules=False).pretty_text.encode()
    except Exception:  # noqa: BLE001 - an unreadable config still has bytes to compare
        text = path.read_bytes()
    return hashlib.sha256(text).hexdigest()


def make_record(argv, inputs=(), config: str | None = None, root: str | os.PathLike | None = None) -> dict:
    """The record of a step run as ``argv`` from ``root`` (relative paths are resolved there) on
    ``inputs`` (files) with ``config``."""
    argv = [str(a) for a in argv]
    return {
        "command": shlex.join(argv),
        "argv": argv,
        "inputs": {str(p): file_digest(_abs(p, root)) for p in inputs},
        "config": None if config is None else {"path": str(config),
                                               "sha256": config_digest(_abs(config, root))},
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(output: str | os.PathLike, argv, inputs=(), config: str | None = None,
                 root: str | os.PathLike | None = None) -> Path:
    """Write ``output``'s record (call it right after the step that made ``output`` succeeded)."""
    path = record_path(_abs(output, root))
    write_json_atomic(make_record(argv, inputs, config, root), path, indent=1)
    return path


def read_record(output: str | os.PathLike, root: str | os.PathLike | None = None) -> dict | None:
    """``output``'s record, or None when there is none or it is not a readable record."""
    path = record_path(_abs(output, root))
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("inputs"), dict) else None


def stale_reasons(output: str | os.PathLike, argv, inputs=(), config: str | None = None,
                  root: str | os.PathLike | None = None) -> list[str]:
    """Why ``output`` no longer matches what would produce it now (empty: up to date).

    Reasons name the item: ``no result``, ``no provenance record``, ``command changed``,
    ``config <path> changed``, ``input <path> changed`` / ``missing``.
    """
    out = _abs(output, root)
    if not out.is_file():
        return ["no result"]
    record = read_record(output, root)
    if record is None:
        return [f"no provenance record ({record_path(output).name}): made by hand or before records "
                "were kept"]
    reasons = []
    argv = [str(a) for a in argv]
    if record.get("argv") != argv:
        reasons.append(f"command changed (was: {record.get('command')})")
    if config is not None:
        old = (record.get("config") or {}).get("sha256")
        now = config_digest(_abs(config, root))
        if old != now:
            reasons.append(f"config {config} changed")
    for p in inputs:
        old = record["inputs"].get(str(p))
        now = file_digest(_abs(p, root))
        if now is None:
            reasons.append(f"input {p} missing")
        elif old != now:
            reasons.append(f"input {p} changed (sha256 {str(old)[:12]}... -> {now[:12]}...)")
    return reasons


def step_stale_reasons(step, root: str | os.PathLike | None = None) -> list[str]:
    """:func:`stale_reasons` of a plan step (``output``, ``argv``, ``inputs`` and, when it has
    one, ``config`` attributes, as :class:`benchmarks.reproduce.plan.Step`)."""
    return stale_reasons(step.output, step.argv, step.inputs, getattr(step, "config", None), root)


def record_step(step, root: str | os.PathLike | None = None) -> Path:
    """:func:`write_record` of a plan step that has just succeeded."""
    return write_record(step.output, step.argv, step.inputs, getattr(step, "config", None), root)


def set_aside(folder: str | os.PathLike) -> Path | None:
    """Rename a stale step's work folder to ``<folder>.stale-<n>`` (first free n) so that the step
    runs again from scratch: a training re-run with ``--resume`` (or pretraining, which resumes
    from ``latest.pth``) would otherwise pick up the finished old run and redo nothing. Returns
    the new name, or None when the folder does not exist. Nothing is deleted."""
    folder = Path(folder)
    if not folder.exists():
        return None
    n = 1
    while Path(f"{folder}.stale-{n}").exists():
        n += 1
    target = Path(f"{folder}.stale-{n}")
    folder.rename(target)
    return target


__all__ = ["RECORD_SUFFIX", "record_path", "file_digest", "config_digest", "make_record", "write_record",
           "read_record", "stale_reasons", "set_aside", "step_stale_reasons", "record_step"]
