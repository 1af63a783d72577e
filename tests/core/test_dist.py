"""core/dist.py: the distributed state read one way everywhere, and the process group started
from torchrun's environment, in two real gloo processes."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core import dist as dist_state


def test_single_process_without_torchrun(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert dist_state.init_from_env() is False
    assert (dist_state.is_distributed(), dist_state.rank(), dist_state.world_size(), dist_state.local_rank()) \
        == (False, 0, 1, 0)


def _worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    try:
        assert dist_state.init_from_env() is True
        assert dist_state.init_from_env() is True          # a second call starts nothing new
        x = torch.tensor([float(rank + 1)])
        dist.all_reduce(x)                                  # the group really connects both processes
        queue.put((dist_state.rank(), dist_state.world_size(), dist_state.local_rank(),
                   dist_state.is_distributed(), float(x)))
        dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_processes_see_their_rank_and_the_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(port, queue), nprocs=2, join=True, start_method="spawn")
    got = sorted(queue.get() for _ in range(2))
    assert got == [(0, 2, 0, True, 3.0), (1, 2, 1, True, 3.0)]
