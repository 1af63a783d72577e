"""Property tests with a fixed seed and a bounded count: valid inputs mutated (truncation, byte
flips, fields of another type, odd sizes) must give a clear error (the reader's FLSLError) or a
correct result, never another exception.

"Correct result" is checked where it can be: a checkpoint with its digest beside it is never
accepted once changed; a COCO file the check accepts is read by pycocotools (masks included) and
by MMDetection's CocoDataset; a UAVDT conversion holds finite boxes inside their images; a
pretraining config the checks accept builds the trainer and runs a step.
"""
from __future__ import annotations

import copy
import json
import math
import random
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import ConfigError, FLSLError

from .cases import TINY_PRETRAIN, Ctx


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "flip_header", "zero_run", "append"])
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[:rng.randrange(len(b))])
    if kind == "flip":
        for _ in range(rng.randint(1, 64)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "flip_header":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(len(b), 512))] ^= 1 << rng.randrange(8)
    elif kind == "zero_run":
        start = rng.randrange(len(b))
        end = min(len(b), start + rng.randint(1, 4096))
        b[start:end] = bytes(end - start)
    else:
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(b)


# ------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny export (.safetensors) and a tiny training state (.pth), each with its digest."""
    from pretrain.checkpoint import export_encoder, save_atomic
    from pretrain.encoder import build_encoder
    tmp = tmp_path_factory.mktemp("fuzz_ckpt")
    torch.manual_seed(0)
    enc = build_encoder("vit_tiny_patch16_224", depth=1, img_size=32)
    export_encoder(enc, tmp / "enc.safetensors")
    state = {f"backbone.{k}": v for k, v in enc.state_dict().items()}
    save_atomic({"teacher": state, "student": state, "iteration": 3,
                 "meta": {"flsl_spec": enc.flsl_spec.to_json()}}, tmp / "latest.pth")
    return [tmp / "enc.safetensors", tmp / "latest.pth"]


@pytest.mark.parametrize("with_digest", [True, False], ids=["digest", "no-digest"])
def test_mutated_checkpoints_error_cleanly(checkpoints, tmp_path, with_digest):
    from pretrain.checkpoint import CheckpointError, load_pretrained_encoder
    rng = random.Random(1234 + with_digest)
    accepted = 0
    for i in range(60):
        src = checkpoints[i % 2]
        original = src.read_bytes()
        mutated = mutate_bytes(original, rng)
        path = tmp_path / f"m{i}{src.suffix}"
        path.write_bytes(mutated)
        if with_digest:
            shutil.copy(str(src) + ".sha256", str(path) + ".sha256")
        try:
            model, loaded = load_pretrained_encoder(path)
        except CheckpointError:
            continue
        # accepted: never a changed file that carries a digest, and the weights are usable
        assert not (with_digest and mutated != original), f"mutation {i} accepted despite its digest"
        accepted += 1
        with torch.no_grad():
            out = model.forward_features(torch.zeros(1, 3, 32, 32))
        assert out.shape == (1, 4, 192)
    assert accepted < 60  # the mutations did reach the readers' error paths


# ------------------------------------------------------------------------------ COCO
def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:3]):
            yield from _paths(v, prefix + (i,))


ODD_VALUES = ["", "abc", "10 20 30 40", -1, 0, 1e12, -3.5, None, True, [], [1], [1, 2, 3, 4, 5], {},
              {"counts": "x", "size": [1, 1]}, {"counts": [1, 2], "size": [64, 80]}, [[1, 2, 3]],
              float("nan"), 2 ** 40, [0, 0, 0, 0], [-5, -5, 10, 10], [70, 50, 20, 20]]


def mutate_coco(coco: dict, rng: random.Random) -> dict:
    coco = copy.deepcopy(coco)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(coco) if p]
        path = rng.choice(paths)
        parent = coco
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.25:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return coco


def framework_reads(ann_file, img_dir):
    """pycocotools indexes the file and rasterises every mask; MMDetection's CocoDataset parses it."""
    from pycocotools.coco import COCO
    api = COCO(str(ann_file))
    for ann in api.loadAnns(api.getAnnIds()):
        if "segmentation" in ann:
            mask = api.annToMask(ann)
            img = api.loadImgs(ann["image_id"])[0]
            assert mask.shape == (img["height"], img["width"])
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(ann_file=str(ann_file), data_prefix=dict(img=str(img_dir)), pipeline=[],
                     metainfo=dict(classes=("square", "disk", "triangle")), filter_cfg=None, lazy_init=True)
    ds.full_init()


def test_mutated_coco_files_are_refused_or_readable(tmp_path):
    pytest.importorskip("mmdet")
    from benchmarks.dense.data_check import AnnotationError, check_coco
    from synthetic.coco import write_coco
    root = write_coco(tmp_path / "coco", n_train=2, n_val=1, height=64, width=80, seed=0)
    good = json.loads((root / "annotations" / "instances_train.json").read_text())
    rng = random.Random(7)
    refused = 0
    for i in range(150):
        path = tmp_path / f"m{i}.json"
        text = json.dumps(mutate_coco(good, rng))
        if i % 10 == 9:
            text = text[: rng.randrange(len(text))]
        path.write_text(text)
        try:
            check_coco(path, root / "train")
        except AnnotationError:
            refused += 1
            continue
        framework_reads(path, root / "train")  # accepted: the framework can use it
    assert 0 < refused < 150


# ------------------------------------------------------------------------------ UAVDT
UAVDT_TOKENS = ["", "abc", "-5", "0", "1e9", "nan", "inf", "3.5", "4", "1,2", " "]


def test_mutated_uavdt_ground_truth_is_refused_or_consistent(tmp_path):
    from benchmarks.uavdt.convert import UAVDTError, convert
    tree = Ctx(tmp_path).uavdt()
    gt = tree.root / "UAV-benchmark-MOTD_v1.0/GT/M0101_gt_whole.txt"
    ignore = tree.root / "UAV-benchmark-MOTD_v1.0/GT/M0101_gt_ignore.txt"
    originals = {p: p.read_text() for p in (gt, ignore)}
    rng = random.Random(11)
    refused = 0
    for i in range(80):
        for p, text in originals.items():
            p.write_text(text)
        target = rng.choice([gt, ignore])
        lines = originals[target].splitlines()
        n = rng.randrange(len(lines)) if lines else 0
        kind = rng.choice(["field", "truncate", "drop", "extra", "file"])
        if lines and kind == "field":
            fields = lines[n].split(",")
            fields[rng.randrange(len(fields))] = rng.choice(UAVDT_TOKENS)
            lines[n] = ",".join(fields)
        elif lines and kind == "truncate":
            lines[n] = lines[n][: rng.randrange(len(lines[n]) + 1)]
        elif lines and kind == "drop":
            del lines[n]
        elif kind == "extra":
            lines.insert(n, ",".join(rng.choice(UAVDT_TOKENS + ["1", "2", "10"]) for _ in range(rng.randint(1, 11))))
        text = "\n".join(lines) + "\n"
        if kind == "file":
            text = text[: rng.randrange(len(text) + 1)]
        target.write_text(text)
        try:
            coco, _ = convert(tree.root, ["M0101"])
        except UAVDTError:
            refused += 1
            continue
        sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            W, H = sizes[ann["image_id"]]
            assert all(math.isfinite(v) for v in (x, y, w, h)) and w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= W + 1e-6 and y + h <= H + 1e-6
            assert ann["category_id"] in (1, 2, 3)
    assert 0 < refused < 80


# ------------------------------------------------------------------------------ DAVIS
def test_mutated_davis_files_are_refused_or_read(tmp_path):
    from benchmarks.davis.io import (DavisError, check_first_annotation, read_annotations, read_split,
                                     sequence_files)
    d = Ctx(tmp_path).davis()
    seq = d.sequences[0]
    files = sorted((d.root / "Annotations/480p" / seq).glob("*.png")) + \
        sorted((d.root / "JPEGImages/480p" / seq).glob("*.jpg")) + [d.root / "ImageSets/2017/val.txt"]
    originals = {p: p.read_bytes() for p in files}
    rng = random.Random(5)
    refused = 0
    for i in range(60):
        for p, data in originals.items():
            p.write_bytes(data)
        victim = rng.choice(files)
        victim.write_bytes(mutate_bytes(originals[victim], rng))
        try:
            names = read_split(d.root)
            for name in names:
                s = sequence_files(d.root, name)
                gt = read_annotations(s)
                k = check_first_annotation(gt[0], s.annotations[0])
                assert gt.shape[1:] == s.size and 1 <= k <= 255
        except DavisError:
            refused += 1
    assert 0 < refused < 60


# ------------------------------------------------------------------------------ config path
def random_value(rng: random.Random):
    return copy.deepcopy(rng.choice([0, 1, 2, -1, 7, 0.5, 1e-3, 3.0, -0.1, "abc", "", None, True, False,
                                     [0.1, 0.5], [1, 2, 3], (0.9, 0.999), {}, {"depth": 2},
                                     "vit_tiny_patch16_224", "skip", "bf16", "cpu", 96, 48]))


def test_random_cfg_options_are_refused_or_train(tmp_path):
    from mmengine.config import Config

    from synthetic.images import write_image_folder
    from pretrain.config_check import SCHEMA, apply_pretrain_options, check_config
    from pretrain.trainer import Trainer
    images = write_image_folder(tmp_path / "img", n_images=4, size=64, seed=1, n_classes=1)
    keys = [k for k in SCHEMA if k not in ("data.root", "data.generate")]
    keys += ["train.epochz", "optim.learning_rate", "data.views.global_sise", "model.arch_kwargs.depth",
             "data.views.n_local", "data.views.local_size"]
    rng = random.Random(3)
    built = 0
    for i in range(200):
        cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
        cfg.data.root = str(images)
        options = {rng.choice(keys): random_value(rng) for _ in range(rng.randint(1, 2))}
        try:
            apply_pretrain_options(cfg, options)
            check_config(cfg)
        except ConfigError:
            continue
        if built >= 6:
            continue
        built += 1  # accepted: the trainer builds and takes a step (a handful, for time)
        cfg.data.batch_size_per_gpu = min(cfg.data.batch_size_per_gpu, 4)
        try:
            trainer = Trainer(cfg, tmp_path / f"wd{i}", resume=None)
        except FLSLError:
            continue  # e.g. fewer images than a batch: a clear error is fine
        trainer.sampler.set_epoch(0)
        batch = next(iter(trainer.loader))
        total, _ = trainer.train_step(batch, 0)
        assert torch.isfinite(total) or not math.isfinite(float(cfg.optim.lr)), options
    assert built > 0


# ------------------------------------------------------------------------------ option ranges
VIEW_SIZES = [-1, 0, 1, 7, 8, 16, 17, 32, 48, 64, 65, 96, 100]
SCALES = [[0.0, 0.4], [0.05, 0.4], [1.0, 0.5], [0.5, 1.0], [0.4, 0.4], [-0.1, 0.5], [0.2, 1.5], [0.3], [1.0, 1.0]]


def test_random_view_and_model_ranges_are_refused_or_train(tmp_path):
    """Sizes, windows, scales, patch size and depth drawn at random: the config check refuses the
    value with a ConfigError naming the key, or the trainer builds and takes a finite step (a few)."""
    from mmengine.config import Config

    from pretrain.config_check import apply_pretrain_options, check_config
    from pretrain.trainer import Trainer
    from synthetic.images import write_image_folder
    images = write_image_folder(tmp_path / "img", n_images=4, size=64, seed=1, n_classes=1)
    draws = {
        "data.views.global_size": VIEW_SIZES, "data.views.local_size": VIEW_SIZES,
        "data.views.global_window": [0, 1, 2, 3, 6, 7, 100], "data.views.local_window": [0, 1, 2, 3, 4],
        "data.views.n_local": [-1, 0, 1, 2], "data.views.teacher_scale": SCALES,
        "data.views.global_scale": SCALES, "data.views.local_scale": SCALES,
        "model.arch_kwargs.patch_size": [0, 7, 8, 16], "model.arch_kwargs.depth": [-1, 0, 1],
    }
    rng = random.Random(17)
    built = refused = 0
    for i in range(150):
        cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
        cfg.data.root = str(images)
        cfg.model.arch_kwargs.depth = 1
        options = {k: rng.choice(draws[k]) for k in rng.sample(sorted(draws), rng.randint(1, 3))}
        try:
            apply_pretrain_options(cfg, options)
            check_config(cfg)
        except ConfigError as err:
            refused += 1
            assert any(k in str(err) or str(err).startswith(k.rsplit(".", 1)[0]) for k in options), (options, err)
            continue
        if built >= 4:
            continue
        built += 1
        trainer = Trainer(cfg, tmp_path / f"wd{i}", resume=None)
        trainer.sampler.set_epoch(0)
        total, _ = trainer.train_step(next(iter(trainer.loader)), 0)
        assert torch.isfinite(total), options
    assert built > 0 and refused > 50


# ------------------------------------------------------------------------------ data roots
def make_root(kind: str, tmp, rng: random.Random):
    """A data root of one hostile kind (or a usable one); returns its path."""
    from synthetic.images import write_image_folder
    path = tmp / f"root_{kind}"
    if kind == "missing":
        return path
    if kind == "file":
        path.write_bytes(b"\xff\xd8 not a folder")
        return path
    path.mkdir()
    if kind == "non_images":
        (path / "notes.txt").write_text("x")
    elif kind in ("user", "nested"):
        sub = path / "a" / "b" if kind == "nested" else path
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(rng.randint(1, 6)):
            Image.fromarray(np.full((40, 40, 3), 40 * i, np.uint8)).save(sub / f"img_{i:05d}.jpg")
    elif kind == "other_settings":
        path.rmdir()
        write_image_folder(path, n_images=3, size=32, seed=9)
    return path


def test_random_data_roots_are_refused_or_usable(tmp_path):
    """Missing, file, empty, foreign and generated roots, with and without data.generate and with
    random batch sizes: a DataError naming data.root, or images to train on; a folder the
    generator did not make is never written into."""
    from mmengine.config import ConfigDict

    from pretrain.data import DataError, check_batch, prepare_data_root, scan_images
    kinds = ["missing", "file", "empty", "non_images", "user", "nested", "other_settings"]
    rng = random.Random(23)
    outcomes = set()
    for i in range(40):
        kind = rng.choice(kinds)
        tmp = tmp_path / str(i)
        tmp.mkdir()
        root = make_root(kind, tmp, rng)
        generate = rng.random() < 0.5
        data = ConfigDict(root=str(root), generate=dict(n_images=4, size=32, seed=0) if generate else None)
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.is_dir() else None
        try:
            prepare_data_root(data)
            files = scan_images(root)
            check_batch(len(files), root, rng.randint(1, 6), 1)
        except DataError as err:
            assert f"{root} (data.root" in str(err), str(err)
            outcomes.add((kind, generate, "refused"))
        else:
            assert files and all(p.is_file() for p in files)
            outcomes.add((kind, generate, "usable"))
        if before is not None and (kind != "missing"):
            assert all(p.read_bytes() == b for p, b in before.items()), f"{kind}: a file changed"
            if generate and kind != "other_settings":
                assert not (root / ".flsl-generated").exists(), f"{kind}: generated into a foreign folder"
    assert {o[2] for o in outcomes} == {"refused", "usable"}   # both outcomes were reached


# ------------------------------------------------------------------------------ output locations
def test_random_output_locations_are_refused_or_writable(tmp_path):
    """Outputs under a file, on a file, with over-long names, inside an input, or fine: the check
    refuses with an FLSLError naming the option, or an atomic write there succeeds and reads back."""
    from core.files import check_output_path, write_text_atomic
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("input")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    rng = random.Random(29)
    parts = ["out", "a" * 255, "b" * 256, "é" * 128, "blocker", "data", "x.txt", ".", "..", "deep/er"]
    ok = refused = 0
    replaced = set()
    for i in range(120):
        rel = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 3)))
        out = tmp_path / rel
        folder = rng.random() < 0.5
        try:
            check_output_path(out, [data], "--out", folder=folder, need_bytes=rng.choice([0, 1 << 10, 1 << 62]))
        except FLSLError as err:
            refused += 1
            assert str(err).startswith(f"{out} (--out): "), str(err)
            continue
        target = out / "result.txt" if folder or out.is_dir() else out   # a plain output may be either
        write_text_atomic(f"run {i}", target)
        assert target.read_text() == f"run {i}"
        ok += 1
        replaced.add(target.resolve())   # a file output named again is replaced: a re-run
    assert (data / "x.txt").read_text() == "input"          # the input never
    assert blocker.read_text() == "a file" or blocker.resolve() in replaced
    assert ok > 5 and refused > 30
