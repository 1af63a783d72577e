"""Checkpoints: SIGKILL + resume is bitwise exact, saves are atomic, a NaN loss stops cleanly."""
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pretrain import checkpoint as ckpt_mod
from pretrain.checkpoint import save_atomic
from pretrain.trainer import NonFiniteLossError, Trainer

from .conftest import write_config


def _train_cmd(repo_root, config, work_dir):
    return [sys.executable, str(repo_root / "tools" / "pretrain_flsl.py"), str(config), "--work-dir", str(work_dir)]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "2"}


def test_sigkill_then_resume_is_bitwise_identical(tiny_cfg, tmp_path, repo_root):
    tiny_cfg.train.epochs = 3                  # 16 images / batch 4 = 4 iterations per epoch -> 12
    tiny_cfg.train.checkpoint_interval = 2
    tiny_cfg.data.num_workers = 1              # exercise worker processes too
    config = write_config(tiny_cfg, tmp_path / "cfg.py")
    full = tmp_path / "full"
    subprocess.run(_train_cmd(repo_root, config, full), check=True, env=_env(), capture_output=True, timeout=600)

    broken = tmp_path / "broken"
    proc = subprocess.Popen(_train_cmd(repo_root, config, broken), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed_at = None
    for line in proc.stdout:  # kill as soon as the checkpoint of iteration 6 is on disk (mid-epoch 1)
        if "saved checkpoint" in line and "(iteration 6)" in line:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = 6
            break
    proc.wait(timeout=60)
    assert killed_at == 6 and proc.returncode == -signal.SIGKILL
    state = torch.load(broken / "latest.pth", weights_only=True)
    assert state["iteration"] == 6
    out = subprocess.run(_train_cmd(repo_root, config, broken), check=True, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert "resumed from" in out.stdout and "iteration 6" in out.stdout

    a = torch.load(full / "latest.pth", weights_only=True)
    b = torch.load(broken / "latest.pth", weights_only=True)
    assert a["iteration"] == b["iteration"] == 12
    for part in ("student", "teacher"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after resume"
    # the run really trained: weights moved away from the initial ones
    assert not torch.equal(a["student"]["head.mlp.0.weight"], state["student"]["head.mlp.0.weight"])


def test_interrupted_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    save_atomic({"w": torch.ones(3), "iteration": 1}, path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    real_save = torch.save

    def crash_mid_write(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(10)      # a partial file on disk ...
        raise KeyboardInterrupt  # ... and the process is interrupted

    monkeypatch.setattr(ckpt_mod.torch, "save", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"w": torch.zeros(3), "iteration": 2}, path)
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert torch.load(path, weights_only=True)["iteration"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pth", "latest.pth.sha256"]  # no temporary left behind


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg, tmp_path):
    tiny_cfg.train.checkpoint_interval = 2
    tiny_cfg.train.log_interval = 1
    trainer = Trainer(tiny_cfg, tmp_path / "wd", resume=None)
    real = trainer.criterion.forward

    def poisoned(*args, **kwargs):
        total, parts = real(*args, **kwargs)
        if trainer.iteration >= 3:     # the 4th step's loss is NaN
            total = total * float("nan")
        return total, parts

    trainer.criterion.forward = poisoned
    with pytest.raises(NonFiniteLossError, match=r"iteration 4 .*untouched.*iteration 2"):
        trainer.train()
    state = torch.load(tmp_path / "wd" / "latest.pth", weights_only=True)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["student"].values())
