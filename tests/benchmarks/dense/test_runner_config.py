"""benchmarks/dense/runner.py (config preparation) and benchmarks/dense/mm_checkpoint.py (safe loading)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from benchmarks.dense.mm_checkpoint import allow_mmengine_checkpoints
from benchmarks.dense.runner import (ConfigError, load_config, prepare_test, prepare_train, reroot,
                                     select_precision, summarize)
from tests.benchmarks.conftest import write_release

COCO_CFG = "configs/coco/mask_rcnn_flsl_vits16.py"
ADE_CFG = "configs/ade20k/semfpn_flsl_vits16_40k.py"


def test_reroot_moves_only_paths_under_the_old_root():
    value = {"a": "data/coco/", "b": ["data/coco/annotations/x.json", "data/cocoa/y"], "c": ("data/coco",),
             "d": 3, "e": {"f": "other/data/coco/z"}}
    out = reroot(value, "data/coco/", "/srv/c")
    assert out == {"a": "/srv/c/", "b": ["/srv/c/annotations/x.json", "data/cocoa/y"], "c": ("/srv/c",),
                   "d": 3, "e": {"f": "other/data/coco/z"}}


@pytest.mark.parametrize("path", [COCO_CFG, ADE_CFG])
def test_data_root_override_reaches_every_dataset_path(path, repo_root):
    cfg = load_config(repo_root / path, {"data_root": "/data/x"})
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        assert cfg[key].dataset.data_root == "/data/x/"
    text = cfg.pretty_text
    assert "data/coco/" not in text and "data/ade/" not in text
    if "coco" in path:
        assert cfg.val_evaluator.ann_file == "/data/x/annotations/instances_val2017.json"
        assert cfg.test_evaluator.ann_file == "/data/x/annotations/instances_val2017.json"


def test_config_errors_name_the_file(tmp_path, repo_root):
    with pytest.raises(ConfigError, match=f"{tmp_path / 'nope.py'}: config file not found"):
        load_config(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("model = dict(\n")
    with pytest.raises(ConfigError, match=f"{bad}: cannot be read"):
        load_config(bad)
    other = tmp_path / "other.py"
    other.write_text("default_scope = 'mmpose'\n")
    with pytest.raises(ConfigError, match="default_scope must be one of"):
        load_config(other)


def test_prepare_train_and_test(repo_root, tmp_path, tiny16_ckpt):
    ckpt = tmp_path / "enc.safetensors"
    ckpt.write_bytes(tiny16_ckpt.read_bytes())
    cfg = load_config(repo_root / COCO_CFG, {"model.backbone.init_cfg.checkpoint": str(ckpt),
                                             "model.backbone.arch": None})   # a tiny encoder: arch from the file
    launcher = "pytorch" if torch.cuda.is_available() else "none"
    prepare_train(cfg, COCO_CFG, None, launcher, amp=True, resume="auto", check_data=False)
    assert cfg.work_dir.endswith("work_dirs/mask_rcnn_flsl_vits16") and cfg.resume and cfg.load_from is None
    assert cfg.launcher == launcher
    # --amp: fp16 AmpOptimWrapper on CUDA, ignored (fp32) without it
    assert cfg.optim_wrapper.type == ("AmpOptimWrapper" if torch.cuda.is_available() else "OptimWrapper")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="multi-process runs need CUDA devices"):
            prepare_train(cfg, COCO_CFG, None, "pytorch", check_data=False)
    with pytest.raises(ConfigError, match="checkpoint to resume from not found"):
        prepare_train(cfg, COCO_CFG, None, resume=str(tmp_path / "absent.pth"), check_data=False)
    cfg = load_config(repo_root / ADE_CFG)
    prepare_test(cfg, ADE_CFG, str(ckpt), str(tmp_path / "w"), check_data=False)
    assert cfg.load_from == str(ckpt) and cfg.model.backbone.init_cfg is None and cfg.work_dir == str(tmp_path / "w")
    with pytest.raises(ConfigError, match="checkpoint not found"):
        prepare_test(cfg, ADE_CFG, str(tmp_path / "absent.pth"), check_data=False)


def test_summary_lines():
    lines = summarize({"coco/bbox_mAP": 0.4491, "coco/bbox_mAP_50": 0.66, "coco/bbox_mAP_75": 0.49,
                       "coco/segm_mAP": 0.408, "coco/segm_mAP_50": 0.63, "coco/segm_mAP_75": 0.44})
    assert lines == ["bbox AP 44.9  AP50 66.0  AP75 49.0", "segm AP 40.8  AP50 63.0  AP75 44.0"]
    assert summarize({"mIoU": 41.234, "aAcc": 80.0}) == ["mIoU 41.23  aAcc 80.00"]


# ---------------------------------------------------------------- weights_only loading
class _Sneaky:
    """Pickles as ``getattr(HistoryBuffer, 'register_statistics')``: not a statistics method."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, "register_statistics")


class _Sneakier:
    def __reduce__(self):
        return getattr, (np.ndarray, "tofile")


def test_mmengine_objects_load_with_weights_only(tmp_path):
    buf = HistoryBuffer()
    for v in (3.0, 1.0, 2.0):
        buf.update(v)
    path = tmp_path / "ckpt.pth"
    torch.save({"message_hub": {"log_scalars": {"train/loss": buf}}, "meta": {"seed": np.int64(3),
                "arr": np.arange(3.0)}, "state_dict": {"w": torch.ones(2)}}, path)
    allow_mmengine_checkpoints()
    back = torch.load(path, weights_only=True)
    got = back["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(got, HistoryBuffer) and got.mean() == 2.0 and got.min() == 1.0
    assert back["meta"]["seed"] == 3 and back["meta"]["arr"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("obj", [_Sneaky(), _Sneakier()])
def test_other_attribute_lookups_are_refused(obj, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": obj}, path)
    allow_mmengine_checkpoints()
    with pytest.raises(pickle.UnpicklingError, match="is not allowed in a checkpoint"):
        torch.load(path, weights_only=True)


UAVDT_CFG = "configs/uavdt/faster_rcnn_flsl_vits16.py"


@pytest.mark.parametrize("path,paper_fp16", [(COCO_CFG, True), ("configs/coco/mask_rcnn_flsl_vits8.py", True),
                                             (UAVDT_CFG, True), ("configs/uavdt/faster_rcnn_dino_vits16.py", True),
                                             (ADE_CFG, False)])
def test_detection_rows_train_fp16_on_cuda_only(path, paper_fp16, repo_root, monkeypatch):
    """The authors' detection runs trained in fp16 (their segmentation run did not): the configs
    switch to AmpOptimWrapper by themselves when CUDA is present and stay fp32 on CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config(repo_root / path)
    assert select_precision(cfg) == "fp32" and cfg.optim_wrapper.type == "OptimWrapper"
    assert select_precision(cfg, amp=True) == "fp32"          # --amp on CPU: ignored with a warning
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = load_config(repo_root / path)
    assert select_precision(cfg) == ("fp16" if paper_fp16 else "fp32")
    assert cfg.optim_wrapper.type == ("AmpOptimWrapper" if paper_fp16 else "OptimWrapper")
    if paper_fp16:
        assert cfg.optim_wrapper.loss_scale == "dynamic"
    cfg = load_config(repo_root / path)
    assert select_precision(cfg, amp=True) == "fp16" and cfg.optim_wrapper.type == "AmpOptimWrapper"
    cfg.mixed_precision = "bf17"
    with pytest.raises(ConfigError, match="mixed_precision"):
        select_precision(cfg)


def test_train_records_and_test_rebuilds_the_backbone_structure(repo_root, tmp_path):
    """prepare_train writes the class token, position rule and stored grid read from the
    pretrained file into the config; prepare_test takes them from the trained checkpoint's saved
    config, without the pretrained file."""
    release = write_release("timm", tmp_path / "timm", grid=5)
    cfg = load_config(repo_root / UAVDT_CFG, {"model.backbone.init_cfg.checkpoint": str(release.path),
                                              "model.backbone.arch": None})
    prepare_train(cfg, UAVDT_CFG, str(tmp_path / "w"), check_data=False)
    bb = cfg.model.backbone
    assert (bb.class_token, bb.positions, bb.encoder_kwargs["img_size"]) == (True, "timm", 80)
    trained = tmp_path / "epoch_12.pth"
    torch.save({"meta": {"cfg": cfg.pretty_text}, "state_dict": {}}, trained)
    release.path.unlink()                                   # the pretraining file is gone
    cfg = load_config(repo_root / UAVDT_CFG, {"model.backbone.init_cfg.checkpoint": str(release.path)})
    prepare_test(cfg, UAVDT_CFG, str(trained), str(tmp_path / "t"), check_data=False)
    bb = cfg.model.backbone
    assert (bb.class_token, bb.positions, bb.encoder_kwargs["img_size"]) == (True, "timm", 80)
    assert bb.init_cfg is None
