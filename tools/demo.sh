#!/usr/bin/env bash
# The end-to-end demo on generated data (2 CPU cores: 7 minutes when quiet, no downloads):
# FLSL pretraining of a small ViT -> export -> frozen-encoder probes (linear segmentation over
# seeds, patch grouping), Mask R-CNN fine-tuning + COCO evaluation over 3 seeds, DAVIS-style label
# propagation + J&F, for the pretrained and the randomly initialised encoder with the same budget
# -> a table with each number's spread and a summary that claims only differences outside their
# 95% interval (WORK/results.md with the figures embedded, WORK/results.json) and figures; every
# run goes into the results store and the leaderboard site is built in WORK/leaderboard/.
#   tools/demo.sh [--quick] [--work-dir DIR] [--fresh] [--no-figures] [--store PATH]
# Sets up .venv on first use; re-running resumes after the last finished stage.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m benchmarks.demo.run "$@"
