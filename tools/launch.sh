#!/usr/bin/env bash
# The one launcher of tools/pretrain.sh, tools/dist_train.sh and tools/dist_test.sh:
#   tools/launch.sh GPUS SCRIPT [SCRIPT arguments]
# GPUS > 1 or NNODES > 1: torchrun (NNODES, NODE_RANK, MASTER_ADDR, PORT as MMDetection's scripts)
# with `--launcher pytorch` appended; otherwise SCRIPT runs directly (also on CPU).
# Sets up .venv on first use (tools/setup_env.sh, a no-op when the environment is ready).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPUS="$1"
SCRIPT="$2"
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"

if [ "$GPUS" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" --nproc_per_node="$GPUS" \
    "$SCRIPT" "$@" --launcher pytorch
fi
exec "$PY" "$SCRIPT" "$@"
