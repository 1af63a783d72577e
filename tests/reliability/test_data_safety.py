"""Nothing written where it does not belong, no silently wrong number: generators write only into
folders they create, a work folder belongs to one run, a resume never finishes another run, DAVIS
results of a subset never replace a whole split's, and an interrupted save leaves no traceback."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from core.errors import ConfigError, FLSLError
from pretrain.checkpoint import CheckpointError
from synthetic.folder import GeneratedFolderError

from .cases import TINY_PRETRAIN, Ctx


def digest_tree(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ generators
def _generators():
    from synthetic.ade import write_ade
    from synthetic.coco import write_coco
    from synthetic.davis import write_davis
    from synthetic.images import write_image_folder
    from synthetic.uavdt import write_uavdt_tree
    return {
        "images": lambda root: write_image_folder(root, n_images=2, size=32),
        "coco": lambda root: write_coco(root, n_train=1, n_val=1, height=48, width=64),
        "ade": lambda root: write_ade(root, n_train=1, n_val=1, height=48, width=64),
        "davis": lambda root: write_davis(root, n_sequences=1, frames=(3, 3), size=(48, 64)),
        "uavdt": lambda root: write_uavdt_tree(root, train=("M0101",), test=(), n_frames=1, size=(64, 48)),
    }


@pytest.mark.parametrize("name", ["images", "coco", "ade", "davis", "uavdt"])
def test_generators_write_only_into_folders_they_create(tmp_path, name):
    write = _generators()[name]
    user = tmp_path / "user"
    user.mkdir()
    (user / "img_00000.jpg").write_bytes(b"the user's own photo")
    before = digest_tree(user)
    with pytest.raises(GeneratedFolderError, match=r"user: exists and holds files the generator did not write"):
        write(user)
    assert digest_tree(user) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GeneratedFolderError, match=r"empty: exists and is empty"):
        write(empty)
    assert not any(empty.iterdir())
    # its own folder: made, marked, and written again on a second call (same settings)
    fresh = tmp_path / "fresh"
    write(fresh)
    first = digest_tree(fresh)
    assert (fresh / ".flsl-generated").is_file() and (fresh / ".complete").is_file()
    write(fresh)
    assert digest_tree(fresh) == first


def test_generated_folder_of_other_settings_is_refused(tmp_path):
    from synthetic.images import write_image_folder
    root = write_image_folder(tmp_path / "imgs", n_images=2, size=32, seed=0)
    before = digest_tree(root)
    with pytest.raises(GeneratedFolderError, match=r"imgs: holds a generated set of other settings \(2 32 0 0, "
                                                   r"wanted 3 32 0 0\)"):
        write_image_folder(root, n_images=3, size=32, seed=0)
    assert digest_tree(root) == before


def test_pretraining_data_generate_none_trains_on_the_users_folder(tmp_path):
    """The remedy the error names works: ``--cfg-options data.generate=None``."""
    from core.errors import cli_main

    from .test_bad_inputs import load_tool
    ctx = Ctx(tmp_path)
    cfg = ctx.pretrain_config(**{"data.generate": dict(n_images=4, size=64, seed=0)})
    images = digest_tree(tmp_path / "images")
    argv = [str(cfg), "--work-dir", str(tmp_path / "wd"), "--cfg-options", "data.generate=None"]
    assert cli_main(load_tool("pretrain_flsl.py").main, argv) == 0
    assert digest_tree(tmp_path / "images") == images
    assert (tmp_path / "wd" / "backbone.safetensors").is_file()
    assert not (tmp_path / "wd" / "run.lock").exists()  # released at the end


# ------------------------------------------------------------------------------ the work folder
def tiny_cfg(root, **changes):
    cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
    cfg.data.root = str(root)
    cfg.merge_from_dict(changes)
    return cfg


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from synthetic.images import write_image_folder
    return write_image_folder(tmp_path_factory.mktemp("img") / "img", n_images=4, size=64, seed=1, n_classes=1)


def test_second_run_on_a_work_folder_is_refused_and_a_stale_lock_taken_over(images, tmp_path):
    from pretrain.lock import WorkDirLock, WorkDirLocked
    from pretrain.trainer import Trainer
    work = tmp_path / "wd"
    owner = subprocess.Popen(["sleep", "30"])
    try:
        work.mkdir()
        lock = {"pid": owner.pid, "host": socket.gethostname(), "command": "sleep 30"}
        from pretrain.lock import _start_time
        lock["started"] = _start_time(owner.pid)
        (work / "run.lock").write_text(json.dumps(lock))
        with pytest.raises(WorkDirLocked, match=rf"wd \(--work-dir\): in use by running process {owner.pid} "
                                                r"\(sleep 30\)"):
            Trainer(tiny_cfg(images), work, resume=None)
        assert not (work / "latest.pth").exists()
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone: the next run takes the lock over, trains, and releases it
    trainer = Trainer(tiny_cfg(images), work, resume=None)
    assert trainer.train() == work / "backbone.safetensors"
    assert not (work / "run.lock").exists()
    # a lock is exclusive while held, and re-entrant within its process
    with WorkDirLock(work) as held:
        assert json.loads((work / "run.lock").read_text())["pid"] == os.getpid()
        with WorkDirLock(work):
            pass
        assert (work / "run.lock").exists() and held.held


def test_resume_refuses_another_length_or_other_images(images, tmp_path):
    from pretrain.trainer import Trainer
    work = tmp_path / "wd"
    done = Trainer(tiny_cfg(images, **{"train.epochs": 2}), work, resume=None)
    done.train()
    assert done.iteration == 2
    with pytest.raises(CheckpointError, match=r"latest.pth: holds a run of 2 epochs \(2 of 2 iterations done\), "
                                              r"the config now asks for train.epochs=1"):
        Trainer(tiny_cfg(images, **{"train.epochs": 1}), work, resume="auto")
    with pytest.raises(CheckpointError, match=r"train.epochs=3"):
        Trainer(tiny_cfg(images, **{"train.epochs": 3}), work, resume="auto")
    other = tmp_path / "other"
    other.mkdir()
    for p in sorted(images.rglob("*.jpg"))[:3]:
        (other / p.name).write_bytes(p.read_bytes())
    Image.open(p).save(other / "extra.jpg")
    with pytest.raises(CheckpointError, match=r"was trained on .*img \(4 images\), data.root .*other holds other "
                                              r"images \(4, another file list\)"):
        Trainer(tiny_cfg(other, **{"train.epochs": 2}), work, resume="auto")
    # the same images in another place: resumed (and already complete)
    moved = tmp_path / "moved"
    (moved / "class_000").mkdir(parents=True)
    for p in sorted(images.rglob("*.jpg")):
        (moved / "class_000" / p.name).write_bytes(p.read_bytes())
    again = Trainer(tiny_cfg(moved, **{"train.epochs": 2}), work, resume="auto")
    assert again.iteration == again.total_iters == 2


def test_resume_with_another_head_names_every_mismatch(images, tmp_path):
    from pretrain.trainer import Trainer
    Trainer(tiny_cfg(images), tmp_path, resume=None).save()
    with pytest.raises(CheckpointError) as err:
        Trainer(tiny_cfg(images, **{"model.bottleneck_dim": 16}), tmp_path, resume="auto")
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'latest.pth'} (student): does not match the model of the config: "
                           "shape mismatches: ")
    assert "head.mlp.4.weight: checkpoint (32, 64) vs model (16, 64)" in text  # the cut-off error lacked these
    assert "\n" not in text


def test_interrupt_while_saving_leaves_the_checkpoint_and_no_formatter_traceback(images, tmp_path, monkeypatch):
    """Ctrl-C used to land in MMEngine's config formatter, which turns it into a SyntaxError
    quoting the whole config: saving now formats nothing (the text was made once, without yapf)."""
    import mmengine.config.config as mmcfg

    from pretrain.trainer import Trainer
    trainer = Trainer(tiny_cfg(images), tmp_path, resume=None)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(mmcfg, "FormatCode", interrupted)
    trainer.save()
    state = torch.load(tmp_path / "latest.pth", weights_only=True)
    assert state["meta"]["config"] == trainer.config_text
    assert Config.fromstring(trainer.config_text, ".py").model.arch_kwargs.depth == 2
    assert not list(tmp_path.glob("*.tmp"))


# ------------------------------------------------------------------------------ options and images
@pytest.mark.parametrize("key,value,message", [
    ("model.arch_kwargs.depth", 0, r"^model.arch_kwargs: depth must be an integer >= 1, got 0"),
    ("model.arch_kwargs.embed_dim", -8, r"^model.arch_kwargs: embed_dim must be an integer >= 1"),
    ("data.views.local_scale", [0.0, 0.4], r"^data.views: local_scale must be a list \[low, high\] with 0 < low"),
    ("data.views.global_scale", [0.9, 0.5], r"^data.views: global_scale must be a list"),
    ("data.views.local_size", 40, r"^data.views.local_size: must be a multiple of the patch size 16"),
    ("data.views.local_window", 4, r"^data.views.local_window: a 48-pixel view has 3x3 tokens"),
])
def test_view_and_model_options_out_of_range_are_refused(images, key, value, message):
    from pretrain.config_check import apply_pretrain_options, check_config
    cfg = tiny_cfg(images)
    apply_pretrain_options(cfg, {key: value})
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_no_local_views_need_no_local_fit(images):
    from pretrain.config_check import check_config
    check_config(tiny_cfg(images, **{"data.views.n_local": 0, "data.views.local_size": 40}))


def test_wide_images_are_scaled_not_clipped(tmp_path, caplog, monkeypatch):
    """A 16-bit PNG becomes value / 257 (Pillow's own conversion clips it at 255: nearly white);
    a float TIFF is stretched from its range. Each is warned about once."""
    import logging

    from pretrain import views
    monkeypatch.setattr(logging.getLogger("flsl"), "propagate", True)
    monkeypatch.setattr(views, "_WARNED", set())
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64)
    Image.fromarray(ramp).save(tmp_path / "a.png")
    img = Image.open(tmp_path / "a.png")
    assert img.mode == "I;16"
    with caplog.at_level(logging.WARNING, logger="flsl"):
        rgb, box, scale = views.decode_for_crop(img, (0, 0, 32, 32), 16)
    expected = np.round(ramp / 257.0).astype(np.uint8)
    got = np.asarray(rgb)
    assert rgb.mode == "RGB" and np.array_equal(got[..., 0], expected) and np.array_equal(got[..., 2], expected)
    assert "a.png: 16-bit image (mode I;16) scaled from 16 to 8 bits" in caplog.text
    values = np.linspace(0.0, 1.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "f.tif")
    got = np.asarray(views.decode_for_crop(Image.open(tmp_path / "f.tif"), (0, 0, 16, 16), 8)[0])[..., 1]
    assert got.min() == 0 and got.max() == 255
    assert np.array_equal(got, np.round(values.astype(np.float64) * 255).astype(np.uint8))
    assert caplog.text.count("warning:") == 2


# ------------------------------------------------------------------------------ DAVIS
@pytest.fixture
def davis_run(tmp_path):
    from benchmarks.davis.evaluate import Scorer
    from benchmarks.davis.features import load_extractor
    from benchmarks.davis.pipeline import propagate_split
    from benchmarks.davis.propagation import PropagationParams
    from synthetic.davis import write_davis
    d = write_davis(tmp_path / "DAVIS", n_sequences=2, frames=(4, 4), size=(64, 96), seed=7)
    ctx = Ctx(tmp_path)
    extractor = load_extractor(ctx.export(), "vit_tiny")

    def run(out, sequences=None, extractor=extractor):
        scorer = Scorer(d.root, "val")
        propagate_split(extractor, d.root, out, PropagationParams(), short_side=64, scorer=scorer,
                        sequences=sequences, log=None)
        return scorer.results.write(out, "val")
    return d, run, ctx


def test_subset_results_never_replace_the_whole_splits(davis_run, tmp_path):
    from benchmarks.davis.evaluate import evaluate_folder
    from benchmarks.davis.metrics import read_csv
    d, run, _ = davis_run
    out = tmp_path / "pred"
    full = run(out)
    assert [p.name for p in full] == ["global_results-val.csv", "per-sequence_results-val.csv", "davis_results.json"]
    whole = {p.name: p.read_bytes() for p in full}
    part = run(out, sequences=[d.sequences[1]])
    assert [p.name for p in part] == ["global_results-val-subset.csv", "per-sequence_results-val-subset.csv",
                                      "davis_results-subset.json"]
    assert {p.name: p.read_bytes() for p in full} == whole
    assert json.loads(part[2].read_text())["sequences"] == [d.sequences[1]]
    rows = read_csv(part[1])
    assert {r["Sequence"].rsplit("_", 1)[0] for r in rows} == {d.sequences[1]}
    # the folder still holds one run's predictions of the whole split: scoring it gives the full numbers
    again = evaluate_folder(d.root, out, "val", workers=1)
    assert f"{again.global_scores()['J&F-Mean']:.3f}" == read_csv(full[0])[0]["J&F-Mean"]


def test_predictions_of_another_checkpoint_are_not_mixed_in(davis_run, tmp_path):
    from benchmarks.davis.evaluate import evaluate_folder
    from benchmarks.davis.features import load_extractor
    from benchmarks.davis.io import DavisError
    d, run, ctx = davis_run
    out = tmp_path / "pred"
    run(out, sequences=[d.sequences[0]])
    before = digest_tree(out)
    other = load_extractor(ctx.export("other.safetensors", seed=3), "vit_tiny")
    with pytest.raises(DavisError, match=r"pred \(--out\): holds predictions made otherwise \(checkpoint: "):
        run(out, sequences=[d.sequences[1]], extractor=other)
    assert digest_tree(out) == before
    # the recorded run did not do the second sequence: its scores are refused, not mixed
    with pytest.raises(DavisError, match=rf"{d.sequences[1]}: not recorded as complete in .*predictions.json"):
        evaluate_folder(d.root, out, "val", workers=1)
    record = json.loads((out / "predictions.json").read_text())
    assert record["sequences"] == [d.sequences[0]] and record["split"] == "val"
    assert len(record["producer"]["checkpoint_sha256"]) == 64


@pytest.mark.parametrize("settings,message", [
    (dict(batch_size=0), r"^batch_size: must be an integer >= 1, got 0"),
    (dict(short_side=8), r"^short_side: must be a positive multiple of the patch size 16 .*got 8"),
    (dict(short_side=72), r"^short_side: must be a positive multiple of the patch size 16"),
    (dict(multiple=24), r"^multiple: must be a positive multiple of the patch size 16, got 24"),
])
def test_davis_settings_are_checked_before_any_frame(davis_run, tmp_path, settings, message):
    from benchmarks.davis.features import load_extractor
    from benchmarks.davis.io import DavisError
    from benchmarks.davis.pipeline import propagate_split
    from benchmarks.davis.propagation import PropagationParams
    d, _, ctx = davis_run
    kwargs = {**dict(short_side=64, batch_size=2, multiple=64), **settings}
    with pytest.raises(DavisError, match=message):
        propagate_split(load_extractor(ctx.export(), "vit_tiny"), d.root, tmp_path / "o", PropagationParams(),
                        log=None, **kwargs)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("split", ["../val", "/etc/passwd", ".hidden", ""])
def test_split_names_cannot_leave_the_split_folder(davis_run, split):
    from benchmarks.davis.io import DavisError, read_split
    d, _, _ = davis_run
    with pytest.raises(DavisError, match=r"\(--split\): not a split name"):
        read_split(d.root, split)


def test_output_checks_before_any_work(tmp_path):
    from core.files import check_output_path
    with pytest.raises(FLSLError, match=r"needs about .* MiB, only .* MiB free on that disk"):
        check_output_path(tmp_path / "o", need_bytes=1 << 62)
    (tmp_path / "f").write_text("x")
    with pytest.raises(FLSLError, match=r"f \(--out\): is a file; a folder is needed here"):
        check_output_path(tmp_path / "f", folder=True)
    assert check_output_path(tmp_path / "f") == tmp_path / "f"   # a file output may replace a file
    with pytest.raises(FLSLError, match=r"a name of 256 bytes"):
        check_output_path(tmp_path / ("é" * 128))


# ------------------------------------------------------------------------------ provenance of data
def _steps(tmp_path, name):
    from benchmarks.reproduce.plan import Options, checkpoint_overrides, data_roots, plan
    from benchmarks.reproduce.registry import table
    ckpt = Ctx(tmp_path).export("backbone.safetensors")
    opts = Options(work_root=tmp_path / "work", gpus=1, data_roots=data_roots(tmp_path / "data"),
                   checkpoints=checkpoint_overrides(str(ckpt)), rows=("flsl_vits16",))
    return {s.kind: s for s in plan(table(name), opts)}, opts


def _finish(step):
    out = step.output if step.output.is_absolute() else step.root / step.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("{}")
    step.record()
    assert step.done


def test_a_new_uavdt_conversion_marks_the_training_stale(tmp_path):
    """Provenance holds digests of the data read: a UAVDT conversion redone with another --every
    (a new uavdt_train.json) makes the finished training stale, and changed ground truth the
    conversion; untouched data keeps the others done."""
    pytest.importorskip("mmdet")  # the plan reads the detection configs
    steps, opts = _steps(tmp_path, "uavdt")
    root = Path(opts.data_roots["uavdt"])
    (root / "UAV-benchmark-MOTD_v1.0" / "GT").mkdir(parents=True)
    (root / "UAV-benchmark-MOTD_v1.0" / "GT" / "M0101_gt_whole.txt").write_text("1,1,1,1,5,5,1,0,1\n")
    (root / "annotations").mkdir()
    for split in ("train", "test"):
        (root / "annotations" / f"uavdt_{split}.json").write_text(json.dumps({"info": {"every": 1}}))
    for kind in ("convert", "train", "test"):
        _finish(steps[kind])
    assert str(root / "annotations/uavdt_train.json") in steps["train"].inputs
    (root / "annotations" / "uavdt_train.json").write_text(json.dumps({"info": {"every": 10}}))
    assert steps["train"].stale_reasons[0].startswith(f"input {root / 'annotations/uavdt_train.json'} changed")
    assert steps["test"].done and steps["convert"].done
    (root / "UAV-benchmark-MOTD_v1.0" / "GT" / "M0101_gt_whole.txt").write_text("1,1,2,2,5,5,1,0,1\n")
    assert steps["convert"].stale_reasons[0].startswith("input ") and "GT changed" in steps["convert"].stale_reasons[0]


def test_an_edited_davis_split_list_or_annotation_marks_the_result_stale(tmp_path):
    steps, opts = _steps(tmp_path, "davis")
    davis = Path(opts.data_roots["davis"])
    (davis / "ImageSets/2017").mkdir(parents=True)
    (davis / "ImageSets/2017/val.txt").write_text("bear\n")
    (davis / "Annotations/480p/bear").mkdir(parents=True)
    (davis / "Annotations/480p/bear/00000.png").write_bytes(b"first annotation")
    step = steps["davis"]
    _finish(step)
    (davis / "Annotations/480p/bear/00000.png").write_bytes(b"edited annotation")
    assert step.stale_reasons == [f"input {davis / 'Annotations/480p'} changed (sha256 "
                                  f"{step.stale_reasons[0].split('sha256 ')[1]}"]
    _finish(step)
    (davis / "ImageSets/2017/val.txt").write_text("bear\ncows\n")
    assert step.stale_reasons[0].startswith(f"input {davis / 'ImageSets/2017/val.txt'} changed")


def test_a_training_file_without_annotations_is_refused(tmp_path):
    from benchmarks.dense.data_check import AnnotationError, check_coco
    from synthetic.coco import write_coco
    root = write_coco(tmp_path / "coco", n_train=2, n_val=1, height=48, width=64)
    path = root / "annotations" / "instances_train.json"
    coco = json.loads(path.read_text())
    coco["annotations"] = []
    path.write_text(json.dumps(coco))
    assert check_coco(path, root / "train")["annotations"] == 0     # legal to evaluate on (a warning)
    with pytest.raises(AnnotationError, match=r"instances_train.json: holds no annotation .*training would see "):
        check_coco(path, root / "train", training=True)
