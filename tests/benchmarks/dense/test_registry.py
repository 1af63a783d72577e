"""The backbone in MMDetection's and MMSegmentation's registries, and the real configs build."""
from __future__ import annotations

import pytest
import torch
from mmengine.registry import DefaultScope

from benchmarks.dense.backbone import FLSLViT
from benchmarks.dense.runner import init_framework, load_config
from tests.benchmarks.conftest import TINY16

CONFIGS = {
    "configs/coco/mask_rcnn_flsl_vits16.py": ("mmdet", 16, "multiscale", 5),
    "configs/coco/mask_rcnn_flsl_vits8.py": ("mmdet", 8, "multiscale", 5),
    "configs/ade20k/semfpn_flsl_vits16_40k.py": ("mmseg", 16, "single_scale", 4),
    "configs/ade20k/semfpn_flsl_vits16_adapter_40k.py": ("mmseg", 16, "multiscale", 4),
}


@pytest.mark.parametrize("scope", ["mmdet", "mmseg"])
def test_both_registries_build_the_same_backbone(scope, tiny16_ckpt):
    import importlib
    registry = importlib.import_module(f"{scope}.registry").MODELS
    cfg = dict(type="FLSLViT", arch="vit_tiny_patch16_224", out_indices=(0, 1, 2, 3), encoder_kwargs=TINY16,
               init_cfg=dict(type="Pretrained", checkpoint=str(tiny16_ckpt)))
    model = registry.build(cfg)
    assert type(model) is FLSLViT and registry.get("FLSLViT") is FLSLViT
    model.init_weights()
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 64, 96))
    assert [o.shape[-2:] for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]


@pytest.mark.parametrize("path", sorted(CONFIGS))
def test_real_configs_build_and_run(path, repo_root):
    scope, patch, adapter, n_out = CONFIGS[path]
    cfg = load_config(repo_root / path)
    assert cfg.default_scope == scope and cfg.custom_imports.imports == ["benchmarks.dense"]
    init_framework(scope)
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(scope):  # nested builds resolve in that framework
        model = registry.build(cfg.model).eval()
    bb = model.backbone
    assert isinstance(bb, FLSLViT) and bb.patch_size == patch and bb.embed_dim == 384
    assert bb.encoder.blocks[0].attn.num_heads == 6 and bb.adapter.__class__.__name__ == (
        "MultiScaleAdapter" if adapter == "multiscale" else "SingleScaleLayout")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        feats = model.extract_feat(x)
    assert len(feats) == n_out and all(f.shape[1] == 256 for f in feats)
    expected_first = (16, 24) if adapter == "multiscale" else (64 // patch, 96 // patch)
    assert tuple(feats[0].shape[-2:]) == expected_first
