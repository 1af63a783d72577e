#!/usr/bin/env bash
# FLSL pretraining under SLURM (one task per GPU), e.g.
#   GPUS=16 GPUS_PER_NODE=8 tools/slurm_pretrain.sh PARTITION configs/pretrain/flsl_vits16_in1k.py [args]
set -euo pipefail
PARTITION=$1; CONFIG=$2; shift 2
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-10}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
srun -p "$PARTITION" --job-name=flsl --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
  --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
  bash -c 'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID
           export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1) MASTER_PORT=${PORT:-29511}
           exec '"$ROOT"'/.venv/bin/python '"$ROOT"'/tools/pretrain_flsl.py "$@"' _ "$CONFIG" "$@"
