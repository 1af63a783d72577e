#!/usr/bin/env bash
# Train a dense-prediction config on GPUS processes of this node (torchrun), as MMDetection's
# dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [--work-dir DIR] [--amp] [--resume [CKPT]] [--cfg-options k=v ...]
# GPUS=1 (one node) runs tools/train.py directly, without a launcher: that also works on CPU.
# Several nodes: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each node.
# Sets up .venv on first use (tools/setup_env.sh, a no-op when the environment is ready).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [train.py arguments]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="$1"
GPUS="$2"
shift 2
exec bash "$ROOT/tools/launch.sh" "$GPUS" "$ROOT/tools/train.py" "$CONFIG" "$@"
