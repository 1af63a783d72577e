"""Bad input gives one clear error naming the file, folder or key."""
import subprocess
import sys

import pytest
import torch

from pretrain.checkpoint import CheckpointError, export_encoder, load_pretrained_encoder
from pretrain.data import DataError, PretrainImages, scan_images
from pretrain.encoder import build_encoder
from synthetic.images import write_image_folder
from pretrain.trainer import Trainer
from pretrain.views import MultiCropViews, ViewConfig

from .conftest import write_config


def test_missing_and_empty_roots(tmp_path):
    with pytest.raises(DataError, match=r"nowhere \(data.root\): folder not found"):
        scan_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"empty \(data.root\): no images found"):
        scan_images(tmp_path / "empty")


def test_non_image_files_are_ignored_and_corrupt_images_named(tmp_path):
    root = write_image_folder(tmp_path / "imgs", n_images=4, size=64)
    (root / "README.txt").write_text("ignored")
    bad = root / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    views = MultiCropViews(ViewConfig(global_size=64, local_size=32))
    ds = PretrainImages(root, views, on_corrupt="error")
    assert len(ds) == 5 and all(p.suffix == ".jpg" for p in ds.files)
    i = ds.files.index(bad)
    with pytest.raises(DataError, match="cannot read image .*broken.jpg"):
        ds[(0, i)]
    skipping = PretrainImages(root, views, on_corrupt="skip")
    item = skipping[(0, i)]             # replaced by the next readable image
    assert item["teacher"].shape == (3, 64, 64)


def test_cli_reports_corrupt_image_without_traceback(tiny_cfg, tmp_path, repo_root):
    root = write_image_folder(tmp_path / "imgs", n_images=8, size=64)
    (root / "img_00003.jpg").write_bytes(b"garbage")
    tiny_cfg.data.root = str(root)
    tiny_cfg.data.num_workers = 1
    cfg = write_config(tiny_cfg, tmp_path / "c.py")
    proc = subprocess.run([sys.executable, str(repo_root / "tools/pretrain_flsl.py"), str(cfg), "--work-dir",
                           str(tmp_path / "wd")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "error: cannot read image" in proc.stderr and "img_00003.jpg" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_data_root(tiny_cfg, tmp_path, repo_root):
    tiny_cfg.data.root = str(tmp_path / "missing")
    cfg = write_config(tiny_cfg, tmp_path / "c.py")
    proc = subprocess.run([sys.executable, str(repo_root / "tools/pretrain_flsl.py"), str(cfg), "--work-dir",
                           str(tmp_path / "wd")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "missing (data.root): folder not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resume_from_checkpoint_of_other_architecture(tiny_cfg, tmp_path):
    wd = tmp_path / "wd"
    Trainer(tiny_cfg, wd, resume=None).save()
    tiny_cfg.model.arch_kwargs.patch_size = 8
    with pytest.raises(CheckpointError, match=r"latest.pth: was trained with encoder .*patch16.*patch_size.: 8"):
        Trainer(tiny_cfg, wd, resume="auto")


def test_export_of_other_patch_size_or_arch_is_refused(tmp_path):
    path = tmp_path / "p8.safetensors"
    export_encoder(build_encoder("vit_small_patch8_224", depth=1, img_size=32), path)
    with pytest.raises(CheckpointError, match=r"p8.safetensors: patch size 8 in the checkpoint, 16 expected"):
        load_pretrained_encoder(path, expect_patch_size=16)
    with pytest.raises(CheckpointError, match="architecture vit_small_patch8_224 in the checkpoint"):
        load_pretrained_encoder(path, expect_arch="vit_small_patch16_224")


def test_truncated_and_pickled_checkpoints(tmp_path):
    good = tmp_path / "enc.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1, img_size=32), good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_pretrained_encoder(cut)

    class Evil:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    evil = tmp_path / "evil.pth"
    torch.save({"model": Evil()}, evil)
    with pytest.raises(CheckpointError, match=r"evil.pth: cannot be loaded safely"):
        load_pretrained_encoder(evil)
    # a state dict missing a block's tensors names the missing keys
    sd = build_encoder("vit_tiny_patch16_224", depth=2, img_size=32).state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith("blocks.1.attn")}
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial.pth.*missing keys.*blocks\.1\.attn"):
        load_pretrained_encoder(tmp_path / "partial.pth")
