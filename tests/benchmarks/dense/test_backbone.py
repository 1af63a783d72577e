"""benchmarks/dense/backbone.py: the one FLSL ViT backbone of MMDetection and MMSegmentation."""
from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from benchmarks.dense.backbone import FLSLViT, resolve_structure
from pretrain.checkpoint import CheckpointError
from speed.reference.vit import dino_vit_forward
from tests.benchmarks.conftest import TINY8, TINY16, write_format, write_release


def tiny_backbone(patch=16, adapter="multiscale", **kw):
    enc = dict(TINY16 if patch == 16 else TINY8)
    enc.update(kw.pop("encoder_kwargs", {}))
    return FLSLViT("vit_tiny_patch16_224", out_indices=kw.pop("out_indices", (0, 1, 2, 3)),
                   adapter=adapter, encoder_kwargs=enc, **kw)


@pytest.fixture
def mm_log():
    """Messages sent to MMEngine's current logger during the test."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# ---------------------------------------------------------------- plain reference computations
def plain_block_outputs(enc, images, indices):
    """The FLSL authors' class-token-free ViT written out (speed/reference/vit.py): strided
    convolution, positions resized by their rule, plain blocks. ``[B, N, C]`` per index."""
    blocks, _ = dino_vit_forward(enc.state_dict(), images, heads=enc.blocks[0].attn.num_heads,
                                 class_token=False, dtype=torch.float32)
    p = enc.patch_embed.proj.weight.shape[-1]
    return [blocks[i] for i in indices], (images.shape[2] // p, images.shape[3] // p)


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("patch,size", [(16, (100, 150)), (16, (96, 160)), (8, (100, 150)), (8, (64, 96))])
def test_output_strides_and_channels(patch, size):
    model = tiny_backbone(patch).eval()
    h, w = size
    with torch.no_grad():
        outs = model(torch.randn(2, 3, h, w))
    gh, gw = math.ceil(h / patch), math.ceil(w / patch)  # right/bottom padding to the patch grid
    assert model.strides == (4, 8, 16, 32)
    scale = [patch / s for s in (4, 8, 16, 32)]           # up (>1) or down (<1) from the grid
    expected = [(int(gh * f), int(gw * f)) if f >= 1 else (gh // round(1 / f), gw // round(1 / f))
                for f in scale]
    assert [tuple(o.shape) for o in outs] == [(2, 192, eh, ew) for eh, ew in expected]


def test_single_scale_layout_keeps_patch_stride():
    model = tiny_backbone(16, adapter="single_scale").eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 160))
    assert model.strides == (16,) * 4
    assert [tuple(o.shape) for o in outs] == [(1, 192, 6, 10)] * 4


# ---------------------------------------------------------------- equality with the encoder
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_block_outputs_equal_pretraining_encoder(tiny16, tiny16_ckpt, size):
    model = tiny_backbone(16, adapter="single_scale", out_indices=(0, 2, 1, 3)).eval()
    model.load_pretrained(str(tiny16_ckpt))
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        maps = model(images)
        ref, (h, w) = plain_block_outputs(tiny16, images, (0, 2, 1, 3))
    for m, r in zip(maps, ref):
        assert m.shape == (2, 192, h, w)
        for (row, col) in [(0, 0), (h - 1, w - 1), (h // 2, w - 1), (1, 2)]:
            torch.testing.assert_close(m[:, :, row, col], r[:, row * w + col], rtol=1e-4, atol=1e-4)


def test_adapter_levels_match_plain_ops(tiny16_ckpt):
    model = tiny_backbone(16).eval()
    model.load_pretrained(str(tiny16_ckpt))
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(images)
        single = FLSLViT("vit_tiny_patch16_224", out_indices=(0, 1, 2, 3), adapter="single_scale",
                         encoder_kwargs=TINY16)
        single.load_pretrained(str(tiny16_ckpt))
        maps = single.eval()(images)
    deconv = model.adapter.levels[1]
    x = maps[1]
    # transposed 2x2/2 convolution: out[2r+i, 2c+j] = sum_ci x[ci, r, c] W[ci, co, i, j] + b
    up = torch.einsum("bkrc,koij->boricj", x, deconv.weight).reshape(1, 192, 2 * x.shape[2], 2 * x.shape[3])
    torch.testing.assert_close(outs[1], up + deconv.bias[None, :, None, None], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs[2], maps[2], rtol=0, atol=0)
    m = maps[3]
    pooled = m.reshape(1, 192, m.shape[2] // 2, 2, m.shape[3] // 2, 2).amax(dim=(3, 5))
    torch.testing.assert_close(outs[3], pooled, rtol=0, atol=0)


# ---------------------------------------------------------------- loading
def test_loading_changes_the_weights_and_logs_what_is_not_loaded(tiny16, tiny16_ckpt, mm_log):
    model = tiny_backbone(16, init_cfg=dict(type="Pretrained", checkpoint=str(tiny16_ckpt)))
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    adapter_before = {k: v.clone() for k, v in model.adapter.state_dict().items()}
    model.init_weights()
    after = model.encoder.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) >= len(before) - 2  # everything but possibly untouched zero-init tensors
    for k, v in tiny16.state_dict().items():
        torch.testing.assert_close(after[k], v, rtol=0, atol=0)
    for k, v in model.adapter.state_dict().items():
        torch.testing.assert_close(v, adapter_before[k], rtol=0, atol=0)
    log = "\n".join(mm_log)
    assert f"loaded all {len(before)} encoder tensors" in log and "adapter" in log and "neck and heads" in log


def test_authors_release_loads_directly_without_its_unused_class_token(tiny16, tmp_path, mm_log):
    path = write_format("flsl-authors", tiny16, tmp_path)
    model = tiny_backbone(16, init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    model.init_weights()
    assert model.encoder.cls_token is None
    for k, v in tiny16.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[k], v, rtol=0, atol=0)
    log = "\n".join(mm_log)
    assert "format flsl-authors: flsl family; no class token" in log and "cls_token (unused: pos_embed has 16 entries" in log


@pytest.mark.parametrize("kind,positions", [("dino", "dino"), ("ibot", "dino"), ("timm", "timm")])
def test_class_token_checkpoints_build_their_own_network(kind, positions, tmp_path, mm_log):
    """The backbone takes class token, stored grid and position rule from the checkpoint (what
    the family's network is; its outputs are compared with the family's forward in
    tests/benchmarks/test_run_as_trained.py)."""
    release = write_release(kind, tmp_path, grid=5)
    family = "dino" if kind == "dino" else None      # a bare DINO backbone is a headless timm ViT too
    model = tiny_backbone(16, out_indices=(0, 1, 0, 1), encoder_kwargs=dict(depth=2), family=family,
                          init_cfg=dict(type="Pretrained", checkpoint=str(release.path)))
    model.init_weights()
    enc = model.encoder
    assert enc.cls_token is not None and enc.pos_embed.shape == (1, 26, 192)
    assert tuple(enc.patch_embed.grid_size) == (5, 5) and enc.flsl_spec.positions == positions
    torch.testing.assert_close(enc.cls_token.detach(), release.state["cls_token"], rtol=0, atol=0)
    assert "class token prepended, dropped from the outputs" in "\n".join(mm_log)
    with torch.no_grad():
        maps = model.eval()(torch.randn(1, 3, 96, 128))
    assert maps[2].shape == (1, 192, 6, 8)            # stride 16: the class token is not in the maps
    structure = resolve_structure(dict(family=family, init_cfg=dict(type="Pretrained", checkpoint=str(release.path))))
    assert (structure["class_token"], structure["positions"], structure["encoder_kwargs"]["img_size"]) == \
        (True, positions, 80)


def test_wrong_patch_size_is_refused(tiny16_ckpt):
    model = tiny_backbone(8)
    with pytest.raises(CheckpointError, match=r"patch size 16 in the checkpoint.*patch size 8"):
        model.load_pretrained(str(tiny16_ckpt))


def test_head_count_mismatch_is_refused(tiny16_ckpt):
    # same qkv shapes (192 x 576) but split into 4 heads instead of the checkpoint's 3
    model = tiny_backbone(16, encoder_kwargs=dict(num_heads=4))
    before = model.encoder.blocks[0].attn.qkv.weight.clone()
    with pytest.raises(CheckpointError, match="3 attention heads, the backbone 4"):
        model.load_pretrained(str(tiny16_ckpt))
    assert torch.equal(model.encoder.blocks[0].attn.qkv.weight, before)


def test_deeper_backbone_lists_missing_blocks(tiny16_ckpt):
    model = tiny_backbone(16, encoder_kwargs=dict(depth=6))
    with pytest.raises(CheckpointError) as err:
        model.load_pretrained(str(tiny16_ckpt))
    msg = str(err.value)
    n_missing = len(set(model.encoder.state_dict()) - set(tiny_backbone(16).encoder.state_dict()))
    assert n_missing == 24
    assert str(tiny16_ckpt) in msg and f"missing keys ({n_missing})" in msg and "blocks.4." in msg


def test_missing_checkpoint_names_the_file(tmp_path):
    model = tiny_backbone(16, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "nope.safetensors")))
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.safetensors"):
        model.init_weights()


def test_backbone_keeps_the_stored_grid_of_the_checkpoint(tiny16, tiny16_ckpt):
    """Built from its checkpoint, the backbone keeps the stored 4x4 table (the arch name says 224)
    and resizes it at every forward by the family's rule, as the source network does; a backbone
    built for another grid refuses the file instead of resampling it twice."""
    model = FLSLViT("vit_tiny_patch16_224", out_indices=(0, 1, 2, 3), adapter="single_scale",
                    encoder_kwargs=dict(depth=4), init_cfg=dict(type="Pretrained", checkpoint=str(tiny16_ckpt)))
    model.init_weights()
    assert tuple(model.encoder.patch_embed.grid_size) == (4, 4)
    torch.testing.assert_close(model.encoder.pos_embed.detach(), tiny16.pos_embed, rtol=0, atol=0)
    images = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        maps = model.eval()(images)
        ref, (h, w) = plain_block_outputs(tiny16, images, (0, 1, 2, 3))
    torch.testing.assert_close(maps[3].flatten(2).transpose(1, 2), ref[3], rtol=1e-4, atol=1e-4)
    other_grid = FLSLViT("vit_tiny_patch16_224", out_indices=(0, 1, 2, 3), encoder_kwargs=dict(depth=4))
    with pytest.raises(CheckpointError, match=r"16 stored positions.*14x14 grid.*Build it from the checkpoint"):
        other_grid.load_pretrained(str(tiny16_ckpt))


def test_explicit_structure_needs_no_checkpoint_file(tmp_path):
    """What prepare_train records in the config rebuilds the same encoder without the file."""
    release = write_release("dino", tmp_path, grid=4)
    cfg = resolve_structure(dict(encoder_kwargs=dict(depth=2), family="dino",
                                 init_cfg=dict(type="Pretrained", checkpoint=str(release.path))))
    built = tiny_backbone(16, encoder_kwargs=cfg["encoder_kwargs"], class_token=cfg["class_token"],
                          positions=cfg["positions"], out_indices=(0, 1, 0, 1))
    assert built.encoder.pos_embed.shape == (1, 17, 192) and built.encoder.cls_token is not None
    built.load_pretrained(str(release.path), family=cfg["family"])
    with pytest.raises(ValueError, match="positions"):
        tiny_backbone(16, positions="nearest")


# ---------------------------------------------------------------- training behaviour
def test_frozen_stages_and_unused_parameters():
    model = tiny_backbone(16, frozen_stages=2, out_indices=(0, 1, 1, 2)).train()
    enc = model.encoder
    assert not enc.pos_embed.requires_grad
    assert not any(p.requires_grad for p in enc.patch_embed.parameters())
    with_token = tiny_backbone(16, frozen_stages=0, class_token=True)
    assert not with_token.encoder.cls_token.requires_grad
    assert tiny_backbone(16, class_token=True).encoder.cls_token.requires_grad
    assert not any(p.requires_grad for b in enc.blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in enc.blocks[2].parameters())
    assert not any(p.requires_grad for p in enc.blocks[3].parameters())  # after the last index
    assert not any(p.requires_grad for p in enc.norm.parameters())
    assert not enc.blocks[0].training and enc.blocks[2].training
    out = model(torch.randn(2, 3, 64, 64))
    sum(o.float().mean() for o in out).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_trainable_position_embedding_by_default():
    assert tiny_backbone(16).encoder.pos_embed.requires_grad


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="out_indices"):
        tiny_backbone(16, out_indices=(0, 1, 2, 9))
    with pytest.raises(ValueError, match="adapter"):
        tiny_backbone(16, adapter="fancy")
    with pytest.raises(ValueError, match="init_cfg"):
        tiny_backbone(16, init_cfg=dict(type="Kaiming"))


def test_adapter_norm_is_batchnorm_without_distributed_job():
    model = tiny_backbone(16)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 1 and type(norms[0]) is nn.BatchNorm2d
    assert isinstance(tiny_backbone(16, norm="SyncBN").adapter.levels[0][1], nn.SyncBatchNorm)


def test_drop_path_rate_reaches_the_blocks():
    model = tiny_backbone(16, drop_path_rate=0.3)
    rates = [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.encoder.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize("schedule,decay", [("adamw_1x.py", 0.05), ("adamw_poly_40k.py", 0.01)])
def test_no_weight_decay_on_positions_norms_and_biases(repo_root, schedule, decay):
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(str(repo_root / "configs" / "_base_" / "schedules" / schedule))
    model = tiny_backbone(16, class_token=True)   # a class-token family's backbone
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wd = {id(p): g["weight_decay"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    norm_params = {id(p) for m in model.modules()
                   if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)) for p in m.parameters()}
    checked = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = name.endswith((".bias", "pos_embed", "cls_token")) or id(p) in norm_params
        assert wd[id(p)] == (0.0 if no_decay else decay), name
        checked += 1
    assert checked > 40
