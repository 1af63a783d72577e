"""Run a plan's pending steps in order, from the repository root, output streaming through."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .errors import ReproduceError
from .plan import REPO, Step


def _missing_inputs(step: Step) -> list[str]:
    return [p for p in step.inputs if not (Path(p) if Path(p).is_absolute() else REPO / p).is_file()]


def run_steps(steps: list[Step], log: Callable[[str], None] = print, dry_run: bool = False) -> int:
    """Run every step that is not done; returns the number of steps run.

    A step whose input (a checkpoint) does not exist when its turn comes, or whose command fails,
    stops the run with :class:`ReproduceError` (the commands before it keep their results, so
    the same call resumes there). ``dry_run`` prints the commands instead, finished steps as
    comments.
    """
    ran = 0
    pending = [s for s in steps if not s.done]
    for i, step in enumerate(steps, 1):
        if step.done:
            log(f"# [{i}/{len(steps)}] done: {step.label} ({step.output})")
            if dry_run:
                log(f"#   {step.shell()}")
            continue
        if dry_run:
            log(f"# [{i}/{len(steps)}] {step.label}")
            log(step.shell())
            continue
        missing = _missing_inputs(step)
        if missing:
            hint = " (a released checkpoint: see docs/reproduce.md, 'Checkpoints')" \
                if missing[0].startswith("checkpoints/") else ""
            raise ReproduceError(f"{step.label}: input not found: {missing[0]}{hint}")
        log(f"[{i}/{len(steps)}] {step.label}\n$ {step.shell()}")
        t0 = time.perf_counter()
        env = {**os.environ, **{k: str(v) for k, v in step.env.items()}}
        proc = subprocess.run([str(a) for a in step.argv], cwd=REPO, env=env)
        if proc.returncode != 0:
            raise ReproduceError(f"{step.label}: command failed with exit status {proc.returncode}: "
                                 f"{step.shell()}")
        if not step.done:
            raise ReproduceError(f"{step.label}: the command succeeded but did not write {step.output}")
        ran += 1
        log(f"[{i}/{len(steps)}] finished in {time.perf_counter() - t0:.0f} s")
    if not dry_run and not pending:
        log("every step is already done")
    sys.stdout.flush()
    return ran


__all__ = ["run_steps"]
