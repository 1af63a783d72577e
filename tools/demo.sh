#!/usr/bin/env bash
# The end-to-end demo on generated data (2 CPU cores, about 11 minutes, no downloads):
# FLSL pretraining of a small ViT -> export -> Mask R-CNN fine-tuning + COCO evaluation and
# DAVIS-style label propagation + J&F, for the pretrained and the randomly initialised backbone
# with the same budget -> a table (WORK/results.md, WORK/results.json) and figures.
#   tools/demo.sh [--quick] [--work-dir DIR] [--fresh] [--no-figures]
# Sets up .venv on first use; re-running resumes after the last finished stage.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m benchmarks.reproduce.demo "$@"
