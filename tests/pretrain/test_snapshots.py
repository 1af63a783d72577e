"""Periodic snapshots (``train.saveckp_freq``): ``checkpoint{epoch:04}.pth`` after epochs 0, f, 2f,
... with verifying digests; a corrupted ``latest.pth`` names the newest one, and resuming from it
with ``--resume`` ends bitwise where the uninterrupted run ended."""
import hashlib

import pytest
import torch

from synthetic.images import write_image_folder
from core.errors import ConfigError, cli_main
from pretrain.checkpoint import digest_path, load_safely, verify_digest
from pretrain.config_check import check_config
from pretrain.trainer import Trainer
from tests.reliability.cases import flip_bytes
from pretrain import run as pretrain_flsl

from .conftest import write_config


def _tensors_equal(a, b, where: str) -> None:
    """Every tensor of two nested state dicts is bitwise equal (and the structure matches)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _tensors_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _tensors_equal(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_snapshots_are_kept_named_on_corruption_and_resume_exactly(tiny_cfg, tmp_path, capsys):
    # 8 images / batch 4 = 2 iterations per epoch; 4 epochs, a snapshot every 2 epochs (DINO's
    # rule: after epochs 0 and 2), latest.pth only at those epochs and at the end
    tiny_cfg.data.root = str(write_image_folder(tmp_path / "images", n_images=8, size=80, seed=1, n_classes=2))
    tiny_cfg.train.epochs = 4
    tiny_cfg.train.saveckp_freq = 2
    tiny_cfg.train.checkpoint_interval = 100
    tiny_cfg.train.log_interval = 100
    config = write_config(tiny_cfg, tmp_path / "cfg.py")
    work = tmp_path / "run"
    Trainer(tiny_cfg, work, resume=None).train()

    assert sorted(p.name for p in work.glob("checkpoint*")) == [
        "checkpoint0000.pth", "checkpoint0000.pth.sha256", "checkpoint0002.pth", "checkpoint0002.pth.sha256"]
    for name, iteration in (("checkpoint0000.pth", 2), ("checkpoint0002.pth", 6)):
        snap = work / name
        assert digest_path(snap).read_text() == f"{hashlib.sha256(snap.read_bytes()).hexdigest()}  {name}\n"
        assert verify_digest(snap) is True
        assert load_safely(snap)["iteration"] == iteration
    # read whole: load_safely maps the file, and flip_bytes below rewrites that very file in place
    final = torch.load(work / "latest.pth", map_location="cpu", weights_only=True)
    assert final["iteration"] == 8

    latest = work / "latest.pth"
    flip_bytes(latest)
    corrupted = latest.read_bytes()
    capsys.readouterr()
    assert cli_main(pretrain_flsl.main, [str(config), "--work-dir", str(work)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {latest}: SHA-256 ")
    assert errors[0].endswith(f"the newest intact checkpoint in that folder is {work / 'checkpoint0002.pth'}")
    assert latest.read_bytes() == corrupted     # the refused file is left as it was

    snapshot = work / "checkpoint0002.pth"
    assert cli_main(pretrain_flsl.main, [str(config), "--work-dir", str(work), "--resume", str(snapshot)]) == 0
    assert f"resumed from {snapshot} at iteration 6 / 8" in (work / "train.log").read_text()
    resumed = load_safely(latest)                # rewritten by the resumed run: verifies again
    assert resumed["iteration"] == 8
    for part in ("student", "teacher", "optimizer", "criterion"):
        _tensors_equal(final[part], resumed[part], part)
    # the run trained between the snapshot and the end, so the comparison has something to compare
    assert not torch.equal(load_safely(snapshot)["student"]["head.mlp.0.weight"],
                           final["student"]["head.mlp.0.weight"])
    assert sorted(p.name for p in work.glob("checkpoint*.pth")) == ["checkpoint0000.pth", "checkpoint0002.pth"]


@pytest.mark.parametrize("freq,expected", [(None, ["checkpoint0000.pth"]), (0, [])])
def test_default_keeps_the_first_epoch_and_zero_keeps_none(tiny_cfg, tmp_path, freq, expected):
    tiny_cfg.train.epochs = 1
    if freq is not None:
        tiny_cfg.train.saveckp_freq = freq
    Trainer(tiny_cfg, tmp_path, resume=None).train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint*.pth")) == expected
    assert all(verify_digest(tmp_path / name) for name in expected)


def test_negative_frequency_is_refused(tiny_cfg):
    tiny_cfg.train.saveckp_freq = -1
    with pytest.raises(ConfigError, match=r"^train.saveckp_freq: must be an integer >= 0, got -1"):
        check_config(tiny_cfg)
