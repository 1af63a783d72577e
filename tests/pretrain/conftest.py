"""Fixtures: a very small FLSL configuration on generated images."""
from pathlib import Path

import pytest
from mmengine.config import Config

from synthetic.images import write_image_folder

TINY = dict(
    model=dict(arch="vit_tiny_patch16_224", arch_kwargs=dict(depth=2, img_size=96), drop_path_rate=0.1,
               out_dim=64, hidden_dim=64, bottleneck_dim=32),
    data=dict(root=None, batch_size_per_gpu=4, num_workers=0,
              views=dict(global_size=96, local_size=48, n_local=2)),
    loss=dict(student_temp=0.1, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=1,
              coefficients=(0.03, 1.0, 5.0), beta_sa=0.1 / 192 ** 0.5, beta_ca=0.2 / 192 ** 0.5),
    optim=dict(lr=5e-4, min_lr=1e-6, warmup_epochs=1, weight_decay=0.04, weight_decay_end=0.4,
               clip_grad=3.0, freeze_last_layer=1, momentum_teacher=0.996),
    train=dict(epochs=2, seed=0, log_interval=2, checkpoint_interval=2),
)


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images") / "images", n_images=16, size=80, seed=1, n_classes=2)


@pytest.fixture
def tiny_cfg(image_root) -> Config:
    cfg = Config(TINY)
    cfg.data.root = str(image_root)
    return cfg


def write_config(cfg: Config, path: Path) -> Path:
    path.write_text(cfg.pretty_text)
    return path
