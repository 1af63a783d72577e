#!/usr/bin/env bash
# FLSL pretraining.
#   tools/pretrain.sh                                   # tiny default on generated images (CPU, minutes)
#   tools/pretrain.sh CONFIG [GPUS] [--cfg-options k=v ...] [--work-dir DIR] [--resume PATH]
# GPUS > 1 launches torchrun on this node; several nodes: set NNODES, NODE_RANK, MASTER_ADDR, PORT
# on each node (as MMDetection's dist_train.sh). Sets up .venv on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
cd "$ROOT"

CONFIG="configs/pretrain/flsl_tiny_synthetic.py"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then CONFIG="$1"; shift; fi
GPUS=1
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then GPUS="$1"; shift; fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29511}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

if [ "$GPUS" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" --nproc_per_node="$GPUS" \
    tools/pretrain.py "$CONFIG" "$@"
fi
exec "$PY" tools/pretrain.py "$CONFIG" "$@"
