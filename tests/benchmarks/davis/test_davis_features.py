"""Frame preprocessing and encoders of every supported checkpoint format."""
import math

import cv2
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from benchmarks.davis.features import FeatureExtractor, load_extractor, read_frame, resized_size
from pretrain.checkpoint import CheckpointError
from pretrain.encoder import build_encoder, encode, resample_positions


def test_resized_size_rule():
    assert resized_size(480, 854) == (480, 832)          # DAVIS 480p
    assert resized_size(480, 910) == (480, 896)
    assert resized_size(854, 480) == (832, 480)          # portrait
    assert resized_size(480, 480) == (480, 448)          # square: DINO's frame rule
    assert resized_size(96, 160, short_side=96) == (96, 128)
    for h, w in [(360, 640), (500, 333), (1080, 1920)]:
        if h > w:
            want = (math.floor(480 * h / w / 64) * 64, 480)
        else:
            want = (480, math.floor(480 * w / h / 64) * 64)
        assert resized_size(h, w) == want


def test_read_frame_matches_plain_opencv(davis_small):
    path = davis_small.root / "JPEGImages/480p" / davis_small.sequences[0] / "00003.jpg"
    x, size = read_frame(path, short_side=96)
    img = cv2.imread(str(path))
    assert size == img.shape[:2] == (96, 160)
    img = cv2.resize(img, (128, 96)).astype(np.float32) / 255.0
    img = img[:, :, ::-1].transpose(2, 0, 1)
    # DINO's script: mean (0.485, 0.456, 0.406), std (0.228, 0.224, 0.225) -- its 0.228 kept on purpose
    want = (img - np.array((0.485, 0.456, 0.406), np.float32)[:, None, None]) / np.array((0.228, 0.224, 0.225), np.float32)[:, None, None]
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-6)


def test_extractor_refuses_a_rule_its_encoder_does_not_run():
    model = build_encoder("vit_tiny_patch16_224", depth=1)
    assert FeatureExtractor(model).rule == "flsl" and FeatureExtractor(model, "flsl").rule == "flsl"
    with pytest.raises(ValueError, match="'flsl' rule, 'dino' requested"):
        FeatureExtractor(model, "dino")


def _dino_plain(model, x):
    p = 16
    tok = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tok = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), tok], dim=1)
    grid = model.pos_embed[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    gh, gw = x.shape[2] // p, x.shape[3] // p
    grid = F.interpolate(grid, scale_factor=((gh + 0.1) / 14, (gw + 0.1) / 14), mode="bicubic")
    pos = torch.cat([model.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], 1)
    tok = tok + pos
    for blk in model.blocks:
        tok = blk(tok)
    return model.norm(tok)[:, 1:]


def test_our_export_runs_without_class_token(tiny_checkpoint):
    ex = load_extractor(tiny_checkpoint, "vit_tiny", 16)
    torch.manual_seed(0)
    ref = build_encoder("vit_tiny_patch16_224", depth=1)
    x = torch.randn(2, 3, 96, 128)
    assert ex.rule == "flsl"
    torch.testing.assert_close(ex(x), encode(ref, x))      # same weights as the export
    assert ex(x).shape == (2, 6 * 8, 192)


@pytest.mark.parametrize("name,extra", [("dino_tiny.pth", {}),
                                        ("ibot_tiny.pth", {"masked_embed": torch.zeros(1, 192)})])
def test_class_token_checkpoints_use_dino_rule(tmp_path, name, extra):
    torch.manual_seed(1)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=1)
    with torch.no_grad():
        model.pos_embed.normal_()
        model.cls_token.normal_()
    path = tmp_path / name
    torch.save({"teacher": {**model.state_dict(), **extra}}, path)
    ex = load_extractor(path, "vit_tiny", 16)
    assert ex.rule == "dino"
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        torch.testing.assert_close(ex(x), _dino_plain(model, x))
        # the class token takes part in attention: without it the patch features change
        tok = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tok = tok + resample_positions(model.pos_embed, (14, 14), (6, 10), 1, "dino")[:, 1:]
        for blk in model.blocks:
            tok = blk(tok)
        assert (ex(x) - model.norm(tok)).abs().max() > 1e-3


def test_timm_checkpoint_uses_timm_forward(tmp_path):
    torch.manual_seed(2)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, depth=1,
                              dynamic_img_size=True)
    path = tmp_path / "timm_tiny.pth"
    torch.save(model.state_dict(), path)
    ex = load_extractor(path, "vit_tiny", 16)
    assert ex.rule == "timm"
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(ex(x), model.forward_features(x)[:, 1:])


def test_expected_arch_and_patch_are_checked(tiny_checkpoint):
    with pytest.raises(CheckpointError, match="tiny.safetensors.*vit_small expected"):
        load_extractor(tiny_checkpoint, "vit_small", 16)
    with pytest.raises(CheckpointError, match="tiny.safetensors: patch size 16 in the checkpoint, 8"):
        load_extractor(tiny_checkpoint, "vit_tiny", 8)


def test_frames_are_normalised_as_the_family_was_trained(tmp_path, davis_small):
    """ImageNet-normalised families get DINO's DAVIS statistics (its 0.228 std included); a CLIP
    tower gets CLIP's own, and the frames the pipeline feeds it are normalised with them."""
    from core.constants import DINO_DAVIS_STD, IMAGENET_MEAN
    from pretrain.families import CLIP_MEAN, CLIP_STD
    from tests.pretrain import family_releases as fr
    clip = tmp_path / "clip.pt"
    torch.save(fr.clip_model(quick_gelu=True).state_dict(), clip)
    extractor = load_extractor(clip, family="openai-clip")
    assert (extractor.mean, extractor.std) == (CLIP_MEAN, CLIP_STD)
    dino = tmp_path / "vit.safetensors"
    from pretrain.checkpoint import export_encoder
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1), dino)
    assert (load_extractor(dino).mean, load_extractor(dino).std) == (IMAGENET_MEAN, DINO_DAVIS_STD)
    path = davis_small.root / "JPEGImages/480p" / davis_small.sequences[0] / "00003.jpg"
    x, _ = read_frame(path, 96, 64, extractor.mean, extractor.std)
    img = cv2.resize(cv2.imread(str(path)), (128, 96)).astype(np.float32)[:, :, ::-1].transpose(2, 0, 1) / 255.0
    want = (img - np.array(CLIP_MEAN, np.float32)[:, None, None]) / np.array(CLIP_STD, np.float32)[:, None, None]
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-6)
    # the pipeline's reader uses the extractor's statistics
    from benchmarks.davis.pipeline import _read_frames
    batch, _ = _read_frames([path], 96, 64, extractor.mean, extractor.std)
    assert torch.equal(batch[0], x)
