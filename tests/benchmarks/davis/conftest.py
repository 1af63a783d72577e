"""Generated DAVIS trees and tiny encoder checkpoints for the DAVIS tests."""
import pytest
import torch

from synthetic.davis import write_davis
from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder


@pytest.fixture(scope="session")
def davis_small(tmp_path_factory):
    """Four sequences (single / occlusion / leaving / entering + void), 8-12 frames of 96x160."""
    return write_davis(tmp_path_factory.mktemp("davis") / "DAVIS", seed=0)


@pytest.fixture
def fresh_davis(tmp_path):
    """A tree of its own (two short sequences), for tests that damage files."""
    return write_davis(tmp_path / "DAVIS", n_sequences=2, frames=(5, 5), size=(64, 96), seed=7)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random one-block ViT-Tiny/16 exported as .safetensors (our format, no class token)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1), path)
    return path

