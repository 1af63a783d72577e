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
    assert abs(cfg.loss.beta_sa - 0.1 / width ** 0.5) < 1e-12 and abs(cfg.loss.beta_ca - 0.2 / width ** 0.5) < 1e-12
    assert (cfg.optim.weight_decay, cfg.optim.weight_decay_end, cfg.optim.clip_grad) == (0.04, 0.4, 3.0)
    assert cfg.optim.lr == 5e-4 and cfg.optim.momentum_teacher == 0.996


def test_default_config_is_small(repo_root):
    cfg = Config.fromfile(str(repo_root / "configs/pretrain/flsl_tiny_synthetic.py"))
    assert cfg.data.generate.n_images == 256 and cfg.model.arch_kwargs.depth == 4
