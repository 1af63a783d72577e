"""core/cli.py: the one flag vocabulary, and every tool built on it (a tool that spells, types or
explains a shared flag its own way is caught here)."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import VOCABULARY, flags, plain_name, positive_int

ROOT = Path(__file__).resolve().parents[2]
PYTHON_TOOLS = sorted(p.name for p in (ROOT / "tools").glob("*.py"))
# the spellings the vocabulary replaced: a tool that brings one back has drifted
RETIRED = ("--size", "--batch", "--data_root", "--work_dir", "--cfg_options", "--ckpt", "--output")


def _help(tool: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0, f"{tool} --help: {proc.stderr}"
    return proc.stdout


def _options(help_text: str) -> dict[str, str]:
    """option string -> its help line, from argparse's one-line-per-option layout (COLUMNS=400)."""
    out = {}
    for line in help_text.splitlines():
        m = re.match(r"\s+(--[a-z][a-z0-9-]*)[^\n]*?\s{2,}(\S.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


@pytest.mark.parametrize("tool", PYTHON_TOOLS)
def test_every_tool_speaks_the_vocabulary(tool):
    options = _options(_help(tool))
    by_option = {f.option: f for f in VOCABULARY.values()}
    for option, text in options.items():
        assert option not in RETIRED, f"{tool}: {option} is spelt otherwise in the shared vocabulary"
        if option in by_option and option != "--work-dir":   # train/test word --work-dir their own way
            assert text.startswith(by_option[option].help), f"{tool}: {option} is not the shared flag"


def test_flags_types_and_refusals():
    p = argparse.ArgumentParser(parents=[flags("batch_size", "split", "out", required=("out",), split="val")])
    args = p.parse_args(["--out", "x", "--batch-size", "3"])
    assert (args.out, args.batch_size, args.split) == ("x", 3, "val")
    for bad in (["--out", "x", "--batch-size", "0"], ["--out", "x", "--split", "../train"], ["--batch-size", "2"]):
        with pytest.raises(SystemExit) as e:
            p.parse_args(bad)
        assert e.value.code == 2
    with pytest.raises(ValueError, match="not in the shared vocabulary"):
        flags("batch")
    with pytest.raises(ValueError, match="not requested"):
        flags("out", required=("checkpoint",))


@pytest.mark.parametrize("text,ok", [("val", True), ("train_aug", True), ("2017.v1", True), ("../val", False),
                                     ("a/b", False), ("..", False), ("", False), ("-x", False)])
def test_plain_name(text, ok):
    if ok:
        assert plain_name(text) == text
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            plain_name(text)


def test_positive_int():
    assert positive_int("7") == 7
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_a_tool_refuses_a_bad_value_before_any_work(tmp_path):
    """--batch-size 0 and a split climbing out of its folder stop at parsing, exit 2, nothing written."""
    out = tmp_path / "out"
    for bad in (["--batch-size", "0"], ["--split", "../x"]):
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "davis_propagate.py"), "--data-root",
                               str(tmp_path), "--out", str(out), *bad], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and bad[0] in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not out.exists()
