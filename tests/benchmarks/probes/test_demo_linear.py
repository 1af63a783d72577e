"""benchmarks/probes/demo_linear.py: the frozen-encoder probes against plain computations, on a
generated COCO-format set read with pycocotools' own mask decoding."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.probes import demo_linear as P

ROOT = Path(__file__).resolve().parents[3]


def test_grouping_auc_is_the_pair_counting_probability():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(9, 5, generator=g)
    segment = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 0])
    got = P.grouping_auc(tokens, segment)
    z = [t / t.norm() for t in tokens.double()]
    pairs = list(itertools.combinations(range(9), 2))
    same = [float(z[i] @ z[j]) for i, j in pairs if segment[i] == segment[j]]
    cross = [float(z[i] @ z[j]) for i, j in pairs if segment[i] != segment[j]]
    wins = sum((s > c) + 0.5 * (s == c) for s in same for c in cross)
    assert got == pytest.approx(100 * wins / (len(same) * len(cross)))
    # features that are the segment's own direction group perfectly; one segment has no cross pair
    exact = torch.nn.functional.one_hot(segment, 3).float() + 0.01 * torch.randn(9, 3, generator=g)
    assert P.grouping_auc(exact, segment) == 100.0
    assert P.grouping_auc(tokens, torch.zeros(9, dtype=torch.long)) is None


def test_patch_segments_majority_and_purity():
    ins = torch.zeros(4, 8, dtype=torch.long)
    ins[:, 4:] = 1          # right patch: instance 1 everywhere
    ins[:3, 1] = 2          # left patch: 3 of its 16 pixels instance 2, 13 background
    seg, pure = P.patch_segments(ins, 4, purity=0.75)
    assert seg.tolist() == [0, 1] and pure.tolist() == [True, True]         # 13/16 background >= 0.75
    seg, pure = P.patch_segments(ins, 4, purity=0.9)
    assert pure.tolist() == [False, True]


def test_iou_scores_by_hand():
    conf = torch.tensor([[50, 5, 0], [10, 30, 0], [0, 0, 0]])   # class 2: absent from truth and prediction
    ious, miou, acc = P.iou_scores(conf)
    assert ious[0] == pytest.approx(100 * 50 / (50 + 5 + 10)) and ious[1] == pytest.approx(100 * 30 / (30 + 10 + 5))
    assert ious[2] is None and miou == pytest.approx((ious[0] + ious[1]) / 2)
    assert acc == pytest.approx(100 * 80 / 95)


def test_linear_probe_learns_a_linearly_coded_map_and_depends_on_its_seed_only():
    """Features that carry the class of each patch in one channel: the probe reaches (nearly)
    perfect mIoU; the same seed gives the same weights bit for bit, another seed others."""
    g = torch.Generator().manual_seed(0)
    n, h, w, p = 12, 4, 5, 8
    patch_cls = torch.randint(0, 3, (n, h, w), generator=g)
    feats = 0.1 * torch.randn(n, 6, h, w, generator=g)
    feats[:, :3] += 3.0 * torch.nn.functional.one_hot(patch_cls, 3).permute(0, 3, 1, 2).float()
    labels = patch_cls.repeat_interleave(p, 1).repeat_interleave(p, 2)
    split = P.Split(feats, labels, labels, [f"{i}.jpg" for i in range(n)])
    settings = P.Settings(seeds=(0,), epochs=40, batch=4, lr=0.05)
    w0, b0 = P.train_probe(split, 3, 0, settings)
    again = P.train_probe(split, 3, 0, settings)
    other = P.train_probe(split, 3, 1, settings)
    assert torch.equal(w0, again[0]) and torch.equal(b0, again[1])
    assert not torch.equal(w0, other[0])
    _, miou, acc = P.iou_scores(P.confusion(w0, b0, split, 3))
    # bilinear upsampling blurs the class boundaries between patches: interiors are exact
    assert miou > 80 and acc > 85


@pytest.fixture(scope="module")
def coco_and_encoder(tmp_path_factory):
    from synthetic.coco import write_coco
    from pretrain.checkpoint import export_encoder
    from pretrain.encoder import build_encoder
    folder = tmp_path_factory.mktemp("probe")
    root = write_coco(folder / "coco", n_train=6, n_val=3, height=64, width=80, seed=0)
    torch.manual_seed(0)
    ckpt = folder / "enc.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1, img_size=64), ckpt)
    return root, ckpt


def test_read_split_rebuilds_the_instance_masks(coco_and_encoder):
    from pycocotools.coco import COCO
    root, _ = coco_and_encoder
    paths, classes, instances, names = P.read_split(root, "val")
    assert names == ["background", "ellipse", "rectangle", "triangle"]
    api = COCO(str(root / "annotations" / "instances_val.json"))
    for path, cls, ins, img_id in zip(paths, classes, instances, sorted(api.getImgIds())):
        assert path.name == api.imgs[img_id]["file_name"]
        anns = api.loadAnns(api.getAnnIds(imgIds=[img_id]))
        for rank, a in enumerate(anns, 1):
            m = api.annToMask(a).astype(bool)
            assert (cls[m] == a["category_id"]).all() and (ins[m] == rank).all()
        covered = np.zeros_like(cls, bool)
        for a in anns:
            covered |= api.annToMask(a).astype(bool)
        assert (cls[~covered] == 0).all() and (ins[~covered] == 0).all()


def test_probe_tool_writes_reproducible_results(coco_and_encoder, tmp_path):
    root, ckpt = coco_and_encoder
    outs = []
    for name in ("a", "b"):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.probes.demo_linear", "--checkpoint", str(ckpt),
                               "--data-root", str(root), "--out", str(tmp_path / name), "--seeds", "0", "3",
                               "--epochs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads((tmp_path / name / P.RESULTS).read_text()))
    doc = outs[0]
    assert [r["seed"] for r in doc["linear"]] == [0, 3]
    for r in doc["linear"]:
        assert 0 <= r["mIoU"] <= 100 and set(r["IoU"]) == set(doc["classes"])
    assert sorted(doc["grouping"]) == sorted(p.name for p in (root / "val").glob("*.jpg"))
    assert all(v is None or 0 <= v <= 100 for v in doc["grouping"].values())
    assert outs[0]["linear"] == outs[1]["linear"] and outs[0]["grouping"] == outs[1]["grouping"]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.probes.demo_linear", "--checkpoint", str(ckpt),
                           "--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "c")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "instances_train.json" in proc.stderr
