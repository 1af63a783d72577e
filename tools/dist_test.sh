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
exec bash "$ROOT/tools/launch.sh" "$GPUS" "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" "$@"
