"""The checkpoint loader on bad or unusual input (issue: checkpoints of unexpected dtypes,
non-finite features, reproducible exports)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from pretrain.checkpoint import CheckpointError, export_encoder, load_encoder_weights, load_pretrained_encoder
from pretrain.encoder import FeatureError, block_outputs, build_encoder, encode
from tests.benchmarks.conftest import write_release


def _dino_train(tmp_path, change=None):
    release = write_release("dino-train", tmp_path, grid=4)
    raw = torch.load(release.path, weights_only=False)
    if change:
        change(raw["teacher"])
    torch.save(raw, release.path)
    return release


def test_integer_weights_are_refused(tmp_path):
    def quantise(t):
        t["backbone.blocks.0.attn.qkv.weight"] = (t["backbone.blocks.0.attn.qkv.weight"] * 100).to(torch.int8)
    release = _dino_train(tmp_path, quantise)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight \(int8\).*quantised"):
        load_encoder_weights(release.path)


def test_half_precision_weights_are_converted_with_a_warning(tmp_path):
    def halve(t):
        for k in t:
            t[k] = t[k].half()
    release = _dino_train(tmp_path, halve)
    with pytest.warns(UserWarning, match="float16, converted to float32"):
        loaded = load_encoder_weights(release.path)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict.values())
    assert "converted to float32" in loaded.describe()
    want = release.state["blocks.1.mlp.fc1.weight"].half().float()
    assert torch.equal(loaded.state_dict["blocks.1.mlp.fc1.weight"], want)


def test_overflowing_features_name_the_checkpoint_and_the_block(tmp_path):
    def blow_up(t):   # finite weights whose second block overflows float32
        t["backbone.blocks.1.mlp.fc2.weight"] = torch.full_like(t["backbone.blocks.1.mlp.fc2.weight"], 3e38)
    release = _dino_train(tmp_path, blow_up)
    model, _ = load_pretrained_encoder(release.path)
    images = torch.randn(1, 3, 64, 64)
    block_outputs(model, images, [0])                       # block 0 is fine
    with pytest.raises(FeatureError, match=rf"{release.path}: block 1 output holds \d+ NaN or infinite"):
        block_outputs(model, images, [0, 1])
    with pytest.raises(FeatureError, match=rf"{release.path}: block 1 output"):
        encode(model, images)


def test_exports_of_identical_tensors_are_identical_bytes(tmp_path):
    """safetensors writes its metadata from a hash map whose order changes between processes;
    the export sorts the header, so the same tensors give the same file in every process."""
    script = ("import sys, torch\nfrom pretrain.encoder import build_encoder\n"
              "from pretrain.checkpoint import export_encoder\ntorch.manual_seed(0)\n"
              "export_encoder(build_encoder('vit_tiny_patch16_224', depth=1, img_size=32), sys.argv[1])\n")
    files = []
    for i in range(3):
        out = tmp_path / f"e{i}.safetensors"
        proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        files.append(out.read_bytes())
    assert all(f == files[0] for f in files)
    model, _ = load_pretrained_encoder(tmp_path / "e0.safetensors")   # still a valid file
    torch.manual_seed(0)
    ref = build_encoder("vit_tiny_patch16_224", depth=1, img_size=32)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_the_training_forward_reads_no_value_back_for_the_feature_check():
    """Evaluation paths check features (encode's default); the training step must not: the check
    reads a value back to the host on every forward. FLSLNet's teacher pass on a network with a
    NaN weight returns NaN targets (the trainer's per-interval loss check stops the run) instead
    of raising in the middle of a step."""
    from pretrain.encoder import EncoderSpec
    from pretrain.model import FLSLNet
    torch.manual_seed(0)
    net = FLSLNet(EncoderSpec.make("vit_tiny_patch16_224", depth=1, img_size=32),
                  out_dim=16, hidden_dim=32, bottleneck_dim=8)
    with torch.no_grad():
        net.backbone.blocks[0].mlp.fc2.bias.fill_(float("nan"))
    images = torch.zeros(1, 3, 32, 32)
    with pytest.raises(FeatureError):
        encode(net.backbone, images)
    tokens = encode(net.backbone, images, check_finite=False)
    assert tokens.shape == (1, 4, 192) and torch.isnan(tokens).all()
    import inspect
    source = inspect.getsource(FLSLNet)
    assert source.count("check_finite=False") == source.count("encode(")


def test_block_outputs_check_can_be_skipped_for_training_steps():
    """block_outputs checks features unless told not to (the dense backbone in training mode)."""
    from benchmarks.dense.backbone import FLSLViT
    torch.manual_seed(0)
    b = FLSLViT(arch="vit_tiny_patch16_224", out_indices=(0, 0, 0, 0), encoder_kwargs={"depth": 1})
    with torch.no_grad():
        b.encoder.blocks[0].mlp.fc2.bias.fill_(float("nan"))
    images = torch.zeros(1, 3, 32, 32)
    with pytest.raises(FeatureError, match="block 0"):
        block_outputs(b.encoder, images, [0])
    assert torch.isnan(block_outputs(b.encoder, images, [0], check_finite=False)[0]).all()
    b.train()
    b(images)                                  # training: no read-back, no error
    b.eval()
    with pytest.raises(FeatureError):
        b(images)                              # evaluation: the check names the block
