"""The distributed state of this process, read one way everywhere, and the one place a process
group is started from torchrun's environment."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Processes in the group (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """This process's rank on its node (torchrun's ``LOCAL_RANK``; 0 when not launched by it)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env() -> bool:
    """Start the process group when launched by torchrun with more than one process
    (``WORLD_SIZE`` > 1): NCCL on GPUs (each process on its ``LOCAL_RANK`` device), gloo on CPU.
    Returns whether a group is running; a second call changes nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend)
    return True


__all__ = ["is_distributed", "rank", "world_size", "local_rank", "init_from_env"]
