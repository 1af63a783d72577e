"""The pretraining configs load and describe the recipes of docs/method.md."""
import pytest
from mmengine.config import Config

from pretrain.encoder import EncoderSpec, build_encoder


@pytest.mark.parametrize("name,width,patch,heads", [
    ("flsl_vits16_in1k", 384, 16, 6), ("flsl_vits8_in1k", 384, 8, 6), ("flsl_vitb16_in1k", 768, 16, 12)])
def test_paper_configs(repo_root, name, width, patch, heads):
    cfg = Config.fromfile(str(repo_root / "configs/pretrain" / f"{name}.py"))
    enc = build_encoder(EncoderSpec.make(cfg.model.arch, **cfg.model.arch_kwargs), depth=1)
    assert enc.embed_dim == width and enc.patch_embed.patch_size[0] == patch
    assert enc.blocks[0].attn.num_heads == heads
    assert cfg.model.out_dim == 4096 and cfg.train.epochs == 300
    assert cfg.loss.coefficients == (0.03, 1.0, 5.0)
    assert (cfg.loss.warmup_teacher_temp, cfg.loss.teacher_temp, cfg.loss.warmup_teacher_temp_epochs) == (0.04, 0.07, 30)
    assert cfg.data.views.local_scale == (0.05, 0.4) and cfg.data.views.global_scale == (0.5, 1.0)
    # the authors' parser defaults, written with ViT-S's width for every architecture (their
    # ViT-B command only changes --arch)
    assert abs(cfg.loss.beta_sa - 0.1 / 384 ** 0.5) < 1e-12 and abs(cfg.loss.beta_ca - 0.2 / 384 ** 0.5) < 1e-12
    assert (cfg.optim.weight_decay, cfg.optim.weight_decay_end, cfg.optim.clip_grad) == (0.04, 0.4, 3.0)
    assert cfg.optim.lr == 5e-4 and cfg.optim.momentum_teacher == 0.996


def test_default_config_is_small(repo_root):
    cfg = Config.fromfile(str(repo_root / "configs/pretrain/flsl_tiny_synthetic.py"))
    assert cfg.data.generate.n_images == 256 and cfg.model.arch_kwargs.depth == 4


@pytest.mark.parametrize("name", ["flsl_vits16_in1k", "flsl_vits8_in1k", "flsl_vitb16_in1k"])
def test_lr_warm_up_is_the_authors_tenth_of_the_epochs(repo_root, name):
    """The authors' --warmup_epochs 0.1 is a fraction: int(0.1 * 300) = 30 epochs of linear warm-up,
    then the cosine decay; checked on the schedule the trainer builds from the config."""
    from pretrain.schedules import cosine_schedule
    cfg = Config.fromfile(str(repo_root / "configs/pretrain" / f"{name}.py"))
    assert cfg.optim.warmup_epochs == int(0.1 * cfg.train.epochs) == 30
    ipe = 3
    lr = cosine_schedule(cfg.optim.lr, cfg.optim.min_lr, cfg.train.epochs, ipe, cfg.optim.warmup_epochs)
    peak = int(lr.argmax())
    assert peak == 30 * ipe
    assert (lr[1:peak + 1] > lr[:peak]).all() and lr[0] == 0.0
    assert (lr[peak + 1:] <= lr[peak:-1]).all()
