"""The plugin inside OpenMMLab's own entry points: MMDetection's and MMSegmentation's
``tools/train.py`` / ``tools/test.py`` (the copies their wheels ship under ``.mim/tools``, which
``mim train`` runs) find ``benchmarks.dense`` through the configs' ``custom_imports`` from any
working directory, move the data root through the documented environment variable, and resume
and test from MMEngine checkpoints under torch's ``weights_only`` loading (the allow-list that
importing the plugin registers)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic.ade import write_ade
from synthetic.coco import write_coco

pytestmark = pytest.mark.slow


def framework_tool(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} is not installed"
    path = Path(spec.origin).parent / ".mim" / "tools" / name
    assert path.is_file(), f"{package} ships no {name} at {path}"
    return path


def run(tool: Path, *args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    # a clean environment: no PYTHONPATH, started outside the repository
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(tool), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_mmdetection_train_resume_and_test(tmp_path, repo_root, tiny16_ckpt):
    data = write_coco(tmp_path / "coco", n_train=4, n_val=2, height=128, width=160, seed=0)
    config = repo_root / "tests/benchmarks/dense/configs/tiny_mask_rcnn.py"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {"COCO_ROOT": f"{data}/"}
    work = tmp_path / "work"
    opts = ["--cfg-options", f"model.backbone.init_cfg.checkpoint={tiny16_ckpt}",
            "train_dataloader.batch_size=2"]
    train = framework_tool("mmdet", "train.py")
    proc = run(train, config, "--work-dir", work, *opts, cwd=elsewhere, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "FLSLViT: loaded all 53 encoder tensors" in log
    assert (work / "epoch_1.pth").is_file()

    # resume for one more epoch: MMEngine reads epoch_1.pth with torch.load (weights_only)
    proc = run(train, config, "--work-dir", work, "--resume", *opts, "train_cfg.max_epochs=2",
               cwd=elsewhere, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "resumed epoch: 1" in log
    assert (work / "epoch_2.pth").is_file()

    proc = run(framework_tool("mmdet", "test.py"), config, work / "epoch_2.pth",
               "--work-dir", work / "test", cwd=elsewhere, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "coco/bbox_mAP:" in log and "coco/segm_mAP:" in log
    # the data came from the moved root, not from the config's default
    assert str(data) in log


def test_mmsegmentation_train_from_another_folder(tmp_path, repo_root, tiny16_ckpt):
    data = write_ade(tmp_path / "ade", n_train=4, n_val=2, seed=0)
    config = repo_root / "tests/benchmarks/dense/configs/tiny_semfpn.py"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    work = tmp_path / "work"
    proc = run(framework_tool("mmseg", "train.py"), config, "--work-dir", work, "--cfg-options",
               f"model.backbone.init_cfg.checkpoint={tiny16_ckpt}", cwd=elsewhere,
               env={"ADE20K_ROOT": f"{data}/"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "FLSLViT: loaded all 53 encoder tensors" in log
    assert "mIoU" in log
