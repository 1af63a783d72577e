"""The UAVDT Faster R-CNN config trains and evaluates on CPU with the real MMDetection pipeline:
synthetic release tree -> tools/uavdt2coco.py -> tools/train.py -> tools/test.py, with the
config overridden to a tiny ViT (depth 2) and 160x96 images."""
import json
import math

import pytest
import torch

from synthetic.uavdt import write_uavdt_tree
from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder
from tests.benchmarks.conftest import logged_scalars, run_tool

pytest.importorskip("mmdet")

TINY_CONFIG = """
_base_ = [{base!r}]
data_root = {root!r}
model = dict(
    backbone=dict(arch='vit_tiny_patch16_224', encoder_kwargs=dict(depth=2),
                  out_indices=(0, 1, 1, 1), drop_path_rate=0.0,
                  init_cfg=dict(type='Pretrained', checkpoint={ckpt!r})),
    neck=dict(in_channels=[192, 192, 192, 192]),
    test_cfg=dict(rcnn=dict(score_thr=0.0)))  # untrained heads: keep every detection
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(160, 96), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/uavdt_test.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), visualization=dict(draw=False))
"""


METRIC_KEYS = (["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m",
                "bbox_mAP_l", "bbox_mAP_70"]
               + [f"{c}_precision" for c in ("car", "truck", "bus")]
               + [f"{c}_mAP_70" for c in ("car", "truck", "bus")])


def _check_metrics(metrics: dict) -> None:
    for key in METRIC_KEYS:
        value = metrics[f"coco/{key}"]
        assert math.isnan(value) or value == -1 or 0 <= value <= 1, (key, value)
    assert 0 <= metrics["coco/bbox_mAP"] <= 1 and 0 <= metrics["coco/bbox_mAP_70"] <= 1


def test_uavdt_config_trains_and_evaluates(tmp_path, repo_root):
    tree = write_uavdt_tree(tmp_path / "uavdt", train=("M0101", "M0201"), test=("M0203",),
                            n_frames=4, size=(160, 96), seed=11)
    proc = run_tool(repo_root, "uavdt2coco.py", "--data-root", tree.root,
                    "--out", tree.root / "annotations", "--no-progress")
    assert proc.returncode == 0, proc.stderr

    torch.manual_seed(0)
    encoder = build_encoder("vit_tiny_patch16_224", depth=2)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))  # weights no fresh initialisation would have
    ckpt = tmp_path / "tiny.safetensors"
    export_encoder(encoder, ckpt)

    config = tmp_path / "faster_rcnn_tiny_uavdt.py"
    config.write_text(TINY_CONFIG.format(
        base=str(repo_root / "configs/uavdt/faster_rcnn_flsl_vits16.py"),
        root=f"{tree.root}/", ckpt=str(ckpt)))
    work = tmp_path / "work"
    proc = run_tool(repo_root, "dist_train.sh", config, 1, "--work-dir", work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = work / "epoch_1.pth"
    assert trained.is_file()
    # 4 iterations (2 sequences x 4 frames, 2 per batch) with finite losses, then the test split
    records = logged_scalars(work)
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    val = [r for r in records if "coco/bbox_mAP_70" in r]
    assert len(val) == 1
    _check_metrics(val[0])
    assert "bbox AP at IoU 0.7 (maxDets=100)" in (proc.stdout + proc.stderr)

    # the encoder was loaded from the export and then trained: close to it, but not equal
    state = torch.load(trained, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in encoder.state_dict().items():
        diff = (state[f"backbone.encoder.{key}"] - value).abs().max().item()
        assert diff < 1e-2, key
    moved = max((state[f"backbone.encoder.{k}"] - v).abs().max().item()
                for k, v in encoder.state_dict().items())
    assert moved > 0
    assert state["roi_head.bbox_head.fc_cls.weight"].shape[0] == 4  # 3 classes + background

    out = tmp_path / "test"
    proc = run_tool(repo_root, "dist_test.sh", config, trained, 1, "--work-dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "test_metrics.json").read_text())
    _check_metrics(metrics)
    assert metrics["coco/bbox_mAP_70"] == val[0]["coco/bbox_mAP_70"]  # same weights, same data
