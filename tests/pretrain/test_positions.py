"""Position rules of pretrain/encoder.py against an independent computation.

The FLSL encoder resamples its fixed sine-cosine table like the authors' code (DINO's
``interpolate_pos_encoding`` without the class slot): bicubic, scale factor ``(g + 0.1) / n``,
no antialiasing. The reference below is written out in numpy from the definition of bicubic
convolution (Keys, a = -0.75), source coordinate ``(i + 0.5) / s - 0.5`` from the scale factor
``s`` and indices clamped at the border -- no call to ``F.interpolate``.
"""
import math

import numpy as np
import pytest
import torch
from timm.layers import resample_abs_pos_embed

from pretrain.encoder import (EncoderSpec, build_encoder, encode, resample_positions,
                              sincos_pos_embed_2d)


def cubic_weights(t: float, a: float = -0.75) -> np.ndarray:
    """Weights of the taps at offsets -1, 0, 1, 2 from floor(x) for fraction ``t``."""
    def near(x):   # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):    # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.array([far(1 + t), near(t), near(1 - t), far(2 - t)])


def resize_axis(values: np.ndarray, out: int, scale: float, axis: int) -> np.ndarray:
    """Bicubic resampling of ``values`` along ``axis`` to ``out`` samples for scale factor ``scale``."""
    n = values.shape[axis]
    moved = np.moveaxis(values, axis, 0)
    result = np.zeros((out,) + moved.shape[1:])
    for i in range(out):
        src = (i + 0.5) / scale - 0.5
        base = math.floor(src)
        for w, k in zip(cubic_weights(src - base), range(base - 1, base + 3)):
            result[i] += w * moved[min(max(k, 0), n - 1)]
    return np.moveaxis(result, 0, axis)


def authors_rule(table: np.ndarray, old: tuple, new: tuple) -> np.ndarray:
    """``[oh*ow, C]`` -> ``[nh*nw, C]`` with the scale factors (g + 0.1) / n of each axis."""
    (oh, ow), (nh, nw) = old, new
    grid = table.reshape(oh, ow, -1).astype(np.float64)
    grid = resize_axis(grid, nh, (nh + 0.1) / oh, axis=0)
    grid = resize_axis(grid, nw, (nw + 0.1) / ow, axis=1)
    return grid.reshape(nh * nw, -1)


@pytest.mark.parametrize("old,new", [((14, 14), (6, 6)), ((14, 14), (30, 52)), ((4, 4), (7, 5)),
                                     ((14, 14), (50, 76))])
def test_dino_rule_equals_written_out_bicubic(old, new):
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + old[0] * old[1], 16)           # with a class slot
    got = resample_positions(pos, old, new, num_prefix=1, rule="dino")
    want = authors_rule(pos[0, 1:].numpy(), old, new)
    assert got.shape == (1, 1 + new[0] * new[1], 16)
    assert torch.equal(got[:, :1], pos[:, :1])                # the class slot is not resampled
    np.testing.assert_allclose(got[0, 1:].numpy(), want, rtol=0, atol=2e-5)


def test_same_grid_is_returned_unchanged():
    pos = torch.randn(1, 196, 8)
    assert resample_positions(pos, (14, 14), (14, 14), 0, "dino") is pos
    assert resample_positions(pos, (14, 14), (14, 14), 0, "timm") is pos


def test_flsl_local_crop_uses_the_authors_rule():
    """A 96 px local crop of a ViT/16 trained at 224: the 14x14 sine-cosine table becomes 6x6 by
    the authors' rule inside the encoder's own forward pass."""
    torch.manual_seed(1)
    model = build_encoder("vit_tiny_patch16_224", depth=1).eval()
    assert model.flsl_spec.positions == "dino" and not model.flsl_spec.class_token
    x = torch.randn(2, 3, 96, 96)
    table = authors_rule(sincos_pos_embed_2d(14, 14, 192)[0].double().numpy(), (14, 14), (6, 6))
    with torch.no_grad():
        tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = tokens + torch.from_numpy(table).float()[None]
        want = model.norm(model.blocks(tokens))
        got = encode(model, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_timm_rule_differs_on_the_local_grid():
    """The measured difference that made the recipe switch: timm's antialiased size-based
    resampling vs the authors' rule on the 6x6 grid of a 96 px crop."""
    pos = sincos_pos_embed_2d(14, 14, 384)
    ours = resample_positions(pos, (14, 14), (6, 6), 0, "dino")
    timm_rule = resample_abs_pos_embed(pos, new_size=[6, 6], old_size=[14, 14], num_prefix_tokens=0)
    rel = float((ours - timm_rule).norm() / ours.norm())
    assert rel > 0.01, rel


def test_spec_json_keeps_flsl_layout_and_records_class_token_rules():
    flsl = EncoderSpec.make("vit_small_patch16_224")
    assert flsl.to_json() == '{"arch": "vit_small_patch16_224", "kwargs": {}}'   # unchanged format
    dino = EncoderSpec.make("vit_small_patch16_224", class_token=True)
    timm_spec = EncoderSpec.make("vit_small_patch16_224", positions="timm", class_token=True)
    assert '"positions": "dino"' in dino.to_json() and '"positions": "timm"' in timm_spec.to_json()
    for spec in (flsl, dino, timm_spec):
        assert EncoderSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="position rule"):
        EncoderSpec.make("vit_small_patch16_224", positions="nearest")
