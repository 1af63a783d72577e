"""The one step runner: commands that make result files, what produced each result, and whether
it still matches. The paper's tables (:mod:`benchmarks.reproduce`) and the demo
(:mod:`benchmarks.demo`) both run their work as :class:`Step` lists through :func:`run_steps`.

A step is *done* when its output exists and its provenance record ``OUT.provenance.json`` still
matches what would make it now::

    {"command": "tools/dist_test.sh configs/... work_dirs/.../epoch_12.pth 8 ...",
     "argv": [...],
     "inputs": {"work_dirs/.../epoch_12.pth": "<sha256>", "data/coco/annotations/...": "<sha256>"},
     "config": {"path": "configs/coco/mask_rcnn_flsl_vits16.py", "sha256": "<sha256 of the merged config>"},
     "written": "2025-01-31T12:00:00+00:00"}

A result is *stale* when it has no record, or when its command, the merged content of its config
(``_base_`` files included) or the SHA-256 of one of its inputs differs from the record: the
step runs again (a re-run with another checkpoint or another annotation file must not reuse the
old numbers just because an output file exists). Input digests reuse a checkpoint's
``<file>.sha256`` when it is at least as new as the file (:func:`core.digests.cached_sha256`).

Paths in steps are relative to a root folder (the repository's, where every command runs) or
absolute; :func:`repo_relative` shows a path the way commands expect it.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .digests import cached_sha256
from .errors import FLSLError
from .files import write_json_atomic

#: the repository root: commands run from here and relative step paths are resolved here
REPO = Path(__file__).resolve().parents[1]
RECORD_SUFFIX = ".provenance.json"
_CONFIG_LOCK = threading.Lock()


class StepError(FLSLError):
    """A step that cannot run or failed; the message names it and its command."""


# ----------------------------------------------------------------------------- paths
def resolve(path: str | os.PathLike, root: str | os.PathLike | None = REPO) -> Path:
    """``path`` as given when absolute, else under ``root`` (the repository root by default)."""
    p = Path(path)
    return p if p.is_absolute() or root is None else Path(root) / p


def repo_relative(path: str | os.PathLike, cwd: Path | None = None) -> Path:
    """``path`` (relative to ``cwd``, default the current directory) relative to the repository
    root when it lies inside it, absolute otherwise: the form commands run from the root take."""
    p = Path(path)
    if not p.is_absolute():
        p = (cwd or Path.cwd()) / p
    p = Path(os.path.normpath(p))
    try:
        return p.relative_to(REPO)
    except ValueError:
        return p


# ----------------------------------------------------------------------------- provenance
def record_path(output: str | os.PathLike) -> Path:
    """``OUT.provenance.json`` beside ``output``."""
    return Path(str(output) + RECORD_SUFFIX)


def file_digest(path: str | os.PathLike) -> str | None:
    """SHA-256 of an input file, or of an input folder (the relative name and the SHA-256 of each
    file under it, in name order: an annotation folder); None when it does not exist."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}\0{cached_sha256(f)}\n".encode())
        return h.hexdigest()
    return cached_sha256(path)


def config_digest(path: str | os.PathLike) -> str | None:
    """SHA-256 of a config's merged text (its ``_base_`` files included); of its bytes when MMEngine
    cannot read it; None when it does not exist.

    The config is read as a machine without a GPU reads it: the detection schedules choose their
    optimizer wrapper from ``torch.cuda.is_available()``, and a plan made on a login node must
    find the results of the GPU nodes up to date. One config at a time: lanes record side by side,
    and neither MMEngine's config reader nor the patch of ``torch.cuda`` is safe across threads
    (two at once recorded a wrong digest, and the next run redid a finished step)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from unittest import mock

        from mmengine.config import Config
        with _CONFIG_LOCK, mock.patch("torch.cuda.is_available", return_value=False):
            text = Config.fromfile(str(path), import_custom_modules=False).pretty_text.encode()
    except Exception:  # noqa: BLE001 - an unreadable config still has bytes to compare
        text = path.read_bytes()
    return hashlib.sha256(text).hexdigest()


def make_record(argv, inputs=(), config: str | None = None, root: str | os.PathLike | None = REPO) -> dict:
    """The record of a step run as ``argv`` from ``root`` (relative paths are resolved there) on
    ``inputs`` (files) with ``config``."""
    argv = [str(a) for a in argv]
    return {
        "command": shlex.join(argv),
        "argv": argv,
        "inputs": {str(p): file_digest(resolve(p, root)) for p in inputs},
        "config": None if config is None else {"path": str(config),
                                               "sha256": config_digest(resolve(config, root))},
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(output: str | os.PathLike, argv, inputs=(), config: str | None = None,
                 root: str | os.PathLike | None = REPO) -> Path:
    """Write ``output``'s record (call it right after the step that made ``output`` succeeded)."""
    path = record_path(resolve(output, root))
    write_json_atomic(make_record(argv, inputs, config, root), path, indent=1)
    return path


def read_record(output: str | os.PathLike, root: str | os.PathLike | None = REPO) -> dict | None:
    """``output``'s record, or None when there is none or it is not a readable record."""
    path = record_path(resolve(output, root))
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("inputs"), dict) else None


def stale_reasons(output: str | os.PathLike, argv, inputs=(), config: str | None = None,
                  root: str | os.PathLike | None = REPO) -> list[str]:
    """Why ``output`` no longer matches what would produce it now (empty: up to date).

    Reasons name the item: ``no result``, ``no provenance record``, ``command changed``,
    ``config <path> changed``, ``input <path> changed`` / ``missing``, ``input <path> added``.
    """
    out = resolve(output, root)
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
        now = config_digest(resolve(config, root))
        if old != now:
            reasons.append(f"config {config} changed")
    for p in inputs:
        if str(p) not in record["inputs"]:
            reasons.append(f"input {p} added")
            continue
        old = record["inputs"][str(p)]
        now = file_digest(resolve(p, root))
        if now is None:
            reasons.append(f"input {p} missing")
        elif old != now:
            reasons.append(f"input {p} changed (sha256 {str(old)[:12]}... -> {now[:12]}...)")
    return reasons


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


# ----------------------------------------------------------------------------- steps
@dataclasses.dataclass
class Step:
    """One command making one result file. ``inputs`` must exist before it runs; it is done when
    ``output`` exists *and* its provenance record still matches (command, input digests, config
    digest). Steps of the same ``lane`` run in order; different lanes may run side by side."""

    kind: str                  # what sort of work: "pretrain", "train", "test", "davis", "probe", ...
    label: str                 # what it makes, e.g. "coco/flsl_vits16: Mask R-CNN fine-tuning"
    argv: list
    output: Path
    env: dict = dataclasses.field(default_factory=dict)
    inputs: tuple = ()         # files the command reads: checkpoints, data, split lists, annotations
    config: str | None = None  # the MMEngine config the command reads (its merged content counts)
    work_dir: Path | None = None  # a run folder that resumes: set aside before a stale re-run
    lane: str | None = None    # e.g. an arm of the demo; None: the main sequence
    root: Path = REPO          # where the command runs and relative paths are resolved
    action: Callable[[], None] | None = None  # work done in this process instead of running argv
                                              # (argv then names it, for the record and the log)

    @property
    def stale_reasons(self) -> list[str]:
        """Why the step must run (empty when done): ``no result``, ``input X changed``..."""
        return stale_reasons(self.output, self.argv, self.inputs, self.config, self.root)

    @property
    def done(self) -> bool:
        return not self.stale_reasons

    @property
    def has_result(self) -> bool:
        return resolve(self.output, self.root).is_file()

    def shell(self) -> str:
        """The command as one shell line (environment assignments first)."""
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(str(a) for a in self.argv)

    def record(self) -> Path:
        """Write the provenance record (right after the command succeeded)."""
        return write_record(self.output, self.argv, self.inputs, self.config, self.root)


_PRINT_LOCK = threading.Lock()


def _execute(step: Step, log: Callable[[str], None], prefix: str | None) -> None:
    """Run ``step``'s command from its root, its output streaming through (each line led by
    ``[prefix]`` when lanes run side by side), or its in-process ``action``."""
    if step.action is not None:
        step.action()
        return
    argv = [str(a) for a in step.argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in step.env.items()}}
    if prefix is None:
        sys.stdout.flush()
        returncode = subprocess.run(argv, cwd=step.root, env=env).returncode
    else:
        with subprocess.Popen(argv, cwd=step.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", bufsize=1) as proc:
            for line in proc.stdout:
                with _PRINT_LOCK:
                    log(f"[{prefix}] " + line.rstrip("\n"))
            returncode = proc.wait()
    if returncode != 0:
        raise StepError(f"{step.label}: command failed with exit status {returncode}: {step.shell()}")


def _run_one(step: Step, number: str, log: Callable[[str], None], prefix: str | None) -> bool:
    """Run ``step`` unless done; True when it ran."""
    lead = f"[{prefix}] " if prefix else ""
    reasons = step.stale_reasons
    if not reasons:
        with _PRINT_LOCK:
            log(f"{lead}# {number} done: {step.label} ({step.output})")
        return False
    missing = [p for p in step.inputs if not resolve(p, step.root).exists()]  # files or folders
    if missing:
        hint = " (a released checkpoint: see docs/reproduce.md, 'Checkpoints')" \
            if str(missing[0]).startswith("checkpoints/") else ""
        raise StepError(f"{step.label}: input not found: {missing[0]}{hint}")
    if step.has_result and step.work_dir is not None:
        moved = set_aside(resolve(step.work_dir, step.root))
        with _PRINT_LOCK:
            log(f"{lead}{number} stale result ({'; '.join(reasons)}): previous run kept as {moved}")
    with _PRINT_LOCK:
        log(f"{lead}{number} {step.label}\n{lead}$ {step.shell()}")
    t0 = time.perf_counter()
    _execute(step, log, prefix)
    if not step.has_result:
        raise StepError(f"{step.label}: the command succeeded but did not write {step.output}")
    step.record()
    with _PRINT_LOCK:
        log(f"{lead}{number} finished in {time.perf_counter() - t0:.0f} s")
    return True


def run_steps(steps: list[Step], log: Callable[[str], None] = print, dry_run: bool = False,
              jobs: int = 1) -> int:
    """Run every step that is not done; returns the number of steps run.

    Steps without a lane run in order. Steps with lanes run lane by lane in order, and with
    ``jobs`` > 1 up to ``jobs`` lanes side by side, their output lines led by the lane's name; a
    lane stops at its first failure, and the first failure (in lane order) is raised once every
    lane has finished. A step whose input does not exist when its turn comes, or whose command
    fails, raises :class:`StepError` (the steps before it keep their results, so the same call
    resumes there). A finished result that is stale is redone: the run folder of a resuming step
    is first renamed to ``<folder>.stale-N`` (kept, never deleted). After each success the
    step's provenance record is written beside its output. ``dry_run`` prints the commands
    instead, finished steps as comments and stale ones with their reasons.
    """
    if dry_run:
        for i, step in enumerate(steps, 1):
            reasons = step.stale_reasons
            if not reasons:
                log(f"# [{i}/{len(steps)}] done: {step.label} ({step.output})")
                log(f"#   {step.shell()}")
                continue
            log(f"# [{i}/{len(steps)}] {step.label}")
            if step.has_result:
                log(f"#   stale result, to redo: {'; '.join(reasons)}")
            log(step.shell())
        return 0
    lanes: dict = {}
    for i, step in enumerate(steps, 1):
        lanes.setdefault(step.lane, []).append((f"[{i}/{len(steps)}]", step))
    side_by_side = jobs > 1 and len(lanes) > 1

    def run_lane(name) -> int:
        prefix = name if side_by_side else None
        return sum(_run_one(step, number, log, prefix) for number, step in lanes[name])

    if not side_by_side:
        ran = sum(run_lane(name) for name in lanes)
    else:
        with ThreadPoolExecutor(max_workers=min(jobs, len(lanes))) as pool:
            futures = [pool.submit(run_lane, name) for name in lanes]
            errors = [f.exception() for f in futures]
            first = next((e for e in errors if e is not None), None)
            if first is not None:
                raise first
            ran = sum(f.result() for f in futures)
    if ran == 0:
        log("every step is already done")
    sys.stdout.flush()
    return ran


__all__ = ["REPO", "RECORD_SUFFIX", "StepError", "Step", "run_steps", "repo_relative", "record_path",
           "file_digest", "config_digest", "make_record", "write_record", "read_record", "stale_reasons",
           "set_aside", "resolve"]
