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

import pytest
import torch

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
