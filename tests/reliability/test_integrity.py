"""Checkpoint integrity: the SHA-256 beside every checkpoint and export, verified on resume,
export and evaluation; crash-safe replacement; the dense path (MMEngine checkpoints) and strict
loading in tools/test.py."""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys

import pytest
import torch

from pretrain import checkpoint as ck
from pretrain.checkpoint import (CheckpointError, IntegrityError, digest_path, load_pretrained_encoder,
                                 load_safely, recorded_digests, save_atomic, verify_digest)

from .cases import DENSE_CONFIG, REPO, flip_bytes


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_digest_file_is_sha256sum_compatible(tmp_path):
    path = tmp_path / "latest.pth"
    save_atomic({"w": torch.arange(10.0)}, path)
    assert digest_path(path).read_text() == f"{sha(path)}  latest.pth\n"
    if shutil.which("sha256sum"):
        proc = subprocess.run(["sha256sum", "-c", "latest.pth.sha256"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0 and "latest.pth: OK" in proc.stdout
    assert verify_digest(path) is True
    assert torch.equal(load_safely(path)["w"], torch.arange(10.0))


def test_a_file_without_digest_loads_and_a_changed_one_is_refused(tmp_path):
    path = tmp_path / "latest.pth"
    torch.save({"w": torch.zeros(3)}, path)       # from elsewhere: nothing to verify
    assert verify_digest(path) is False and torch.equal(load_safely(path)["w"], torch.zeros(3))
    save_atomic({"w": torch.ones(4096)}, path)
    flip_bytes(path, 0.5, 16)
    with pytest.raises(IntegrityError, match=r"latest.pth: SHA-256 .* does not match latest.pth.sha256"):
        load_safely(path)


def test_mismatch_names_the_newest_intact_checkpoint_of_the_same_kind(tmp_path):
    old, new = tmp_path / "epoch_1.pth", tmp_path / "epoch_2.pth"
    save_atomic({"w": torch.zeros(8)}, old)
    save_atomic({"w": torch.ones(8)}, tmp_path / "epoch_0.pth")
    os.utime(tmp_path / "epoch_0.pth", (1, 1))    # older than epoch_1
    save_atomic({"w": torch.full((8,), 2.0)}, new)
    ck.export_encoder(__import__("pretrain.encoder", fromlist=["x"]).build_encoder(
        "vit_tiny_patch16_224", depth=1, img_size=32), tmp_path / "backbone.safetensors")
    flip_bytes(new, 0.5, 8)
    with pytest.raises(IntegrityError, match=rf"the newest intact checkpoint in that folder is {old}$"):
        load_safely(new)
    flip_bytes(old, 0.5, 8)
    with pytest.raises(IntegrityError, match=r"intact checkpoint in that folder is .*epoch_0.pth$"):
        load_safely(new)


def test_replacing_a_checkpoint_verifies_at_every_crash_point(tmp_path, monkeypatch):
    """The digest file lists old and new while the new file is renamed in: a crash before or after
    that rename leaves a pair that verifies."""
    path = tmp_path / "latest.pth"
    save_atomic({"v": torch.tensor(1)}, path)
    v1 = sha(path)
    real_replace = os.replace

    def crash_on_checkpoint(src, dst):
        if str(dst) == str(path):
            raise KeyboardInterrupt  # killed between writing the digest and renaming the file
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", crash_on_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"v": torch.tensor(2)}, path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sha(path) == v1 and len(recorded_digests(path)) == 2 and verify_digest(path)
    assert int(load_safely(path)["v"]) == 1

    calls = []
    real_write = ck.write_digest

    def crash_on_final_digest(p, digests):
        calls.append(digests)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the rename, before the digest file was trimmed
        return real_write(p, digests)
    monkeypatch.setattr(ck, "write_digest", crash_on_final_digest)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"v": torch.tensor(3)}, path)
    assert verify_digest(path) and int(load_safely(path)["v"]) == 3
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_and_digest_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_atomic({"w": torch.zeros(1)}, tmp_path / "c.pth")
    finally:
        os.umask(old)
    for p in (tmp_path / "c.pth", tmp_path / "c.pth.sha256"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_export_reads_verify_and_single_encoder_has_no_student(tmp_path):
    from pretrain.encoder import build_encoder
    path = tmp_path / "e.safetensors"
    ck.export_encoder(build_encoder("vit_tiny_patch16_224", depth=1, img_size=32), path)
    assert verify_digest(path)
    load_pretrained_encoder(path)
    with pytest.raises(CheckpointError, match="holds a single encoder"):
        load_pretrained_encoder(path, which="student")


def test_training_checkpoint_student_differs_from_teacher(tmp_path):
    """``--which student`` on a training state reads the student (the two encoders differ after
    training steps), so refusing it on single-encoder files is the only change."""
    from pretrain.encoder import build_encoder
    t = build_encoder("vit_tiny_patch16_224", depth=1, img_size=32)
    s = build_encoder("vit_tiny_patch16_224", depth=1, img_size=32)
    with torch.no_grad():
        s.blocks[0].mlp.fc1.weight.add_(1.0)
    path = tmp_path / "latest.pth"
    save_atomic({"teacher": {f"backbone.{k}": v for k, v in t.state_dict().items()},
                 "student": {f"backbone.{k}": v for k, v in s.state_dict().items()},
                 "meta": {"flsl_spec": t.flsl_spec.to_json()}}, path)
    ms, _ = load_pretrained_encoder(path, which="student")
    mt, _ = load_pretrained_encoder(path, which="teacher")
    assert torch.equal(ms.blocks[0].mlp.fc1.weight, s.blocks[0].mlp.fc1.weight)
    assert torch.equal(mt.blocks[0].mlp.fc1.weight, t.blocks[0].mlp.fc1.weight)


# ------------------------------------------------------------------------------ dense (MMEngine)
def run_tool(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(REPO / "tools" / args[0]), *map(str, args[1:])], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    pytest.importorskip("mmdet")
    from synthetic.coco import write_coco
    from tests.benchmarks.conftest import tiny_encoder, write_format
    tmp = tmp_path_factory.mktemp("dense_integrity")
    coco = write_coco(tmp / "coco", n_train=2, n_val=1, height=64, width=80, seed=0)
    enc = write_format("flsl-export", tiny_encoder(16), tmp / "enc")
    work = tmp / "work"
    opts = ["--cfg-options", f"data_root={coco}/", f"model.backbone.init_cfg.checkpoint={enc}"]
    proc = run_tool("train.py", DENSE_CONFIG, "--work-dir", work, *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, coco, work, opts


def last_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@pytest.mark.slow
def test_training_writes_a_digest_that_testing_and_resuming_verify(dense_run):
    tmp, coco, work, opts = dense_run
    epoch = work / "epoch_1.pth"
    assert recorded_digests(epoch) == [sha(epoch)]
    damaged = tmp / "damaged"
    shutil.copytree(work, damaged, ignore=shutil.ignore_patterns("2*"))
    flip_bytes(damaged / "epoch_1.pth", 0.7, 4096)
    before = sha(damaged / "epoch_1.pth")
    proc = run_tool("test.py", DENSE_CONFIG, damaged / "epoch_1.pth", "--work-dir", tmp / "t", *opts[:2])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_line(proc).startswith(f"error: {damaged / 'epoch_1.pth'}: SHA-256 ")
    proc = run_tool("train.py", DENSE_CONFIG, "--work-dir", tmp / "w2", "--resume", damaged / "epoch_1.pth", *opts)
    assert proc.returncode == 2 and last_line(proc).startswith(f"error: {damaged / 'epoch_1.pth'}: SHA-256 ")
    assert sha(damaged / "epoch_1.pth") == before


@pytest.mark.slow
def test_test_tool_loads_strictly(dense_run):
    """An MMEngine checkpoint with one tensor more, or one less, than the model is refused,
    naming it; the intact one is evaluated."""
    tmp, coco, work, opts = dense_run
    from benchmarks.dense.mm_checkpoint import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()
    state = torch.load(work / "epoch_1.pth", map_location="cpu", weights_only=True)
    extra = dict(state, state_dict={**state["state_dict"], "roi_head.extra.weight": torch.zeros(2)})
    torch.save(extra, tmp / "extra.pth")
    proc = run_tool("test.py", DENSE_CONFIG, tmp / "extra.pth", "--work-dir", tmp / "t1", *opts[:2])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_line(proc) == (f"error: {tmp / 'extra.pth'}: does not match the model of the config: "
                               "unexpected keys (1): roi_head.extra.weight")
    first = sorted(state["state_dict"])[0]
    fewer = dict(state, state_dict={k: v for k, v in state["state_dict"].items() if k != first})
    torch.save(fewer, tmp / "fewer.pth")
    proc = run_tool("test.py", DENSE_CONFIG, tmp / "fewer.pth", "--work-dir", tmp / "t2", *opts[:2])
    assert proc.returncode == 2
    assert last_line(proc) == (f"error: {tmp / 'fewer.pth'}: does not match the model of the config: "
                               f"missing keys (1): {first}")
    proc = run_tool("test.py", DENSE_CONFIG, work / "epoch_1.pth", "--work-dir", tmp / "t3", *opts[:2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"loaded {work / 'epoch_1.pth'} strictly" in proc.stdout + proc.stderr
