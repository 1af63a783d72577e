"""Every bad input of the registry (tests/reliability/cases.py): the tool ends with the documented
exit status and one `error:` line (or a `warning:` line) that names the file or key, never a
traceback, and no file it reads changes (checksums before and after). docs/errors.md is the
registry rendered, and must be current."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import cli_main

from .cases import CASES, DOC, REPO, Ctx, render_doc


def checksums(paths) -> dict:
    """SHA-256 of every file under ``paths`` (files or folders), keyed by path: a changed, new or
    removed file changes the dict."""
    out = {}
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@functools.lru_cache(maxsize=None)
def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{Path(name).stem}", REPO / "tools" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_case(case, ctx: Ctx, argv: list, monkeypatch, capsys) -> tuple[int, str, str]:
    if case.mode == "subprocess":
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **ctx.env)
        limit = ctx.limit_file_size

        def preexec():  # a "full disk": writes past this size fail (EFBIG; Python ignores SIGXFSZ)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        proc = subprocess.run([sys.executable, str(REPO / "tools" / case.tool), *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600,
                              preexec_fn=preexec if limit else None)
        return proc.returncode, proc.stdout, proc.stderr
    # in this process: the tool's main under the same handler as its command line; the project's
    # warnings (logger "flsl") go to stderr as Python's last-resort handler prints them
    monkeypatch.chdir(REPO)
    log = logging.getLogger("flsl")
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "propagate", False)
    handler = logging.StreamHandler(sys.stderr)
    log.addHandler(handler)
    try:
        status = cli_main(load_tool(case.tool).main, argv)
    finally:
        log.removeHandler(handler)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    for package in case.needs:
        pytest.importorskip(package)
    ctx = Ctx(tmp_path)
    argv = case.setup(ctx)
    assert ctx.inputs, "a case must declare what the tool reads"
    before = checksums(ctx.inputs)
    status, out, err = run_case(case, ctx, [str(a) for a in argv], monkeypatch, capsys)
    assert "Traceback" not in err, err[-3000:]
    assert status == case.status, (out[-2000:], err[-2000:])
    if case.level == "error":
        lines = [ln for ln in err.splitlines() if ln.strip()]
        line = lines[-1] if lines else ""
        assert case.pattern().fullmatch(line), f"\n{line}\n{case.message}"
    else:
        found = [ln for ln in (out + err).splitlines() if case.pattern().fullmatch(ln)]
        assert found, f"no line matches {case.message!r} in:\n{out[-2000:]}\n{err[-2000:]}"
        line = found[0]
    assert case.names(ctx) in line
    assert checksums(ctx.inputs) == before, "an input file changed"
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".png" and not p.stat().st_size], \
        "an empty PNG was left behind"


def test_case_ids_are_unique_and_every_tool_has_a_case():
    assert len({c.id for c in CASES}) == len(CASES)
    tools = {p.name for p in (REPO / "tools").glob("*.py")}
    covered = {c.tool for c in CASES}
    assert covered <= tools
    # reproduce.py's bad inputs live in tests/benchmarks/reproduce/test_reproduce.py; visualize.py's in
    # tests/benchmarks/figures/test_figures.py
    assert tools - covered <= {"reproduce.py", "visualize.py"}


def test_errors_doc_is_generated_from_the_cases():
    assert DOC.read_text() == render_doc(), "run: python -m tests.reliability.cases --write"
