"""The merged dense-benchmark configs hold the protocols docs/dense.md states ("What the merged
configs hold"), whichever file states each value: our bases inherit MMDetection's and
MMSegmentation's shipped configs, so a change there, in a base or in a row shows up here."""
from __future__ import annotations

import glob

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402

from core.config import lookup  # noqa: E402

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
NO_DECAY = {"norm_decay_mult": 0.0, "bias_decay_mult": 0.0,
            "custom_keys": {"pos_embed": {"decay_mult": 0.0}, "cls_token": {"decay_mult": 0.0}}}

DETECTOR = {
    "default_scope": "mmdet",
    "model.data_preprocessor.mean": MEAN, "model.data_preprocessor.std": STD,
    "model.data_preprocessor.bgr_to_rgb": True, "model.data_preprocessor.pad_size_divisor": 32,
    "model.neck.type": "FPN", "model.neck.out_channels": 256, "model.neck.num_outs": 5,
    "model.rpn_head.anchor_generator.scales": [8],
    "model.rpn_head.anchor_generator.ratios": [0.5, 1.0, 2.0],
    "model.rpn_head.anchor_generator.strides": [4, 8, 16, 32, 64],
    "model.roi_head.bbox_roi_extractor.roi_layer.output_size": 7,
    "model.roi_head.bbox_roi_extractor.featmap_strides": [4, 8, 16, 32],
    "model.roi_head.bbox_head.type": "Shared2FCBBoxHead", "model.roi_head.bbox_head.fc_out_channels": 1024,
    "model.train_cfg.rpn.sampler.num": 256, "model.train_cfg.rcnn.sampler.num": 512,
    "model.train_cfg.rcnn.sampler.pos_fraction": 0.25,
    "model.test_cfg.rcnn.score_thr": 0.05, "model.test_cfg.rcnn.max_per_img": 100,
    # 1x schedule
    "optim_wrapper.optimizer": {"type": "AdamW", "lr": 5e-5, "betas": (0.9, 0.999), "weight_decay": 0.05},
    "optim_wrapper.paramwise_cfg": NO_DECAY,
    "mixed_precision": "fp16",
    "train_cfg.type": "EpochBasedTrainLoop", "train_cfg.max_epochs": 12,
    "param_scheduler": [
        {"type": "LinearLR", "start_factor": 0.001, "by_epoch": False, "begin": 0, "end": 1000},
        {"type": "MultiStepLR", "begin": 0, "end": 12, "by_epoch": True, "milestones": [8, 11], "gamma": 0.1}],
    "auto_scale_lr": {"enable": True, "base_batch_size": 8},
    "train_dataloader.batch_size": 1,
    "train_dataloader.dataset.filter_cfg": {"filter_empty_gt": True, "min_size": 32},
    "default_hooks.checkpoint.max_keep_ckpts": 3,
}
MULTI = [(1333, s) for s in range(480, 801, 32)]
COCO = {
    **DETECTOR,
    "model.type": "MaskRCNN", "model.data_preprocessor.pad_mask": True,
    "model.roi_head.bbox_head.num_classes": 80,
    "model.roi_head.mask_roi_extractor.roi_layer.output_size": 14,
    "model.roi_head.mask_head.type": "FCNMaskHead", "model.roi_head.mask_head.num_convs": 4,
    "model.roi_head.mask_head.num_classes": 80,
    "model.train_cfg.rcnn.assigner.match_low_quality": True, "model.train_cfg.rcnn.mask_size": 28,
    "model.train_cfg.rpn.assigner.ignore_iof_thr": -1,
    "train_dataloader.dataset.type": "CocoDataset",
    "train_dataloader.dataset.ann_file": "annotations/instances_train2017.json",
    "test_dataloader.dataset.ann_file": "annotations/instances_val2017.json",
    "train_dataloader.dataset.pipeline": [
        {"type": "LoadImageFromFile", "backend_args": None},
        {"type": "LoadAnnotations", "with_bbox": True, "with_mask": True},
        {"type": "RandomFlip", "prob": 0.5},
        {"type": "RandomChoice", "transforms": [
            [{"type": "RandomChoiceResize", "scales": MULTI, "keep_ratio": True}],
            [{"type": "RandomChoiceResize", "scales": [(1333, 400), (1333, 500), (1333, 600)], "keep_ratio": True},
             {"type": "RandomCrop", "crop_type": "absolute_range", "crop_size": (384, 600),
              "allow_negative_crop": True},
             {"type": "RandomChoiceResize", "scales": MULTI, "keep_ratio": True}]]},
        {"type": "PackDetInputs"}],
    "test_dataloader.dataset.pipeline.1": {"type": "Resize", "scale": (1333, 800), "keep_ratio": True},
    "test_evaluator.type": "CocoMetric", "test_evaluator.metric": ["bbox", "segm"],
    "train_cfg.val_interval": 1,
}
UAVDT = {
    **DETECTOR,
    "model.type": "FasterRCNN",
    "model.roi_head.bbox_head.num_classes": 3,
    "model.train_cfg.rcnn.assigner.match_low_quality": False,
    "model.train_cfg.rpn.assigner.ignore_iof_thr": 0.5, "model.train_cfg.rcnn.assigner.ignore_iof_thr": 0.5,
    "train_dataloader.dataset.metainfo.classes": ("car", "truck", "bus"),
    "train_dataloader.dataset.ann_file": "annotations/uavdt_train.json",
    "test_dataloader.dataset.ann_file": "annotations/uavdt_test.json",
    "train_dataloader.dataset.pipeline": [
        {"type": "LoadImageFromFile", "backend_args": None},
        {"type": "LoadAnnotations", "with_bbox": True},
        {"type": "Resize", "scale": (1333, 800), "keep_ratio": True},
        {"type": "RandomFlip", "prob": 0.5},
        {"type": "PackDetInputs"}],
    "test_dataloader.dataset.pipeline.1": {"type": "Resize", "scale": (1333, 800), "keep_ratio": True},
    "test_evaluator.type": "UAVDTMetric", "test_evaluator.proposal_nums": (1, 10, 100),
    "test_evaluator.strict_iou": 0.7, "test_evaluator.classwise": True,
    "train_cfg.val_interval": 12,
}
ADE = {
    "default_scope": "mmseg",
    "model.type": "EncoderDecoder",
    "model.data_preprocessor.mean": MEAN, "model.data_preprocessor.std": STD,
    "model.data_preprocessor.size": (512, 512), "model.data_preprocessor.seg_pad_val": 255,
    "model.neck.type": "FPN", "model.neck.out_channels": 256, "model.neck.num_outs": 4,
    "model.decode_head.type": "FPNHead", "model.decode_head.channels": 128,
    "model.decode_head.feature_strides": [4, 8, 16, 32], "model.decode_head.dropout_ratio": 0.1,
    "model.decode_head.num_classes": 150, "model.decode_head.norm_cfg.type": "SyncBN",
    "model.test_cfg.mode": "whole",
    "train_dataloader.batch_size": 4, "train_dataloader.dataset.type": "ADE20KDataset",
    "train_dataloader.dataset.pipeline": [
        {"type": "LoadImageFromFile"},
        {"type": "LoadAnnotations", "reduce_zero_label": True},
        {"type": "RandomResize", "scale": (2048, 512), "ratio_range": (0.5, 2.0), "keep_ratio": True},
        {"type": "RandomCrop", "crop_size": (512, 512), "cat_max_ratio": 0.75},
        {"type": "RandomFlip", "prob": 0.5},
        {"type": "PhotoMetricDistortion"},
        {"type": "PackSegInputs"}],
    "test_dataloader.dataset.pipeline.1": {"type": "Resize", "scale": (2048, 512), "keep_ratio": True},
    "test_evaluator": {"type": "IoUMetric", "iou_metrics": ["mIoU"]},
    "optim_wrapper.type": "OptimWrapper",
    "optim_wrapper.optimizer": {"type": "AdamW", "lr": 6e-5, "betas": (0.9, 0.999), "weight_decay": 0.01},
    "optim_wrapper.paramwise_cfg": NO_DECAY,
    "mixed_precision": None,
    "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 40000, "val_interval": 4000},
    "param_scheduler": [
        {"type": "LinearLR", "start_factor": 1e-6, "by_epoch": False, "begin": 0, "end": 1500},
        {"type": "PolyLR", "eta_min": 0.0, "power": 1.0, "by_epoch": False, "begin": 0, "end": 40000}],
    "auto_scale_lr": {"enable": True, "base_batch_size": 32},
    "default_hooks.checkpoint.max_keep_ckpts": 3,
}


def backbone(arch, out_indices, drop_path, adapter, checkpoint):
    return {"model.backbone": {"type": "FLSLViT", "arch": arch, "out_indices": out_indices,
                               "drop_path_rate": drop_path, "frozen_stages": -1, "adapter": adapter,
                               "norm": "auto", "init_cfg": {"type": "Pretrained", "checkpoint": checkpoint}},
            "model.neck.in_channels": [384] * 4}


S16, S8 = "vit_small_patch16_224", "vit_small_patch8_224"
DET_BLOCKS, SEG_BLOCKS = (3, 5, 7, 11), (2, 5, 8, 11)
ROWS = {
    "configs/coco/mask_rcnn_flsl_vits16.py":
        {**COCO, **backbone(S16, DET_BLOCKS, 0.05, "multiscale", "checkpoints/flsl_vits16.safetensors")},
    "configs/coco/mask_rcnn_flsl_vits8.py":
        {**COCO, **backbone(S8, DET_BLOCKS, 0.05, "multiscale", "checkpoints/flsl_vits8.safetensors")},
    "configs/uavdt/faster_rcnn_flsl_vits16.py":
        {**UAVDT, **backbone(S16, DET_BLOCKS, 0.05, "multiscale", "checkpoints/flsl_vits16.safetensors")},
    "configs/uavdt/faster_rcnn_dino_vits16.py":
        {**UAVDT, **backbone(S16, DET_BLOCKS, 0.05, "multiscale", "checkpoints/dino_deitsmall16_pretrain.pth")},
    "configs/ade20k/semfpn_flsl_vits16_40k.py":
        {**ADE, **backbone(S16, SEG_BLOCKS, 0.1, "single_scale", "checkpoints/flsl_vits16.safetensors")},
    "configs/ade20k/semfpn_flsl_vits16_adapter_40k.py":
        {**ADE, **backbone(S16, SEG_BLOCKS, 0.1, "multiscale", "checkpoints/flsl_vits16.safetensors")},
}
# every row of a table (also rows added later, with their own backbones) shares its protocol
PROTOCOLS = {"coco": COCO, "uavdt": UAVDT, "ade20k": ADE}


def plain(value):
    """``value`` without MMEngine's ``_scope_`` marks (which registry builds a dict: the config's
    default scope here), tuples as lists: what the built objects receive."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "_scope_"}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def merged(path: str, monkeypatch, cuda: bool = False) -> dict:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    for var in ("COCO_ROOT", "ADE20K_ROOT", "UAVDT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    return Config.fromfile(path, import_custom_modules=False).to_dict()


def mismatches(cfg: dict, expected: dict) -> list[str]:
    out = []
    for key, want in expected.items():
        got, found = lookup(cfg, key)
        if not found:
            out.append(f"{key}: missing")
        elif plain(got) != plain(want):
            out.append(f"{key}: {plain(got)!r} != {plain(want)!r}")
    return out


@pytest.mark.parametrize("path", sorted(ROWS))
def test_paper_rows_hold_the_documented_protocol(path, repo_root, monkeypatch):
    cfg = merged(str(repo_root / path), monkeypatch)
    assert mismatches(cfg, ROWS[path]) == []
    assert cfg["model"].get("pretrained") is None  # no ImageNet ResNet of a framework base is loaded
    # the data root default, reached by every dataset and evaluator path
    root = {"coco": "data/coco/", "uavdt": "data/uavdt/", "ade20k": "data/ade/ADEChallengeData2016/"}[path.split("/")[1]]
    assert {cfg[k]["dataset"]["data_root"] for k in ("train_dataloader", "val_dataloader", "test_dataloader")} == {root}
    for key in ("val_evaluator", "test_evaluator"):
        assert cfg[key].get("ann_file", root).startswith(root)


@pytest.mark.parametrize("table", sorted(PROTOCOLS))
def test_every_row_of_a_table_shares_its_protocol(table, repo_root, monkeypatch):
    paths = sorted(glob.glob(str(repo_root / "configs" / table / "*.py")))
    assert len(paths) >= 2
    for path in paths:
        assert mismatches(merged(path, monkeypatch), PROTOCOLS[table]) == [], path


@pytest.mark.parametrize("path,fp16", [("configs/coco/mask_rcnn_flsl_vits16.py", True),
                                       ("configs/uavdt/faster_rcnn_flsl_vits16.py", True),
                                       ("configs/ade20k/semfpn_flsl_vits16_40k.py", False)])
def test_detection_configs_choose_fp16_by_themselves_on_cuda(path, fp16, repo_root, monkeypatch):
    """MMDetection's own tools/train.py builds the config's optim_wrapper as written (it reads no
    ``mixed_precision``): the detection configs name AmpOptimWrapper when CUDA is present."""
    assert merged(str(repo_root / path), monkeypatch, cuda=False)["optim_wrapper"]["type"] == "OptimWrapper"
    on_cuda = merged(str(repo_root / path), monkeypatch, cuda=True)["optim_wrapper"]["type"]
    assert on_cuda == ("AmpOptimWrapper" if fp16 else "OptimWrapper")
