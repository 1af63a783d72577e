"""A DINOv2 hub file (ViT-S/14 with registers, two blocks) through the tools as a user runs them:
DAVIS propagation (tools/davis_propagate.py) with features equal to DINOv2's own forward, and
Mask R-CNN training and testing on the generated COCO set (tools/dist_train.sh, dist_test.sh)
with the backbone's architecture read from the checkpoint and the stride-14 maps brought to the
detector's strides 4/8/16/32."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.davis.features import load_extractor, read_frame
from speed.reference.families import dinov2_forward
from speed.reference.vit import relative_difference
from synthetic.davis import write_davis
from tests.benchmarks.conftest import logged_scalars, run_tool
from tests.pretrain.family_releases import dinov2_hub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dinov2(tmp_path_factory):
    return dinov2_hub(tmp_path_factory.mktemp("dinov2"), registers=True, width=384)


def test_davis_propagation_with_a_dinov2_file(dinov2, tmp_path, repo_root):
    path, state = dinov2
    davis = write_davis(tmp_path / "DAVIS", n_sequences=1, frames=(4, 4), size=(64, 96), seed=3)
    out = tmp_path / "pred"
    proc = run_tool(repo_root, "davis_propagate.py", "--config", "configs/davis/dinov2_vits14.py",
                    "--checkpoint", path, "--data-root", davis.root, "--out", out, "--short-side", "56",
                    "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "patch 14, width 384" in proc.stdout
    frames = sorted((davis.root / "JPEGImages" / "480p").rglob("*.jpg"))
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == len(frames) and np.asarray(Image.open(pngs[-1])).shape == (64, 96)
    # the features it propagated with are DINOv2's (registers in attention, not in the output)
    image, _ = read_frame(frames[0], short_side=56, multiple=14)
    assert image.shape[-2:] == (56, 84)
    extractor = load_extractor(path, "vit_small", 14)
    want = dinov2_forward(state, image[None], heads=6)[1]
    assert relative_difference(extractor(image[None]), want) <= 1e-5


def test_mask_rcnn_trains_and_tests_with_a_dinov2_file(dinov2, tmp_path_factory, repo_root):
    pytest.importorskip("mmdet")
    from synthetic.coco import write_coco
    path, _ = dinov2
    coco = write_coco(tmp_path_factory.mktemp("coco") / "coco", n_train=4, n_val=2, height=128, width=160, seed=0)
    work = tmp_path_factory.mktemp("work_dinov2")
    opts = ["--cfg-options", f"data_root={coco}/", f"model.backbone.init_cfg.checkpoint={path}",
            "model.backbone.arch=None", "model.backbone.out_indices=(0,1,0,1)",
            "model.neck.in_channels=[384,384,384,384]"]
    config = "tests/benchmarks/dense/configs/tiny_mask_rcnn.py"
    proc = run_tool(repo_root, "dist_train.sh", config, 1, "--work-dir", work, *opts)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "format dinov2: dinov2 family" in log and "4 register tokens" in log and "patch 14" in log
    losses = [r["loss"] for r in logged_scalars(work) if "loss" in r]
    assert losses and all(math.isfinite(v) for v in losses)
    test = run_tool(repo_root, "dist_test.sh", config, work / "epoch_1.pth", 1, "--work-dir", work / "test",
                    *opts)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert "bbox AP " in test.stdout and "segm AP " in test.stdout
