#!/usr/bin/env bash
# FLSL pretraining.
#   tools/pretrain.sh                                   # tiny default on generated images (CPU, minutes)
#   tools/pretrain.sh CONFIG [GPUS] [--cfg-options k=v ...] [--work-dir DIR] [--resume PATH]
# GPUS > 1 launches torchrun on this node; several nodes: set NNODES, NODE_RANK, MASTER_ADDR, PORT
# on each node (tools/launch.sh, shared with dist_train.sh). Sets up .venv on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="configs/pretrain/flsl_tiny_synthetic.py"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then CONFIG="$1"; shift; fi
GPUS=1
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then GPUS="$1"; shift; fi
exec bash "$ROOT/tools/launch.sh" "$GPUS" "$ROOT/tools/pretrain_flsl.py" "$CONFIG" "$@"
