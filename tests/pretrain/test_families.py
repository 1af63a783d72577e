"""Every checkpoint family runs as trained (docs/families.md): a file in each release's layout is
detected from its content, converted, and its block outputs (patch tokens only) and final
features equal an independent forward of the family's own network -- speed/reference/families.py
(DINOv2, SelfPatch, MAE, DeiT III, SigLIP on big_vision's arrays), open_clip itself (CLIP and
OpenCLIP), timm itself (timm files) -- to 1e-5 relative, at a square and a non-square size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pretrain.checkpoint import CheckpointError, load_encoder_weights, load_pretrained_encoder
from pretrain.encoder import block_outputs, encode
from pretrain.families import CLIP_MEAN, SIGLIP_STD
from speed.reference import families as ref
from speed.reference.vit import dino_vit_forward, relative_difference
from tests.pretrain import family_releases as fr

TOL = 1e-5
SIZES16 = [(224, 224), (160, 256)]
SIZES14 = [(224, 224), (182, 266)]


def _ours(path, images, family=None):
    model, loaded = load_pretrained_encoder(path, family=family)
    model.eval()
    with torch.no_grad():
        blocks = block_outputs(model, images, list(range(len(model.blocks))))
        final = encode(model, images)
    return blocks, final, loaded


def _images(size, seed=0):
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed))


def _assert_same(ours, theirs, grid):
    (ob, of), (rb, rf) = ours, theirs
    assert len(ob) == len(rb)
    for got, want in zip([*ob, of], [*rb, rf]):
        assert got.shape == (2, grid[0] * grid[1], fr.WIDTH)   # patch tokens only
        rel = relative_difference(got, want)
        assert rel <= TOL, rel


# ------------------------------------------------------------------------------------ DINOv2
@pytest.mark.parametrize("registers,swiglu", [(False, False), (True, False), (True, True)])
def test_dinov2_hub_files_run_as_dinov2(tmp_path, registers, swiglu):
    path, state = fr.dinov2_hub(tmp_path, registers=registers, swiglu=swiglu)
    loaded = load_encoder_weights(path)
    assert loaded.family == "dinov2" and loaded.patch_size == 14
    assert loaded.spec.extra_tokens == (4 if registers else 0) and loaded.spec.class_token
    assert loaded.spec.positions == ("timm" if registers else "dino")
    assert "mask_token" in loaded.dropped
    for size in SIZES14:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.dinov2_forward(state, images, heads=fr.HEADS), (size[0] // 14, size[1] // 14))


def test_dinov2_training_teacher_checkpoint(tmp_path):
    """``teacher_checkpoint.pth`` of DINOv2's training: ``{"teacher": {backbone.*, dino_head.*,
    ibot_head.*}}``; the backbone runs as the hub file does, the heads are ignored."""
    hub, state = fr.dinov2_hub(tmp_path / "hub", registers=True)
    heads = {f"{h}.{k}": v for h in ("dino_head", "ibot_head") for k, v in fr.projection_head_state(fr.WIDTH).items()}
    path = tmp_path / "teacher_checkpoint.pth"
    torch.save({"teacher": {**{f"backbone.{k}": v for k, v in state.items()}, **heads}}, path)
    loaded = load_encoder_weights(path)
    assert (loaded.family, loaded.format) == ("dinov2", "dinov2-train") and set(heads) <= set(loaded.dropped)
    assert "head tensors (dino_head.*, ibot_head.*)" in loaded.describe()
    images = _images((182, 266))
    assert torch.equal(_ours(path, images)[1], _ours(hub, images)[1])


def test_dinov2_rule_matters(tmp_path):
    """The check above can fail: DINOv2 without registers run with the register models' rule
    (antialiased, no offset) or without LayerScale differs far beyond the tolerance."""
    path, state = fr.dinov2_hub(tmp_path, registers=False)
    images = _images((182, 266))
    _, want = ref.dinov2_forward(state, images, heads=fr.HEADS)
    _, with_reg_rule = ref.dinov2_forward({**state, "register_tokens": torch.zeros(1, 0, fr.WIDTH)}, images,
                                          heads=fr.HEADS)
    assert relative_difference(with_reg_rule, want) > 100 * TOL
    no_ls = {k: (torch.ones_like(v) if k.endswith("gamma") else v) for k, v in state.items()}
    assert relative_difference(ref.dinov2_forward(no_ls, images, heads=fr.HEADS)[1], want) > 100 * TOL


def test_dinov3_hub_file_runs_as_dinov3(tmp_path):
    path, state = fr.dinov3_hub(tmp_path)
    loaded = load_encoder_weights(path)
    assert loaded.family == "dinov3" and loaded.spec.rope and loaded.spec.extra_tokens == 4
    assert {"mask_token", "rope_embed.periods", "blocks.0.attn.qkv.bias_mask"} <= set(loaded.dropped)
    for size in SIZES16:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.dinov3_forward(state, images, heads=fr.HEADS), (size[0] // 16, size[1] // 16))
    model, _ = load_pretrained_encoder(path)             # an export keeps running as DINOv3
    from pretrain.checkpoint import export_encoder
    export_encoder(model, tmp_path / "dinov3.safetensors")
    again, info = load_pretrained_encoder(tmp_path / "dinov3.safetensors")
    assert info.family == "dinov3" and info.spec == model.flsl_spec
    with torch.no_grad():
        assert torch.equal(encode(again.eval(), images), encode(model.eval(), images))
    # the check can fail: the key bias the mask removes changes the output
    unmasked = {**state, **{k: torch.ones_like(v) for k, v in state.items() if k.endswith("bias_mask")}}
    images = _images((160, 256))
    assert relative_difference(ref.dinov3_forward(unmasked, images, heads=fr.HEADS)[1],
                               ref.dinov3_forward(state, images, heads=fr.HEADS)[1]) > 100 * TOL


@pytest.mark.parametrize("fused", [True, False])
def test_eva02_mim_file_runs_as_eva02(tmp_path, fused):
    path, state = fr.eva02_mim(tmp_path, fused=fused)
    loaded = load_encoder_weights(path)
    assert loaded.family == "eva02" and loaded.spec.rope and loaded.spec.class_token
    assert "norm.weight" in loaded.state_dict and "lm_head.weight" in loaded.dropped   # final norm kept
    for size in SIZES14:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.eva02_forward(state, images, heads=fr.HEADS), (size[0] // 14, size[1] // 14))


# ------------------------------------------------------------------------------------ SelfPatch
def test_selfpatch_training_file_runs_as_selfpatch(tmp_path, capsys):
    path, backbone, heads = fr.selfpatch_training(tmp_path)
    loaded = load_encoder_weights(path)
    assert (loaded.family, loaded.format) == ("selfpatch", "selfpatch-train")
    assert not loaded.spec.class_token and "norm.weight" not in loaded.state_dict
    assert set(loaded.dropped) == set(heads)           # ca_head's class token and norm are the head's
    line = loaded.describe()
    assert f"ignored {len(heads)} head tensors (c_head.*, ca_head.*, p_head.*)" in line
    assert "no final norm" in line
    for size in SIZES16:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.selfpatch_forward(backbone, images, heads=fr.HEADS), (size[0] // 16, size[1] // 16))


def test_selfpatch_bare_backbone(tmp_path):
    path, backbone = fr.selfpatch_bare(tmp_path)
    assert load_encoder_weights(path).family == "selfpatch"
    images = _images((160, 256))
    ob, of, _ = _ours(path, images)
    _assert_same((ob, of), ref.selfpatch_forward(backbone, images, heads=fr.HEADS), (10, 16))


# ------------------------------------------------------------------------------------ MAE, DeiT III
def test_mae_training_file_runs_as_mae(tmp_path):
    path, model = fr.mae_training(tmp_path)
    loaded = load_encoder_weights(path)
    assert loaded.family == "mae" and loaded.spec.class_token and loaded.spec.positions == "size"
    assert "mask_token" in loaded.dropped and any(k.startswith("decoder") for k in loaded.dropped)
    assert set(loaded.not_read) == {"optimizer", "epoch", "scaler", "args"}
    for size in SIZES16:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.mae_forward(model, images, heads=fr.HEADS), (size[0] // 16, size[1] // 16))


def test_deit3_release_runs_as_deit3(tmp_path):
    path, model = fr.deit3_release(tmp_path)
    loaded = load_encoder_weights(path)
    assert loaded.family == "deit3" and loaded.spec.class_token and "cls_token" in loaded.state_dict
    assert dict(loaded.spec.kwargs)["no_embed_class"] and "head.weight" in loaded.dropped
    for size in SIZES16:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.deit3_forward(model, images, heads=fr.HEADS), (size[0] // 16, size[1] // 16))


# ------------------------------------------------------------------------------------ CLIP
def _open_clip_reference(model, images, quick_gelu, ls):
    """open_clip's own tower: block outputs (hooks on the resblocks) and ``ln_post`` tokens."""
    import open_clip
    grid = (images.shape[-2] // 16, images.shape[-1] // 16)
    tower = model
    if tuple(model.visual.grid_size) != grid:   # open_clip's load-time resize to the new grid
        tower = fr.clip_model(quick_gelu=quick_gelu, image_size=(images.shape[-2], images.shape[-1]), ls=ls)
        sd = dict(model.state_dict())
        open_clip.model.resize_pos_embed(sd, tower)
        tower.load_state_dict(sd)
    tower.visual.output_tokens = True
    outs = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o[:, 1:])) for b in tower.visual.transformer.resblocks]
    with torch.no_grad():
        _, tokens = tower.visual(images)
    for h in hooks:
        h.remove()
    return outs, tokens


@pytest.mark.parametrize("quick_gelu,family", [(True, "openai-clip"), (False, "openclip")])
def test_clip_towers_equal_open_clip(tmp_path, quick_gelu, family):
    ls = None if quick_gelu else 0.1               # OpenCLIP's optional LayerScale
    model = fr.clip_model(quick_gelu=quick_gelu, ls=ls)
    path = tmp_path / "clip.pt"
    torch.save(model.state_dict(), path)           # a whole-model state dict (visual.* + text)
    with pytest.raises(CheckpointError, match="--family") as err:
        load_encoder_weights(path)                  # the activation is not in the weights
    assert "openai-clip" in str(err.value) and "openclip" in str(err.value)
    loaded = load_encoder_weights(path, family=family)
    assert loaded.family == family and loaded.mean == CLIP_MEAN
    assert "visual.proj" in loaded.dropped and "text tower" in loaded.describe()
    for size in [(64, 64), (64, 96)]:
        images = _images(size)
        ob, of, _ = _ours(path, images, family=family)
        _assert_same((ob, of), _open_clip_reference(model, images, quick_gelu, ls), (size[0] // 16, size[1] // 16))
    other = "openclip" if family == "openai-clip" else "openai-clip"
    _, wrong, _ = _ours(path, _images((64, 64)), family=other)
    assert relative_difference(wrong, _open_clip_reference(model, _images((64, 64)), quick_gelu, ls)[1]) > 100 * TOL


# ------------------------------------------------------------------------------------ SigLIP
def test_siglip_big_vision_npz_runs_as_siglip(tmp_path):
    path, img = fr.siglip_npz(tmp_path)
    loaded = load_encoder_weights(path)
    assert loaded.family == "siglip" and not loaded.spec.class_token and loaded.std == SIGLIP_STD
    assert loaded.spec.positions == "corners" and any("MAPHead_0" in k for k in loaded.dropped)
    for size in [(64, 64), (64, 96)]:
        images = _images(size)
        ob, of, _ = _ours(path, images)
        _assert_same((ob, of), ref.siglip_forward(img, images), (size[0] // 16, size[1] // 16))


# ------------------------------------------------------------------------------------ detection
def _timm_vit(**kw):
    import timm
    torch.manual_seed(3)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.cls_token.normal_()
    return model.eval()


def _timm_tokens(model, images):
    import timm
    twin = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, dynamic_img_size=True,
                             num_classes=model.num_classes, no_embed_class=model.no_embed_class).eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        return twin.forward_features(images)[:, twin.num_prefix_tokens:]


def test_timm_file_without_head_is_not_taken_for_dino(tmp_path):
    """A timm ViT saved without its classifier head has DINO's keys and shapes: refused with the
    candidates and the override; with ``family="timm"`` it runs as timm's network."""
    model = _timm_vit(num_classes=0)
    path = tmp_path / "vit.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"one of dino .*timm .*--family") as err:
        load_encoder_weights(path)
    assert "family=" in str(err.value)
    images = _images((160, 256))
    _, got, loaded = _ours(path, images, family="timm")
    assert loaded.family == "timm" and loaded.spec.positions == "timm"
    assert relative_difference(got, _timm_tokens(model, images)) <= TOL


def test_dino_state_dict_under_model_is_not_taken_for_timm(tmp_path):
    from tests.benchmarks.conftest import dino_vit_state
    state = dino_vit_state(192, 2, 14)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state, "epoch": 10}, path)
    with pytest.raises(CheckpointError, match="--family"):
        load_encoder_weights(path)
    images = _images((160, 256))
    _, got, loaded = _ours(path, images, family="dino")
    assert loaded.family == "dino" and loaded.spec.positions == "dino"
    assert relative_difference(got, dino_vit_forward(state, images, heads=3)[1]) <= TOL


def test_timm_no_embed_class_keeps_its_class_token(tmp_path):
    model = _timm_vit(num_classes=7, no_embed_class=True)   # FlexiViT style
    path = tmp_path / "flexi.pth"
    torch.save(model.state_dict(), path)
    loaded = load_encoder_weights(path)
    assert loaded.family == "timm" and loaded.spec.class_token and "cls_token" in loaded.state_dict
    for size in SIZES16:
        images = _images(size)
        _, got, _ = _ours(path, images)
        assert relative_difference(got, _timm_tokens(model, images)) <= TOL


def test_override_of_an_unambiguous_file_is_checked(tmp_path):
    path, _ = fr.siglip_npz(tmp_path)
    with pytest.raises(CheckpointError, match="not a dino encoder"):
        load_encoder_weights(path, family="dino")
    with pytest.raises(CheckpointError, match="unknown --family 'nope'"):
        load_encoder_weights(path, family="nope")


def test_ibot_student_is_told_by_its_mask_embedding_without_ibot_loss(tmp_path):
    """A training state whose loss entry is missing: the student's ``masked_embed`` alone says
    iBOT (kills the mutation pointing that rule at another family)."""
    from tests.benchmarks.conftest import write_release
    release = write_release("ibot-train", tmp_path, grid=4)
    raw = torch.load(release.path, weights_only=False)
    del raw["ibot_loss"]
    torch.save(raw, release.path)
    loaded = load_encoder_weights(release.path, which="student")
    assert loaded.format == "ibot" and loaded.family == "ibot" and "masked_embed" in loaded.dropped


def test_export_keeps_the_family(tmp_path):
    from pretrain.checkpoint import export_encoder
    path, state = fr.dinov2_hub(tmp_path, registers=True)
    model, _ = load_pretrained_encoder(path)
    out = tmp_path / "dinov2.safetensors"
    export_encoder(model, out)
    again, loaded = load_pretrained_encoder(out)
    assert loaded.format == "flsl-export" and loaded.family == "dinov2" and loaded.spec == model.flsl_spec
    images = _images((182, 266))
    with torch.no_grad():
        assert torch.equal(encode(again.eval(), images), encode(model.eval(), images))
    np.testing.assert_array_equal(loaded.state_dict["reg_token"].numpy(), state["register_tokens"].numpy())
