"""End to end on generated ADE20K-layout data: tools/dist_train.sh trains the real Semantic FPN
config (shrunk to a tiny ViT) on CPU, --resume continues it from our own checkpoint (read with
weights_only=True), and tools/dist_test.sh reports the mIoU a plain numpy computation gives."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from synthetic.ade import write_ade
from tests.benchmarks.conftest import logged_scalars, run_tool

pytestmark = pytest.mark.slow
CONFIG = "tests/benchmarks/dense/configs/tiny_semfpn.py"
N_CLASSES = 150


def plain_miou(pred_dir, gt_dir) -> float:
    """mIoU in percent over classes present in prediction or ground truth (ADE convention: 0 is
    unlabelled and ignored, k is class k-1)."""
    inter, union = np.zeros(N_CLASSES), np.zeros(N_CLASSES)
    gts = sorted(gt_dir.glob("*.png"))
    assert gts
    for gt_path in gts:
        gt = np.array(Image.open(gt_path)).astype(np.int64) - 1
        pred = np.array(Image.open(pred_dir / gt_path.name)).astype(np.int64) - 1
        assert pred.shape == gt.shape
        keep = gt >= 0
        gt, pred = gt[keep], pred[keep]
        hit = np.bincount(gt[gt == pred], minlength=N_CLASSES)[:N_CLASSES]
        inter += hit
        union += (np.bincount(pred, minlength=N_CLASSES)[:N_CLASSES]
                  + np.bincount(gt, minlength=N_CLASSES)[:N_CLASSES] - hit)
    present = union > 0
    return float(100 * np.mean(inter[present] / union[present]))


@pytest.fixture(scope="module")
def ade(tmp_path_factory):
    return write_ade(tmp_path_factory.mktemp("ade") / "ade", n_train=8, n_val=4, height=96, width=128, seed=1)


def test_semantic_fpn_train_resume_and_miou(ade, tiny16_ckpt, tmp_path, repo_root):
    work = tmp_path / "work"
    opts = ["--cfg-options", f"data_root={ade}/", f"model.backbone.init_cfg.checkpoint={tiny16_ckpt}"]
    proc = run_tool(repo_root, "dist_train.sh", CONFIG, 1, "--work-dir", work, *opts)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / "iter_4.pth").is_file()
    assert "FLSLViT: loaded all 53 encoder tensors" in proc.stdout + proc.stderr
    losses = [r["loss"] for r in logged_scalars(work) if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)

    # resume from the work dir's latest checkpoint (optimizer, schedulers, message hub)
    proc = run_tool(repo_root, "dist_train.sh", CONFIG, 1, "--work-dir", work, "--resume", *opts,
                    "train_cfg.max_iters=6", "train_cfg.val_interval=6", "default_hooks.checkpoint.interval=6")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "resumed epoch: 0, iter: 4" in proc.stdout + proc.stderr
    steps = [r["step"] for r in logged_scalars(work) if "loss" in r]
    assert steps == [5, 6] and (work / "iter_6.pth").is_file()

    out = work / "test"
    proc = run_tool(repo_root, "dist_test.sh", CONFIG, work / "iter_6.pth", 1, "--work-dir", out,
                    "--cfg-options", f"data_root={ade}/", f"test_evaluator.output_dir={out / 'pred'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "test_metrics.json").read_text())
    expected = plain_miou(out / "pred", ade / "annotations" / "validation")
    assert metrics["mIoU"] == pytest.approx(expected, abs=0.006)  # MMSegmentation rounds to 0.01
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("mIoU "))
    assert line.startswith(f"mIoU {metrics['mIoU']:.2f}  aAcc ")
