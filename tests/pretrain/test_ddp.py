"""2 gloo processes with batch b give the same loss and gradients as 1 process with batch 2b."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from .conftest import write_config

WORKER = Path(__file__).with_name("ddp_grad_worker.py")


def _run(cfg, tmp_path, name, nproc, repo_root):
    config = write_config(cfg, tmp_path / f"{name}.py")
    out = tmp_path / f"{name}.pt"
    env = {**os.environ, "REPO_ROOT": str(repo_root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(WORKER), str(config), str(out)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_port=29533"] + cmd[1:]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


def test_ddp_two_processes_equal_single_process_double_batch(tiny_cfg, tmp_path, repo_root):
    tiny_cfg.model.drop_path_rate = 0.0  # drop-path draws differ per rank by design
    tiny_cfg.data.batch_size_per_gpu = 4
    ddp = _run(tiny_cfg, tmp_path, "ddp", 2, repo_root)
    tiny_cfg.data.batch_size_per_gpu = 8
    single = _run(tiny_cfg, tmp_path, "single", 1, repo_root)
    assert single["n_images"] == 2 * ddp["n_images"] == 8
    torch.testing.assert_close(ddp["loss"], single["loss"], atol=1e-5, rtol=1e-5)
    assert set(ddp["grads"]) == set(single["grads"])
    worst = max(float((ddp["grads"][k] - single["grads"][k]).abs().max() /
                      (single["grads"][k].abs().max() + 1e-12)) for k in single["grads"])
    assert worst < 1e-4, f"largest relative gradient difference {worst}"
    # and the gradient is not trivially zero
    assert sum(float(g.abs().sum()) for g in single["grads"].values()) > 0
