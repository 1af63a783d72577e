"""Encoder definition and export: no class token, fixed sin-cos positions, timm round trip."""
import math

import timm
import torch

from pretrain.checkpoint import export_encoder, load_pretrained_encoder, safetensors_metadata
from pretrain.encoder import EncoderSpec, build_encoder, encode, sincos_pos_embed_2d


def test_sincos_embedding_formula():
    pe = sincos_pos_embed_2d(3, 4, 8)[0]           # [12, 8]
    for r in range(3):
        for c in range(4):
            row = pe[r * 4 + c]
            for k in range(2):
                w = 1.0 / 10000 ** (k / 2)
                assert math.isclose(row[k], math.sin(c * w), abs_tol=1e-6)
                assert math.isclose(row[2 + k], math.cos(c * w), abs_tol=1e-6)
                assert math.isclose(row[4 + k], math.sin(r * w), abs_tol=1e-6)
                assert math.isclose(row[6 + k], math.cos(r * w), abs_tol=1e-6)


def test_encoder_has_no_class_token_and_fixed_positions():
    model = build_encoder("vit_small_patch16_224", depth=1)
    assert model.cls_token is None and model.num_prefix_tokens == 0
    assert not model.pos_embed.requires_grad
    torch.testing.assert_close(model.pos_embed, sincos_pos_embed_2d(14, 14, 384))
    assert model.num_heads if hasattr(model, "num_heads") else model.blocks[0].attn.num_heads == 6
    x = torch.randn(2, 3, 96, 160)                 # other grids: positions resampled
    z = encode(model, x)
    assert z.shape == (2, 6 * 10, 384)
    # final LayerNorm applied: every token has ~zero mean / unit variance before the affine
    ln = model.norm
    raw = (z - ln.bias) / ln.weight
    assert raw.mean(-1).abs().max() < 1e-4


def test_export_loads_through_timm_strictly_with_same_features(tmp_path):
    model = build_encoder("vit_tiny_patch16_224", depth=2, img_size=64)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)
    out = tmp_path / "enc.safetensors"
    export_encoder(model, out)
    spec = EncoderSpec.from_json(safetensors_metadata(out)["flsl_spec"])
    assert spec == model.flsl_spec
    loaded = timm.create_model(spec.arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(out), custom_load=False),
                               **spec.timm_kwargs())
    x = torch.randn(2, 3, 64, 64)   # the trained grid: timm's model computes our network
    model.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_features(x), encode(model, x))
        # on other grids timm resamples the table with its own rule, ours with the authors' rule
        wide = torch.randn(2, 3, 64, 96)
        assert (loaded.forward_features(wide) - encode(model, wide)).abs().max() > 1e-4
    x = torch.randn(2, 3, 64, 96)
    ours, info = load_pretrained_encoder(out)
    assert info.format == "flsl-export" and info.patch_size == 16
    with torch.no_grad():
        torch.testing.assert_close(encode(ours.eval(), x), encode(model, x))
