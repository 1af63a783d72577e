"""Tests that notice small changes of the numerical code which the rest of the suite let pass:
each names the mutation it catches (measured by applying it: see the module's report)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from benchmarks.davis.config import DEFAULTS
from benchmarks.davis.propagation import PropagationParams, Propagator
from benchmarks.dense.data_check import AnnotationError, check_coco
from pretrain.checkpoint import CheckpointError, load_strict

from .cases import REPO


# ------------------------------------------------------------------------------ DAVIS protocol
def documented_davis_defaults() -> dict:
    """The defaults table of docs/davis.md ("| `key` | value | meaning |")."""
    out = {}
    for line in (REPO / "docs" / "davis.md").read_text().splitlines():
        m = re.match(r"\| `(n_last_frames|neighborhood|topk|temperature)` \| ([0-9.]+) \|", line)
        if m:
            out[m.group(1)] = float(m.group(2)) if "." in m.group(2) else int(m.group(2))
    return out


def test_propagation_defaults_are_the_documented_ones():
    """Catches: a default of PropagationParams or of the DAVIS settings changed (e.g. 12 -> 11)."""
    documented = documented_davis_defaults()
    assert documented == {"n_last_frames": 7, "neighborhood": 12, "topk": 5, "temperature": 0.1}
    p = PropagationParams()
    assert (p.n_last_frames, p.neighborhood, p.topk, p.temperature) == (7, 12, 5, 0.1)
    assert {k: DEFAULTS[k] for k in documented} == documented


def dense_reference(first_f, first_l, targets, h, w, radius, topk, temperature, n_last):
    """DINO's rule written densely: for each target frame, affinities exp(cos / t) to every patch of
    the first frame and the ``n_last`` most recent frames within Chebyshev distance ``radius``,
    the entries >= the k-th largest kept, renormalised, labels averaged. Features [N, C] (not
    normalised), labels [N, L] one-hot. Returns the soft labels of each target, [T, N, L]."""
    norm = lambda f: f / np.linalg.norm(f, axis=1, keepdims=True)  # noqa: E731
    n = h * w
    ii, jj = np.divmod(np.arange(n), w)
    inside = np.maximum(np.abs(ii[:, None] - ii[None]), np.abs(jj[:, None] - jj[None])) <= radius
    context = [(norm(first_f), first_l)]
    recent, outs = [], []
    for f in targets:
        q = norm(f)
        ctx = context + recent
        aff = np.concatenate([np.where(inside, np.exp(q @ k.T / temperature), 0.0) for k, _ in ctx], axis=1)
        kth = np.sort(aff, axis=1)[:, -topk][:, None]
        weights = np.where(aff >= kth, aff, 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        labels = weights @ np.concatenate([lab for _, lab in ctx], axis=0)
        outs.append(labels)
        recent = (recent + [(q, labels)])[-n_last:] if n_last else []
    return np.stack(outs)


def test_default_protocol_matches_a_dense_reference_on_a_grid_where_radius_11_differs():
    """Catches: the default radius 12 -> 11 (and topk, temperature, n_last_frames changes): a
    30x30 grid with 9 target frames, where radius 11 and 12 give different labels."""
    h = w = 30
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(10, h * w, 16, generator=g, dtype=torch.float64)
    first_l = torch.nn.functional.one_hot(torch.randint(0, 3, (h * w,), generator=g), 3).double()
    prop = Propagator(PropagationParams(), (h, w), feats[0], first_l)
    got = torch.stack([prop.step(f) for f in feats[1:]]).numpy()
    f, lab = feats.numpy(), first_l.numpy()
    ref = dense_reference(f[0], lab, f[1:], h, w, radius=12, topk=5, temperature=0.1, n_last=7)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    ref11 = dense_reference(f[0], lab, f[1:], h, w, radius=11, topk=5, temperature=0.1, n_last=7)
    assert np.abs(ref11 - ref).max() > 1e-3  # the grid is big enough for the radius to matter
    ref6 = dense_reference(f[0], lab, f[1:], h, w, radius=12, topk=5, temperature=0.1, n_last=6)
    assert np.abs(ref6 - ref).max() > 1e-3   # and enough frames for the context length to matter


# ------------------------------------------------------------------------------ strict loading
def test_load_strict_refuses_an_extra_tensor():
    """Catches: load_strict ignoring unexpected keys."""
    model = torch.nn.Linear(3, 2)
    state = {**model.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"ckpt.pth: does not match the encoder: unexpected keys "
                                              r"\(1\): extra.weight$"):
        load_strict(model, state, "ckpt.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): bias$"):
        load_strict(model, {"weight": torch.zeros(2, 3)}, "ckpt.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatches: weight: checkpoint \(3, 2\) vs model \(2, 3\)"):
        load_strict(model, {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}, "ckpt.pth")
    load_strict(model, {"weight": torch.ones(2, 3), "bias": torch.ones(2)}, "ckpt.pth")
    assert float(model.weight.sum()) == 6.0


# ------------------------------------------------------------------------------ COCO data check
def test_coco_check_follows_category_references(tmp_path):
    """Catches: the data check skipping category_id references (a valid file passes, one dangling
    category fails, naming the annotation)."""
    from synthetic.coco import write_coco
    root = write_coco(tmp_path / "coco", n_train=2, n_val=1, height=64, width=80, seed=0)
    path = root / "annotations" / "instances_train.json"
    coco = json.loads(path.read_text())
    assert check_coco(path, root / "train")["annotations"] == len(coco["annotations"])
    last = len(coco["annotations"]) - 1
    coco["annotations"][last]["category_id"] = max(c["id"] for c in coco["categories"]) + 1
    path.write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match=rf"annotations\[{last}\] .* refers to category_id "
                                              rf"{coco['annotations'][last]['category_id']}, not listed"):
        check_coco(path, root / "train")


# ------------------------------------------------------------------------------ UAVDT AP at 0.7
def test_uavdt_strict_iou_is_0_7(tmp_path):
    """Catches: the strict threshold moved (0.7 -> 0.75) with the key name kept: detections at
    IoU 0.72 count at 0.7 (AP 1) and not at 0.75 (AP 0)."""
    pytest.importorskip("mmdet")
    from mmengine.config import Config

    from benchmarks.uavdt.metric import UAVDTMetric
    cfg = Config.fromfile(str(REPO / "configs/_base_/datasets/uavdt_detection.py"))
    assert cfg.val_evaluator.strict_iou == 0.7 and cfg.test_evaluator.strict_iou == 0.7
    gt_boxes = [[10.0, 10.0, 40.0, 40.0], [60.0, 20.0, 30.0, 50.0]]
    coco = dict(info={}, images=[dict(id=1, file_name="a.jpg", width=100, height=100)],
                categories=[dict(id=k, name=n) for k, n in ((1, "car"), (2, "truck"), (3, "bus"))],
                annotations=[dict(id=i + 1, image_id=1, category_id=1, bbox=b, area=b[2] * b[3], iscrowd=0)
                             for i, b in enumerate(gt_boxes)])
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps(coco))
    # shrink each box's height: IoU = new height / old height = 0.72
    dets = [[x, y, w, h * 0.72] for x, y, w, h in gt_boxes]
    ious = [d[3] / g[3] for d, g in zip(dets, gt_boxes)]
    assert all(0.7 < v < 0.75 for v in ious)
    metric = UAVDTMetric(ann_file=str(ann), metric="bbox", proposal_nums=(1, 10, 100))
    metric.dataset_meta = dict(classes=("car", "truck", "bus"))
    xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in dets], dtype=torch.float32)
    metric.process({}, [dict(img_id=1, ori_shape=(100, 100),
                             pred_instances=dict(bboxes=xyxy, scores=torch.tensor([0.9, 0.8]),
                                                 labels=torch.tensor([0, 0])))])
    result = metric.evaluate(1)
    assert result["coco/bbox_mAP_70"] == 1.0
    assert result["coco/bbox_mAP_75"] == 0.0  # MMDetection's own AP75 on the same detections


# ------------------------------------------------------------------------------ last-layer freeze
def test_last_layer_is_frozen_exactly_during_the_first_epoch(tmp_path):
    """Catches: the prototypes' freeze ending one epoch late (or early): with
    freeze_last_layer=1 they are unchanged after every iteration of epoch 0 and change at the
    first iteration of epoch 1."""
    from mmengine.config import Config

    from synthetic.images import write_image_folder
    from pretrain.trainer import Trainer

    from .cases import TINY_PRETRAIN
    cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
    cfg.data.root = str(write_image_folder(tmp_path / "img", n_images=8, size=64, seed=1, n_classes=1))
    cfg.train.epochs = 2
    trainer = Trainer(cfg, tmp_path / "wd", resume=None)
    assert trainer.freeze_last_layer == 1 and trainer.iters_per_epoch == 2
    last = trainer.student.head.last_layer

    def snapshot():
        return {k: v.clone() for k, v in last.state_dict().items()}

    start = snapshot()
    it = 0
    for epoch in range(2):
        trainer.sampler.set_epoch(epoch)
        for batch in trainer.loader:
            trainer.train_step(batch, it)
            it += 1
            now = snapshot()
            unchanged = all(torch.equal(now[k], start[k]) for k in start)
            if it <= trainer.iters_per_epoch:
                assert unchanged, f"prototypes moved at iteration {it} (epoch 0)"
            else:
                assert not unchanged, "prototypes still frozen in epoch 1"
                return
    raise AssertionError("epoch 1 never started")


# ------------------------------------------------------------------------------ trainer defaults
def _tiny_trainer(tmp_path, edit=None):
    from mmengine.config import Config

    from pretrain.trainer import Trainer
    from synthetic.images import write_image_folder

    from .cases import TINY_PRETRAIN
    cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
    cfg.data.root = str(write_image_folder(tmp_path / "img", n_images=8, size=64, seed=1, n_classes=1))
    if edit:
        edit(cfg)
    return Trainer(cfg, tmp_path / "wd", resume=None)


def test_trainer_scales_the_learning_rate_by_the_global_batch_over_256(tmp_path):
    """Catches: the trainer's ``lr * global_batch / 256`` changed (``/ 512``, or the batch left
    out): without warm-up the first step runs at exactly optim.lr * 4 / 256 (batch 4, one
    process), in the schedule and in the optimizer the step used."""
    def no_warmup(cfg):
        cfg.optim.warmup_epochs = 0
    trainer = _tiny_trainer(tmp_path, no_warmup)
    peak = 5e-4 * 4 / 256  # TINY_PRETRAIN's optim.lr, batch_size_per_gpu 4, world 1
    assert trainer.lr_sched[0] == pytest.approx(peak, rel=1e-12)
    trainer.sampler.set_epoch(0)
    trainer.train_step(next(iter(trainer.loader)), 0)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([peak, peak], rel=1e-12)


def test_freeze_last_layer_defaults_to_one_epoch(tmp_path):
    """Catches: the default of optim.freeze_last_layer changed from 1 (DINO's and the FLSL
    recipe's): with the key absent, the prototypes do not move in the first iteration while the
    rest of the head does."""
    def drop_key(cfg):
        del cfg.optim["freeze_last_layer"]
        cfg.optim.warmup_epochs = 0  # a first step with a learning rate above 0
    trainer = _tiny_trainer(tmp_path, drop_key)
    assert "freeze_last_layer" not in trainer.cfg.optim
    head = trainer.student.head
    last = {k: v.clone() for k, v in head.last_layer.state_dict().items()}
    mlp = head.mlp[0].weight.detach().clone()
    trainer.sampler.set_epoch(0)
    trainer.train_step(next(iter(trainer.loader)), 0)
    assert all(torch.equal(head.last_layer.state_dict()[k], v) for k, v in last.items())
    assert not torch.equal(head.mlp[0].weight, mlp)


# ------------------------------------------------------------------------------ --cfg-options
def test_unknown_option_without_a_near_match_is_refused():
    """Catches: the strict refusal of an unknown ``--cfg-options`` key limited to keys with a
    "did you mean" suggestion (a key like nothing in the config was only warned about, and added)."""
    from mmengine.config import Config

    from core.config import apply_options
    from core.errors import ConfigError
    cfg = Config(dict(train=dict(epochs=10), model=dict(arch="vit_small_patch16_224")))
    with pytest.raises(ConfigError, match=r"^zzqx\.wvut: unknown key in --cfg-options$"):
        apply_options(cfg, {"zzqx.wvut": 3})
    assert "zzqx" not in cfg


# ------------------------------------------------------------------------------ dense backbone
def test_dense_backbone_default_out_indices_are_3_5_7_11():
    """Catches: FLSLViT's default out_indices changed from (3, 5, 7, 11) (every config passes them,
    so only a backbone built without them notices): the pyramid levels are the outputs of those
    blocks (0-based), and blocks after the last one are frozen."""
    from benchmarks.dense.backbone import FLSLViT  # MMEngine only, no MMDetection needed
    backbone = FLSLViT(arch="vit_tiny_patch16_224", encoder_kwargs=dict(img_size=64))
    assert backbone.out_indices == (3, 5, 7, 11)
    trainable = [any(p.requires_grad for p in blk.parameters()) for blk in backbone.encoder.blocks]
    assert trainable == [True] * 12  # block 11 is the last one used: nothing after it to freeze
