"""The trainer's speed options and figures: FLOP count of a step, images/s and FLOP/s in the
log, MFU table, compiled networks, photometric work on the training device."""
import copy
import json

import pytest
import torch
from mmengine.config import Config

from pretrain.encoder import EncoderSpec
from pretrain.flops import PEAK_FLOPS, train_step_flops
from pretrain.model import FLSLNet
from pretrain.trainer import Trainer


def _hand_count(C, depth, mlp, patch, G, g, L, n_g, n_l, hidden, bottleneck, K):
    """Model FLOPs of one step per image written out: 2 per multiply-add; the student's matrix
    products 3x (forward, input and weight gradients) except its patch embedding (no input
    gradient: 2x) and attention (backward as torch counts fused attention: scores recomputed,
    2.5x); the teacher forward once."""
    Ng, Nl = (G // patch) ** 2, (g // patch) ** 2

    def blocks(N):   # (linear layers, attention) of the encoder's blocks
        return depth * (2 * N * C * 3 * C + 2 * N * C * C + 2 * 2 * N * C * mlp), depth * 2 * 2 * N * N * C

    def head(T):
        return 2 * T * (C * hidden + hidden * hidden + hidden * bottleneck + bottleneck * K)
    T = n_g + L * n_l
    (lin_g, att_g), (lin_l, att_l) = blocks(Ng), blocks(Nl)
    patch_s = 2 * Ng * C * 3 * patch ** 2 + L * 2 * Nl * C * 3 * patch ** 2
    shift_s = 4 * n_g * Ng * C + L * 4 * n_l * Nl * C                 # intra-view mean-shift
    student = 3 * (lin_g + L * lin_l + head(T)) + 3.5 * (att_g + L * att_l + shift_s) + 2 * patch_s
    teacher = lin_g + att_g + 2 * Ng * C * 3 * patch ** 2 + 4 * T * Ng * C + head(T)
    return student + teacher


@pytest.mark.parametrize("arch, kwargs, sizes, dims", [
    ("vit_tiny_patch16_224", dict(depth=2, img_size=96), (96, 48, 2, 4, 1), (64, 32, 64)),
    ("vit_small_patch16_224", {}, (224, 96, 2, 16, 9), (2048, 256, 4096)),
])
def test_step_flops_equal_the_hand_count(arch, kwargs, sizes, dims):
    spec = EncoderSpec.make(arch, **kwargs)
    counted = train_step_flops(lambda: FLSLNet(spec, 0.0, dims[2], dims[0], dims[1]), *sizes)
    net = FLSLNet(spec, 0.0, dims[2], dims[0], dims[1])
    vit = net.backbone
    expect = _hand_count(vit.embed_dim, len(vit.blocks), vit.blocks[0].mlp.fc1.out_features,
                         vit.patch_embed.patch_size[0], *sizes, *dims)
    assert counted == pytest.approx(expect, rel=1e-9)


def test_peak_table_names_devices():
    def lookup(name, precision):
        return next((p.get(precision) for key, p in PEAK_FLOPS if key in name), None)
    assert lookup("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert lookup("NVIDIA H100 PCIe", "bf16") == 756e12
    assert lookup("NVIDIA H200", "bf16") == 989e12
    assert lookup("NVIDIA A100-SXM4-80GB", "fp32") == 19.5e12
    assert lookup("Some Other Card", "bf16") is None


def test_log_reports_images_per_second_and_model_flops(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg.train.epochs = 1
    trainer = Trainer(cfg, tmp_path / "run", resume=None)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    v = trainer.dataset.views.cfg
    expect = train_step_flops(trainer._make_net, v.global_size, v.local_size, v.n_local,
                              ((v.global_size // 16) // v.global_window) ** 2,
                              ((v.local_size // 16) // v.local_window) ** 2)
    assert records and all(r["flops_per_image"] == expect for r in records)
    for r in records:
        assert r["images_per_s"] > 0 and r["mfu"] is None           # no peak for a CPU
        assert r["flops_per_s"] == pytest.approx(r["images_per_s"] * expect, rel=1e-9)
    text = (tmp_path / "run" / "train.log").read_text()
    assert "img/s" in text and "GFLOP/s" in text


def test_compile_option_is_checked_and_keeps_checkpoint_keys(tiny_cfg, tmp_path):
    from core.errors import ConfigError
    cfg = copy.deepcopy(tiny_cfg)
    cfg.train.compile = "everything"
    with pytest.raises(ConfigError, match="train.compile"):
        Trainer(cfg, tmp_path / "bad", resume=None)
    cfg.train.compile = "model"
    trainer = Trainer(cfg, tmp_path / "model", resume=None)
    eager = Trainer(copy.deepcopy(tiny_cfg), tmp_path / "eager", resume=None)
    assert trainer.student._compiled_call_impl is not None                     # wired, not run here
    assert trainer.teacher.teacher_targets is not eager.teacher.teacher_targets
    assert list(trainer.state()["student"]) == list(eager.state()["student"])   # no _orig_mod. prefix


@pytest.mark.slow
def test_compiled_blocks_give_the_eager_loss(tiny_cfg, tmp_path):
    """torch.compile of the blocks (inductor, C++ on the CPU; about a minute to compile) gives
    the eager step's losses over three steps from the same weights and batch."""
    losses = {}
    for scope in (None, "blocks"):
        cfg = copy.deepcopy(tiny_cfg)
        cfg.model.arch_kwargs = dict(depth=1, img_size=96)
        cfg.model.drop_path_rate = 0.0        # compiled random numbers differ from eager ones
        cfg.train.compile = scope
        trainer = Trainer(cfg, tmp_path / str(scope), resume=None)
        batch = next(iter(trainer.loader))
        losses[scope] = [float(trainer.train_step(batch, it)[0]) for it in range(3)]
    assert losses["blocks"] == pytest.approx(losses[None], rel=1e-5, abs=1e-6)


def test_photometric_on_device_trains_like_the_loader_path(tiny_cfg, tmp_path):
    """With ``data.views.photometric_on_device`` the loader yields uint8 views; the trainer's
    step applies the chain and gets the loader path's loss (views equal up to hue near-ties)."""
    results = {}
    for on_device in (False, True):
        cfg = copy.deepcopy(tiny_cfg)
        cfg.data.views.photometric_on_device = on_device
        trainer = Trainer(cfg, tmp_path / str(on_device), resume=None)
        trainer.sampler.set_epoch(0)
        batch = next(iter(trainer.loader))
        assert (batch["teacher"].dtype == torch.uint8) == on_device
        results[on_device] = float(trainer.train_step(batch, 0)[0])
    assert results[True] == pytest.approx(results[False], rel=2e-3)


def test_config_checks_the_new_entries(tiny_cfg, tmp_path):
    from core.errors import ConfigError
    cfg = Config(copy.deepcopy(tiny_cfg.to_dict()))
    cfg.train.compile_mode = "fastest"
    with pytest.raises(ConfigError, match="train.compile_mode"):
        Trainer(cfg, tmp_path / "x", resume=None)
