"""Run a plan's pending steps in order, from the repository root, output streaming through, and
record what produced each result (:mod:`.provenance`)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .errors import ReproduceError
from .plan import REPO, Step
from .provenance import record_step, set_aside


def _missing_inputs(step: Step) -> list[str]:
    return [p for p in step.inputs if not (Path(p) if Path(p).is_absolute() else REPO / p).is_file()]


def run_steps(steps: list[Step], log: Callable[[str], None] = print, dry_run: bool = False) -> int:
    """Run every step that is not done; returns the number of steps run.

    A step whose input (a checkpoint) does not exist when its turn comes, or whose command fails,
    stops the run with :class:`ReproduceError` (the commands before it keep their results, so
    the same call resumes there). A finished result that is stale (made from another
    checkpoint, config or command) is redone: the run folder of a training or pretraining step
    is first renamed to ``<folder>.stale-N`` (kept, never deleted), since those commands resume
    from what they find there. A step without a result yet (an interrupted run) resumes as
    before. After each success the step's provenance record is written beside its output.
    ``dry_run`` prints the commands instead, finished steps as comments and stale ones with
    their reasons.
    """
    ran = 0
    pending = [s for s in steps if not s.done]
    for i, step in enumerate(steps, 1):
        if step.done:
            log(f"# [{i}/{len(steps)}] done: {step.label} ({step.output})")
            if dry_run:
                log(f"#   {step.shell()}")
            continue
        reasons = step.stale_reasons
        if dry_run:
            log(f"# [{i}/{len(steps)}] {step.label}")
            if step.has_result:
                log(f"#   stale result, to redo: {'; '.join(reasons)}")
            log(step.shell())
            continue
        missing = _missing_inputs(step)
        if missing:
            hint = " (a released checkpoint: see docs/reproduce.md, 'Checkpoints')" \
                if missing[0].startswith("checkpoints/") else ""
            raise ReproduceError(f"{step.label}: input not found: {missing[0]}{hint}")
        if step.has_result and step.work_dir is not None:
            moved = set_aside(REPO / step.work_dir if not Path(step.work_dir).is_absolute() else step.work_dir)
            log(f"[{i}/{len(steps)}] stale result ({'; '.join(reasons)}): previous run kept as {moved}")
        log(f"[{i}/{len(steps)}] {step.label}\n$ {step.shell()}")
        t0 = time.perf_counter()
        env = {**os.environ, **{k: str(v) for k, v in step.env.items()}}
        proc = subprocess.run([str(a) for a in step.argv], cwd=REPO, env=env)
        if proc.returncode != 0:
            raise ReproduceError(f"{step.label}: command failed with exit status {proc.returncode}: "
                                 f"{step.shell()}")
        if not step.has_result:
            raise ReproduceError(f"{step.label}: the command succeeded but did not write {step.output}")
        record_step(step, REPO)
        ran += 1
        log(f"[{i}/{len(steps)}] finished in {time.perf_counter() - t0:.0f} s")
    if not dry_run and not pending:
        log("every step is already done")
    sys.stdout.flush()
    return ran


__all__ = ["run_steps"]
