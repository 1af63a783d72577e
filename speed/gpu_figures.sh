#!/usr/bin/env bash
# The GPU figures of the README's Speed section in one prepared run: the trainer's step for the
# ViT-S/16 recipe eager and compiled (images/s, model FLOP utilisation), then a short pretraining
# run on generated images with the photometric chain on the GPU (the trainer's own log lines).
#
# Meant for a machine with one NVIDIA GPU, PyTorch and timm but no network and no .venv (a lent
# GPU machine). The few pure-Python packages it lacks travel as wheels:
#
#   speed/gpu_figures.sh --fetch-wheels      # here, with network: writes .whl/ (git-ignored)
#   speed/gpu_figures.sh [SECTIONS]          # there, from the repository root, with .whl/ copied
#                                            # along (an ignored folder: name it when copying)
#
# SECTIONS: any of eager, compiled, trainer (default: all three; their time limits add up to
# 9.2 minutes, plus writing 2048 small images; run the sections in two commands where one command
# may last 10 minutes at most). Not yet run on a GPU.
# Outputs go to $OUT (default ./gpu_figures) as gpu.log. DEVICE=cpu BATCH=4 STEPS=1 runs the
# same commands on a CPU, small, to check the script itself.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS=(mmengine==0.10.7 addict==2.4.0 yapf==0.43.0 termcolor==3.3.0 platformdirs==4.14.8)

if [ "${1:-}" = "--fetch-wheels" ]; then
  exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
fi

PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
BATCH="${BATCH:-64}"
STEPS="${STEPS:-20}"
OUT="${OUT:-$ROOT/gpu_figures}"
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
SECTIONS="${*:-eager compiled trainer}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ! "$PY" -c "import mmengine" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/flsl-site .whl/*.whl || exit 2
  export PYTHONPATH="$PYTHONPATH:/tmp/flsl-site"
fi

say() { echo "== $*" | tee -a "$LOG"; }
run() {  # run LIMIT_SECONDS CMD...: the command's output into the log; a timeout is reported
  local limit="$1"; shift
  say "$* (limit ${limit} s)"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc="${PIPESTATUS[0]}"
  [ "$rc" = 0 ] || say "exit status $rc$([ "$rc" = 124 ] && echo ' (time limit)')"
}

say "$(date -u +%FT%TZ) $(hostname)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
  --format=csv,noheader | tee -a "$LOG"
"$PY" -c "import torch, timm, numpy; print('torch', torch.__version__, 'timm', timm.__version__, 'numpy', numpy.__version__)" \
  2>&1 | tee -a "$LOG"

BENCH=("$PY" speed/bench_pretrain.py --device "$DEVICE" --batch "$BATCH" --steps "$STEPS")
for s in $SECTIONS; do
  case "$s" in
    eager)    run 90 "${BENCH[@]}" ;;
    compiled) run 150 "${BENCH[@]}" --compile blocks
              run 170 "${BENCH[@]}" --compile model --compile-mode reduce-overhead ;;
    trainer)
      data="$OUT/images"
      "$PY" -c "from synthetic.images import write_image_folder as w; w('$data', n_images=$((BATCH * 32)), size=320)"
      # two epochs of 32 iterations; schedules shortened to fit, nothing saved but the end state
      run 140 "$PY" tools/pretrain_flsl.py configs/pretrain/flsl_vits16_in1k.py --no-resume \
        --work-dir "$OUT/pretrain" --cfg-options "data.root=$data" "data.batch_size_per_gpu=$BATCH" \
        "data.num_workers=$(( $(nproc) > 12 ? 12 : $(nproc) ))" data.views.photometric_on_device=True \
        train.epochs=2 train.log_interval=8 train.saveckp_freq=0 optim.warmup_epochs=1 \
        loss.warmup_teacher_temp_epochs=1 ;;
    *) say "unknown section $s (eager, compiled, trainer)"; exit 2 ;;
  esac
done
say "done; log in $LOG"
