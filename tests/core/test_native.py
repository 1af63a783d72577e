"""core.native: C kernels built once per source, compiler and CPU, atomically, and never
loaded with fast-math's process-wide flush-to-zero."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import native

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")

ADD = "int add(int a, int b) { return a + b; }\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLSL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FLSL_NATIVE", raising=False)
    native.load.cache_clear()
    yield tmp_path / "cache" / "native"
    native.load.cache_clear()


def test_built_once_and_rebuilt_when_the_source_changes(tmp_path, cache):
    src = tmp_path / "add.c"
    src.write_text(ADD)
    lib = native.load(src)
    assert lib.add(2, 3) == 5
    built = sorted(cache.iterdir())
    assert len(built) == 1 and built[0].name.startswith("add-") and built[0].suffix == ".so"
    stamp = built[0].stat().st_mtime_ns
    native.load.cache_clear()
    assert native.load(src).add(4, 4) == 8
    assert built[0].stat().st_mtime_ns == stamp              # read from the cache, not rebuilt
    src.write_text(ADD.replace("a + b", "a * b"))
    native.load.cache_clear()
    assert native.load(src).add(4, 5) == 20
    assert len([p for p in cache.iterdir() if p.suffix == ".so"]) == 2
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]     # no build leftovers


def test_bad_source_or_no_compiler_is_one_warning_and_none(tmp_path, cache, monkeypatch, capsys):
    src = tmp_path / "bad.c"
    src.write_text("int broken( {\n")
    assert native.load(src) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: bad.c did not compile")
    assert not cache.exists() or not any(cache.iterdir())
    good = tmp_path / "good.c"
    good.write_text(ADD)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.load(good) is None
    assert "no C compiler" in capsys.readouterr().err


def test_damaged_cached_object_is_rebuilt(tmp_path, cache, monkeypatch, capsys):
    src = tmp_path / "add.c"
    src.write_text(ADD)
    assert native.load(src).add(1, 2) == 3
    [built] = [p for p in cache.iterdir() if p.suffix == ".so"]
    # The loaded object stays mapped in this process (and the loader would hand back its handle
    # for the same path), so the damaged copy lives in a second cache under the same name.
    other = tmp_path / "other"
    damaged = other / "native" / built.name
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(built.read_bytes()[:100])            # truncated, as by a full disk
    monkeypatch.setenv("FLSL_CACHE_DIR", str(other))
    native.load.cache_clear()
    assert native.load(src).add(2, 2) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: cached kernel {damaged} does not load")
    assert [p.name for p in damaged.parent.iterdir()] == [built.name]
    assert damaged.stat().st_size > 100                      # replaced by a whole object


def test_unwritable_cache_is_one_warning_and_none(tmp_path, cache, monkeypatch, capsys):
    """A cache path that cannot be a folder (root ignores permission bits, so a file stands in
    for a read-only place): the kernel is off, after one warning, and nothing is written."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FLSL_CACHE_DIR", str(blocker))
    src = tmp_path / "add.c"
    src.write_text(ADD)
    assert native.load(src) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be built in" in err[0] and str(blocker) in err[0]
    assert blocker.read_text() == "not a folder"


def test_turned_off(tmp_path, cache, monkeypatch):
    src = tmp_path / "add.c"
    src.write_text(ADD)
    monkeypatch.setenv("FLSL_NATIVE", "0")
    assert native.load(src) is None
    assert not cache.exists()


def test_loading_the_kernel_keeps_denormals(tmp_path):
    """-ffast-math at link time (GCC < 13) adds crtfastmath.o, which sets flush-to-zero for the
    whole process when the object loads; a denormal product must survive loading the kernel."""
    code = (
        "import numpy as np\n"
        "from benchmarks.probes import fused_ce\n"
        "assert fused_ce.available()\n"
        "x = np.array([1e-39], np.float32) * np.float32(0.5)\n"
        "print(float(x[0]))\n")
    env = {**os.environ, "FLSL_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert float(out.stdout.strip()) == pytest.approx(5e-40, rel=1e-3)
