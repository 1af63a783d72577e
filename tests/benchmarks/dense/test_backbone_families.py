"""The MMDetection / MMSegmentation backbone takes every checkpoint family with its architecture
read from the file (arch omitted): block outputs before the adapter equal the family's own
forward (speed/reference/families.py), and the multi-scale adapter brings any patch size to the
detector's strides 4/8/16/32 on the ceil(H/s) x ceil(W/s) grids."""
from __future__ import annotations

import pytest
import torch

from benchmarks.dense.adapter import MultiScaleAdapter
from benchmarks.dense.backbone import FLSLViT
from speed.reference import families as ref
from speed.reference.vit import relative_difference
from tests.pretrain import family_releases as fr

CASES = {
    "dinov2-reg4": (lambda d: fr.dinov2_hub(d, registers=True), ref.dinov2_forward, 14),
    "selfpatch": (lambda d: fr.selfpatch_training(d)[:2], ref.selfpatch_forward, 16),
    "dinov3": (fr.dinov3_hub, ref.dinov3_forward, 16),
    "eva02": (fr.eva02_mim, ref.eva02_forward, 14),
}


@pytest.mark.parametrize("name", CASES)
def test_backbone_blocks_equal_the_family_network(name, tmp_path):
    write, forward, patch = CASES[name]
    path, state = write(tmp_path)
    model = FLSLViT(out_indices=(0, 1, 0, 1), adapter="single_scale",
                    init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    model.init_weights()
    model.eval()
    assert model.patch_size == patch and model.family == name.split("-")[0]
    images = torch.randn(1, 3, 182, 266) if patch == 14 else torch.randn(1, 3, 160, 256)
    with torch.no_grad():
        maps = model(images)
    blocks, _ = forward(state, images, heads=fr.HEADS)
    for got, want in zip(maps, [blocks[i] for i in (0, 1, 0, 1)]):
        assert got.shape[-2:] == (images.shape[-2] // patch, images.shape[-1] // patch)
        assert relative_difference(got.flatten(2).transpose(1, 2), want) <= 1e-5


@pytest.mark.parametrize("patch,size", [(14, (182, 266)), (14, (200, 300)), (16, (200, 300)), (8, (200, 300)),
                                        (32, (224, 320))])
def test_adapter_reaches_every_stride_from_any_patch(patch, size):
    h, w = size
    grid = (-(-h // patch), -(-w // patch))
    adapter = MultiScaleAdapter(8, patch, norm="BN").eval()
    maps = [torch.randn(1, 8, *grid) for _ in range(4)]
    outs = adapter(maps, (h, w))
    if patch == 8:   # its own column: deconv, identity, pool 2, pool 4 of the stride-8 grid
        want = [(2 * grid[0], 2 * grid[1]), grid, (grid[0] // 2, grid[1] // 2), (grid[0] // 4, grid[1] // 4)]
    else:            # every other patch: the stride-16 grid ceil(H/16) x ceil(W/16), then x4, x2, x1, /2
        b = (-(-h // 16), -(-w // 16))
        want = [(4 * b[0], 4 * b[1]), (2 * b[0], 2 * b[1]), b, (b[0] // 2, b[1] // 2)]
    assert [tuple(o.shape[-2:]) for o in outs] == want
    assert adapter.strides == (4, 8, 16, 32)


def test_the_paper_head_split_is_explicit_and_logged(tmp_path, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance("flsl-test")
    path, _ = fr.dinov2_hub(tmp_path, width=384)
    model = FLSLViT(out_indices=(0, 1, 0, 1), num_heads=8, init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    model.init_weights()
    assert model.encoder.blocks[0].attn.num_heads == 8 and model.trained_heads == 6
    out = capsys.readouterr()
    assert "num_heads=8 splits the 384 channels 8 x 48 instead of the 6 x 64" in out.out + out.err
