"""tools/convert_checkpoint.py and the format detection of pretrain/checkpoint.py: every supported
layout converts to an export whose encoder computes exactly the source encoder's features."""
from __future__ import annotations

import datetime
import subprocess
import sys

import pytest
import torch

from pretrain.checkpoint import (CheckpointError, load_encoder_weights, load_pretrained_encoder,
                                 safetensors_metadata)
from pretrain.encoder import encode
from tests.benchmarks.conftest import FORMATS, tiny_encoder, write_format
from tools import convert_checkpoint

EXPECTED_FORMAT = {"flsl-export": "flsl-export", "flsl-train": "flsl-train", "flsl-authors": "flsl-authors",
                   "dino": "dino", "ibot": "ibot", "timm": "timm", "timm-safetensors": "timm"}


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(5)
    return torch.randn(2, 3, 64, 96)  # non-square: positions resampled from the 4x4 grid


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_converts_to_identical_features(fmt, tiny16, images, tmp_path, capsys):
    src = write_format(fmt, tiny16, tmp_path / "src")
    dst = tmp_path / "out.safetensors"
    assert convert_checkpoint.main([str(src), "--out", str(dst)]) == 0
    out = capsys.readouterr().out
    assert f"detected format: {EXPECTED_FORMAT[fmt]}\n" in out
    meta = safetensors_metadata(dst)
    assert meta["patch_size"] == "16" and "flsl_spec" in meta
    model, loaded = load_pretrained_encoder(dst)
    assert loaded.format == "flsl-export"
    with torch.no_grad():
        torch.testing.assert_close(encode(model.eval(), images), encode(tiny16, images), rtol=0, atol=0)
    # the class token and heads of the source are gone, the position embedding has N entries
    assert "cls_token" not in loaded.state_dict and not any(k.startswith("head") for k in loaded.state_dict)
    assert loaded.state_dict["pos_embed"].shape == tiny16.pos_embed.shape
    if fmt in ("dino", "ibot", "timm", "flsl-authors"):
        assert "class token" in out


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
    assert "detected format: flsl-authors" in capsys.readouterr().out


def test_detection_strips_prefixes_and_class_slot(tiny16, tmp_path):
    src = write_format("flsl-authors", tiny16, tmp_path)
    raw = torch.load(src, weights_only=False)
    loaded = load_encoder_weights(src)
    # independent expectation: teacher entries under "backbone.", class slot removed
    for k, v in tiny16.state_dict().items():
        torch.testing.assert_close(loaded.state_dict[k], v, rtol=0, atol=0)
    torch.testing.assert_close(loaded.cls_token, raw["teacher"]["backbone.cls_token"])
    assert loaded.pos_embed_with_cls.shape[1] == tiny16.pos_embed.shape[1] + 1
    assert set(loaded.state_dict) == set(tiny16.state_dict())


def test_ibot_mask_embedding_is_dropped_not_loaded(tiny16, tmp_path):
    loaded = load_encoder_weights(write_format("ibot", tiny16, tmp_path))
    assert "masked_embed" in loaded.dropped and "masked_embed" not in loaded.state_dict


def test_wrong_patch_size_is_refused(tiny16, tmp_path, capsys):
    src = write_format("dino", tiny16, tmp_path)
    assert convert_checkpoint.main([str(src), "--out", str(tmp_path / "o.safetensors"), "--patch-size", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "patch size 16" in err and str(src) in err
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("fmt", ["flsl-export", "dino"])
def test_truncated_file_is_refused_naming_it(fmt, tiny16, tmp_path, capsys):
    src = write_format(fmt, tiny16, tmp_path)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert convert_checkpoint.main([str(src), "--out", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(src) in err and "\n" == err[-1] and err.count("\n") == 1


def test_missing_block_is_listed(tiny16, tmp_path):
    src = write_format("dino", tiny16, tmp_path)
    state = torch.load(src, weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("blocks.2.")}  # depth 4 -> a hole
    torch.save(state, src)
    with pytest.raises(CheckpointError) as err:
        load_pretrained_encoder(src)
    assert "blocks.2.attn.qkv.weight" in str(err.value) and str(src) in str(err.value)


def test_untrusted_pickle_is_refused_unless_trusted(tiny16, images, tmp_path, capsys):
    src = write_format("dino", tiny16, tmp_path)
    state = torch.load(src, weights_only=True)
    torch.save({"model": state, "time": datetime.timedelta(1)}, src)  # a class outside the allow-list
    dst = tmp_path / "o.safetensors"
    assert convert_checkpoint.main([str(src), "--out", str(dst)]) == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and "--trust-pickle" in err and "\x1b" not in err
    assert convert_checkpoint.main([str(src), "--out", str(dst), "--trust-pickle"]) == 0
    model, _ = load_pretrained_encoder(dst)
    with torch.no_grad():
        torch.testing.assert_close(encode(model.eval(), images), encode(tiny16, images), rtol=0, atol=0)


def test_cli_error_has_no_traceback(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, str(repo_root / "tools" / "convert_checkpoint.py"),
                           str(tmp_path / "absent.pth"), "--out", str(tmp_path / "o.safetensors")],
                          capture_output=True, text=True, cwd=repo_root)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'absent.pth'}"
