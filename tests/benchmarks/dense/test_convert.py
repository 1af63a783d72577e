"""pretrain/convert.py (tools/convert_checkpoint.py) and the format detection of pretrain/checkpoint.py: every supported
layout converts to an export whose encoder computes exactly the source network's features (class
token and position rule included), and the tool reports what it kept, dropped and did not read."""
from __future__ import annotations

import datetime
import subprocess
import sys

import pytest
import timm
import torch

from pretrain.checkpoint import (CheckpointError, load_encoder_weights, load_pretrained_encoder,
                                 safetensors_metadata)
from pretrain.encoder import EncoderSpec, encode
from tests.benchmarks.conftest import FORMATS, RELEASES, tiny_encoder, write_format, write_release
from core.errors import cli_main
from pretrain import convert as convert_checkpoint

EXPECTED_FORMAT = {"flsl-export": "flsl-export", "flsl-train": "flsl-train", "flsl-authors": "flsl-authors",
                   "dino": "dino", "dino-train": "dino", "ibot": "ibot", "ibot-train": "ibot",
                   "timm": "timm", "timm-safetensors": "timm", "authors": "flsl-authors"}


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(5)
    return torch.randn(2, 3, 64, 96)  # non-square: positions resampled from the 4x4 grid


@pytest.mark.parametrize("fmt", FORMATS)
def test_class_token_free_layouts_convert_to_identical_features(fmt, tiny16, images, tmp_path, capsys):
    src = write_format(fmt, tiny16, tmp_path / "src")
    dst = tmp_path / "out.safetensors"
    assert convert_checkpoint.main([str(src), "--out", str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"detected format: {EXPECTED_FORMAT[fmt]}\n" in out and "runs as: no class token" in out
    meta = safetensors_metadata(dst)
    assert meta["patch_size"] == "16" and "flsl_spec" in meta
    model, loaded = load_pretrained_encoder(dst)
    assert loaded.format == "flsl-export"
    with torch.no_grad():
        torch.testing.assert_close(encode(model.eval(), images), encode(tiny16, images), rtol=0, atol=0)
    # our exports stay class-token free: N-entry positions, no class token, no heads
    assert "cls_token" not in loaded.state_dict and not any(k.startswith("head") for k in loaded.state_dict)
    assert loaded.state_dict["pos_embed"].shape == tiny16.pos_embed.shape
    assert f"kept: {len(tiny16.state_dict())} tensors: pos_embed [1, 16, 192], patch_embed.proj.bias [192]" in out
    if fmt == "flsl-authors":
        assert "cls_token (unused: pos_embed has 16 entries" in out
        assert "not read: args, epoch, flsl_loss, fp16_scaler, optimizer, student" in out


@pytest.mark.parametrize("kind", RELEASES)
def test_release_layouts_convert_to_exports_that_run_as_trained(kind, tmp_path, capsys):
    release = write_release(kind, tmp_path / "src", grid=4)
    dst = tmp_path / "out.safetensors"
    family = ["--family", "dino"] if kind == "dino" else []   # a bare DINO backbone is a headless timm ViT too
    assert convert_checkpoint.main([str(release.path), "--out", str(dst), *family]) == 0
    out = capsys.readouterr().out
    assert f"detected format: {EXPECTED_FORMAT[kind]}\n" in out
    source, src_info = load_pretrained_encoder(release.path, family=family[1] if family else None)
    export, info = load_pretrained_encoder(dst)
    assert info.spec == src_info.spec
    class_token = release.family != "authors"
    spec = EncoderSpec.from_json(safetensors_metadata(dst)["flsl_spec"])
    assert spec.class_token == class_token and spec.positions == ("timm" if release.family == "timm" else "dino")
    assert ("cls_token [1, 1, 192], pos_embed [1, 17, 192]" in out) == class_token
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(encode(export.eval(), x), encode(source.eval(), x), rtol=0, atol=0)
    # and timm still loads the export strictly (its own forward: equal on the stored grid)
    model = timm.create_model(spec.arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(dst), custom_load=False),
                              **spec.timm_kwargs()).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x)[:, model.num_prefix_tokens:], encode(export, x))


def test_authors_release_student_and_teacher(tiny16, images, tmp_path, capsys):
    student = tiny_encoder(16, seed=9)
    src = write_format("flsl-authors", tiny16, tmp_path, student=student)
    for flag, expected in (([], tiny16), (["--which", "student"], student)):
        dst = tmp_path / f"out{len(flag)}.safetensors"
        assert convert_checkpoint.main([str(src), "--out", str(dst), *flag]) == 0
        model, _ = load_pretrained_encoder(dst)
        with torch.no_grad():
            torch.testing.assert_close(encode(model.eval(), images), encode(expected, images),
                                       rtol=0, atol=0)
    out = capsys.readouterr().out
    assert "detected format: flsl-authors" in out and "converted student" in out


def test_authors_release_keeps_only_the_encoder(tiny16, tmp_path):
    src = write_format("flsl-authors", tiny16, tmp_path)
    raw = torch.load(src, weights_only=False)
    loaded = load_encoder_weights(src)
    # independent expectation: the teacher's "backbone." entries, without the unused class token
    assert set(loaded.state_dict) == set(tiny16.state_dict())
    for k, v in tiny16.state_dict().items():
        torch.testing.assert_close(loaded.state_dict[k], v, rtol=0, atol=0)
    heads = {k for k in raw["teacher"] if k.startswith("head.")}
    assert set(loaded.dropped) == heads | {"cls_token"} and not loaded.spec.class_token
    assert set(loaded.not_read) == set(raw) - {"teacher"}


def test_ibot_mask_embedding_is_dropped_not_loaded(tmp_path):
    loaded = load_encoder_weights(write_release("ibot-train", tmp_path, grid=4).path, which="student")
    assert "masked_embed" in loaded.dropped and "masked_embed" not in loaded.state_dict
    assert loaded.format == "ibot" and loaded.spec.class_token


def test_file_name_does_not_decide(tmp_path):
    """The same content under misleading names is read the same way."""
    authors = write_release("authors", tmp_path / "a", grid=4).path
    dino = write_release("dino-train", tmp_path / "d", grid=4).path
    fake_dino, fake_flsl = tmp_path / "dino_vits16.pth", tmp_path / "flsl_ibot_release.pth"
    fake_dino.write_bytes(authors.read_bytes())
    fake_flsl.write_bytes(dino.read_bytes())
    assert load_encoder_weights(fake_dino).format == "flsl-authors"
    assert not load_encoder_weights(fake_dino).spec.class_token
    assert load_encoder_weights(fake_flsl).format == "dino" and load_encoder_weights(fake_flsl).spec.class_token


def test_class_slot_without_class_token_is_refused(tmp_path):
    release = write_release("dino", tmp_path, grid=4)
    state = {k: v for k, v in release.state.items() if k != "cls_token"}
    torch.save(state, release.path)
    with pytest.raises(CheckpointError, match="class slot .* no cls_token"):
        load_encoder_weights(release.path)


def test_wrong_patch_size_is_refused(tmp_path, capsys):
    src = write_release("dino-train", tmp_path, grid=4).path
    assert cli_main(convert_checkpoint.main, [str(src), "--out", str(tmp_path / "o.safetensors"), "--patch-size", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "patch size 16" in err and str(src) in err
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("fmt", ["flsl-export", "dino"])
def test_truncated_file_is_refused_naming_it(fmt, tiny16, tmp_path, capsys):
    src = write_format(fmt, tiny16, tmp_path) if fmt != "dino" else write_release("dino", tmp_path, grid=4).path
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert cli_main(convert_checkpoint.main, [str(src), "--out", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(src) in err and "\n" == err[-1] and err.count("\n") == 1


def test_missing_block_is_listed(tmp_path):
    src = write_release("dino", tmp_path, depth=4, grid=4).path
    state = torch.load(src, weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("blocks.2.")}  # depth 4 -> a hole
    torch.save(state, src)
    with pytest.raises(CheckpointError) as err:
        load_pretrained_encoder(src, family="dino")
    assert "blocks.2.attn.qkv.weight" in str(err.value) and str(src) in str(err.value)


def test_untrusted_pickle_is_refused_unless_trusted(images, tmp_path, capsys):
    src = write_release("dino", tmp_path, grid=4).path
    state = torch.load(src, weights_only=True)
    safe = tmp_path / "safe.pth"
    torch.save({"model": state}, safe)                                 # the same content, loadable
    reference, _ = load_pretrained_encoder(safe, family="dino")
    torch.save({"model": state, "time": datetime.timedelta(1)}, src)  # a class outside the allow-list
    dst = tmp_path / "o.safetensors"
    assert cli_main(convert_checkpoint.main, [str(src), "--out", str(dst)]) == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and "--trust-pickle" in err and "\x1b" not in err
    assert convert_checkpoint.main([str(src), "--out", str(dst), "--trust-pickle", "--family", "dino"]) == 0
    model, _ = load_pretrained_encoder(dst)
    with torch.no_grad():
        torch.testing.assert_close(encode(model.eval(), images), encode(reference.eval(), images), rtol=0, atol=0)


def test_cli_error_has_no_traceback(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, str(repo_root / "tools" / "convert_checkpoint.py"),
                           str(tmp_path / "absent.pth"), "--out", str(tmp_path / "o.safetensors")],
                          capture_output=True, text=True, cwd=repo_root)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'absent.pth'}"
