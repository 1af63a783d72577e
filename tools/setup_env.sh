#!/usr/bin/env bash
# Create or reuse the project virtual environment `.venv` at the repository root.
#
#   tools/setup_env.sh            # idempotent; a no-op (< 1 s) when .venv matches requirements.txt
#
# What it does, in order:
#   1. python3 -m venv .venv (if missing)
#   2. pip install everything in requirements.txt except mmcv
#   3. mmcv 2.1.0 with compiled ops, built from its source distribution against the installed
#      torch. mmcv's setup.py forces -std=c++17 while torch >= 2.10 headers need C++20, so the
#      unpacked source is patched to -std=c++20 before building. The wheel is cached in
#      $FLSL_CACHE_DIR (default ~/.cache/flsl-bench) under a key made of the python, torch and
#      CUDA versions, so later set-ups (and new checkouts) reuse it in seconds.
#   4. mmdet, mmsegmentation, then this project itself in editable mode (`pip install -e .`), so
#      `import pretrain` / `import benchmarks.dense` work from any folder and the configs'
#      custom_imports resolve for MMDetection's and MMSegmentation's own tools too.
#
# GPU users: run this on a machine with CUDA and nvcc; torch.cuda.is_available() makes mmcv build
# its CUDA kernels (or set FORCE_CUDA=1, and TORCH_CUDA_ARCH_LIST="8.0;9.0" for the cards you need).
# The cache key then contains the CUDA version, so CPU and CUDA wheels never mix.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
CACHE="${FLSL_CACHE_DIR:-$HOME/.cache/flsl-bench}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.flsl-setup-stamp"
want_stamp="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" "$0" | sha256sum | cut -c1-16)"

log() { echo "[setup_env] $*" >&2; }

# The leaderboard's browser tests drive a real headless Chromium (Debian's packages); checked on
# every call, installed only when missing (as root, one installer at a time), else a clear message.
no_browser() { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }
if no_browser; then
  exec 8>"$ROOT/.venv.lock"
  flock 8
  if no_browser && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium and chromium-driver (apt-get) for the leaderboard's browser tests"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || log "could not install chromium / chromium-driver: the browser tests fail under CI without them"
  elif no_browser; then
    log "chromium / chromium-driver missing: install them (sudo apt-get install chromium chromium-driver) for the leaderboard's browser tests"
  fi
  flock -u 8
  exec 8>&-
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
  exit 0
fi

# One set-up at a time (tests and tools may start several at once): wait for the lock, then
# re-check, since the holder may have finished the job.
exec 9>"$ROOT/.venv.lock"
if ! flock -n 9; then
  log "another set-up is running; waiting for it"
  flock 9
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --progress-bar off --upgrade pip >/dev/null 2>&1 || true

log "installing build tools and torch (from requirements.txt)"
"$VPY" -m pip install -q --progress-bar off wheel
req_no_mm="$(mktemp)"
grep -vE '^\s*(mmdet|mmsegmentation)\b' "$ROOT/requirements.txt" > "$req_no_mm"
"$VPY" -m pip install -q --progress-bar off -r "$req_no_mm"
rm -f "$req_no_mm"

if ! "$VPY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  key="$("$VPY" - <<'PYEOF'
import sys, torch
cuda = torch.version.cuda if (torch.cuda.is_available()) else None
import os
if os.environ.get("FORCE_CUDA") == "1":
    cuda = torch.version.cuda
print(f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__.split('+')[0]}-" + (f"cu{cuda}" if cuda else "cpu"))
PYEOF
)"
  wheel_dir="$CACHE/mmcv-$MMCV_VERSION/$key"
  mkdir -p "$wheel_dir"
  whl="$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$whl" ]; then
    log "no cached mmcv wheel for $key: building mmcv $MMCV_VERSION from source (about 18 min on 2 cores)"
    build="$(mktemp -d)"
    # mmcv's setup.py imports pkg_resources, gone from setuptools >= 70, while torch 2.14 asks
    # for setuptools >= 77: downgrade only for the build, restore right after.
    st_version="$("$VPY" -c 'import setuptools; print(setuptools.__version__)')"
    "$VPY" -m pip install -q --progress-bar off "setuptools<70" 2>&1 | grep -v "dependency conflicts\|requires setuptools\|resolver does not" || true
    "$VPY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q 'std=c++20' "$src/setup.py" || { log "could not patch the C++ standard in mmcv's setup.py"; exit 1; }
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$VPY" -m pip wheel -q --no-build-isolation --no-deps . -w "$build/dist")
    tmp="$wheel_dir/.partial-$$"
    cp "$build"/dist/mmcv-*.whl "$tmp"
    mv "$tmp" "$wheel_dir/$(basename "$build"/dist/mmcv-*.whl)"
    rm -rf "$build"
    "$VPY" -m pip install -q --progress-bar off "setuptools==$st_version"
    whl="$(ls "$wheel_dir"/mmcv-*.whl | head -n1)"
  else
    log "reusing cached mmcv wheel $(basename "$whl") ($key)"
  fi
  "$VPY" -m pip install -q --progress-bar off --no-deps "$whl"
fi

log "installing mmdet and mmsegmentation"
"$VPY" -m pip install -q --progress-bar off -r "$ROOT/requirements.txt"
log "installing this project (pip install -e .: core, pretrain, benchmarks, speed)"
"$VPY" -m pip install -q --progress-bar off --no-deps --no-build-isolation -e "$ROOT"
"$VPY" -c "import torch, timm, mmcv, mmcv.ops, mmdet, mmseg; from mmcv.ops import nms, roi_align" \
  || { log "environment check failed"; exit 1; }
echo "$want_stamp" > "$STAMP"
log "ready: $("$VPY" -c 'import torch, mmcv, mmdet, mmseg, timm; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, timm {timm.__version__}")')"
