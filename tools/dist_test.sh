#!/usr/bin/env bash
# Evaluate a checkpoint of tools/train.py on GPUS processes of this node (torchrun), as
# MMDetection's dist_test.sh; prints COCO bbox / segm AP or mIoU:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [--work-dir DIR] [--cfg-options k=v ...]
# GPUS=1 (one node) runs tools/test.py directly, without a launcher: that also works on CPU.
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each node.
# Sets up .venv on first use (tools/setup_env.sh, a no-op when the environment is ready).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py arguments]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="$1"
CHECKPOINT="$2"
GPUS="$3"
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$GPUS" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" --nproc_per_node="$GPUS" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
fi
exec "$PY" "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" "$@"
