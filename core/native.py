"""C kernels for the few CPU hot loops PyTorch runs poorly, compiled on first use and cached.

A kernel is one C file of the repository with plain C entry points (pointers and sizes, no
PyTorch headers), built with the system C compiler into a shared object and called through
:mod:`ctypes`, which releases the GIL during the call, so callers run it from a thread pool.
Plain C builds in a fraction of a second and has no binary tie to the installed torch, where a
PyTorch C++ extension takes a minute to compile against torch's headers.

Where the object lives, and why it is safe to load: ``$FLSL_CACHE_DIR/native`` (default
``~/.cache/flsl-bench/native``), the user's own cache, named by the SHA-256 of the source, the
compiler's version, the flags and this CPU's model and feature flags (the build targets the
machine it runs on, so a home folder shared by different machines keeps one object per CPU
kind). The object is written to a temporary name in that folder and renamed, so a crash or a
concurrent build never leaves a partial object under the final name. Nothing is loaded from
anywhere else.

Flags: ``-O3 -march=native -ffast-math`` at compile time only. The link step leaves
``-ffast-math`` out on purpose: GCC before 13 then links ``crtfastmath.o`` into shared objects,
whose constructor turns on flush-to-zero for the whole process when the object is loaded.

``FLSL_NATIVE=0`` turns every kernel off (callers run their PyTorch definition instead); so do
a machine without a C compiler and a cache folder that cannot be written, after one warning line.
A cached object that does not load (truncated by a full disk, say) is built again over it.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

COMPILE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-fPIC")
LINK_FLAGS = ("-shared",)


def cache_dir() -> Path:
    root = os.environ.get("FLSL_CACHE_DIR") or Path.home() / ".cache" / "flsl-bench"
    return Path(root) / "native"


def enabled() -> bool:
    return os.environ.get("FLSL_NATIVE", "1") != "0"


def _cpu_kind() -> str:
    """The model name and feature flags of this CPU (what ``-march=native`` compiles for)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(keep)))


def _compiler() -> tuple[str, str] | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return cc, version


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


@lru_cache(maxsize=None)
def load(source: Path) -> ctypes.CDLL | None:
    """The compiled ``source`` (a C file), building it when the cache has no object for this
    source, compiler and CPU; ``None`` (after one warning line) when kernels are turned off or
    cannot be built."""
    if not enabled():
        return None
    source = Path(source)
    found = _compiler()
    if found is None:
        _warn(f"no C compiler (cc/gcc, or $CC): {source.name} runs as plain PyTorch, slower")
        return None
    cc, version = found
    text = source.read_bytes()
    key = hashlib.sha256(b"\0".join([text, version.encode(), " ".join(COMPILE_FLAGS + LINK_FLAGS).encode(),
                                     _cpu_kind().encode()])).hexdigest()[:16]
    out = cache_dir() / f"{source.stem}-{key}.so"
    if out.exists():
        try:
            return ctypes.CDLL(str(out))
        except OSError as err:
            # A truncated or foreign file under our own cache name (a full disk, a copied home
            # folder): build it again and replace it, as a missing one would be.
            _warn(f"cached kernel {out} does not load ({err}): building it again")
    if not _build(cc, source, out):
        return None
    try:
        return ctypes.CDLL(str(out))
    except OSError as err:
        _warn(f"{source.name} was built but does not load ({err}): it runs as plain PyTorch, slower")
        return None


def _build(cc: str, source: Path, out: Path) -> bool:
    """Compile ``source`` into ``out`` through a temporary folder beside it and one rename;
    False (after one warning line) when it cannot."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{source.stem}.") as tmp:
            obj, lib = Path(tmp) / "k.o", Path(tmp) / "k.so"
            for cmd in ([cc, *COMPILE_FLAGS, "-c", str(source), "-o", str(obj)],
                        [cc, *LINK_FLAGS, str(obj), "-o", str(lib), "-lm"]):
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
                    _warn(f"{source.name} did not compile ({first}): it runs as plain PyTorch, slower")
                    return False
            os.replace(lib, out)
    except (OSError, subprocess.SubprocessError) as err:
        _warn(f"{source.name} could not be built in {out.parent} ({err}): it runs as plain PyTorch, slower")
        return False
    return True


__all__ = ["load", "enabled", "cache_dir", "COMPILE_FLAGS"]
