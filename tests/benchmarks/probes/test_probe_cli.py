"""Every protocol end to end through tools/probe.py on the generated stand-ins; the feature cache
(reuse, equality with fresh features, recomputation on a changed key, a damaged shard) and
torchrun-style extraction with two gloo processes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

SEG = ["train.iters=3", "train.batch_size=2", "train.warmup_iters=1", "train.short_side=32", "train.crop_size=(32,32)",
       "test.short_side=32", "test.crop_size=(32,32)", "test.stride=(22,22)", "train.views=2"]
RUNS = {
    ("linear", "ade20k"): SEG + ["train.seeds=[0,1]"],
    ("linear_ms", "voc2012"): SEG + ["test.ratios=[1.0,1.5]"],
    ("linear", "cityscapes"): SEG,
    ("hummingbird", "voc2012"): ["hbird.input_size=32", "hbird.memory_size=40"],
    ("hummingbird", "ade20k"): ["hbird.input_size=32", "hbird.memory_size=0", "hbird.search=faiss"],
    ("depth_lin1", "nyu"): ["train.iters=2", "train.warmup_iters=1", "train.crop_size=(64,96)"],
    ("depth_lin4", "nyu"): ["train.iters=2", "train.warmup_iters=1", "train.crop_size=(64,96)", "test.flip=False"],
    ("correspondence", "spair"): ["corr.image_size=64"],
    ("correspondence_dift", "spair"): ["corr.image_size=64"],
}


def _run(tool, data, protocol, dataset, out, options=(), ckpt="ckpt", extra=()):
    return tool(["--protocol", protocol, "--dataset", dataset, "--data-root", data[dataset], "--checkpoint", data[ckpt],
                 "--out", out, *extra, *(["--cfg-options", *options] if options else [])])


@pytest.mark.parametrize("protocol,dataset", list(RUNS))
def test_protocol_end_to_end(probe_tool, probe_data, tmp_path, protocol, dataset):
    out = tmp_path / "out"
    assert _run(probe_tool, probe_data, protocol, dataset, out, RUNS[(protocol, dataset)], extra=["--save-predictions"]) == 0
    doc = json.loads((out / "probe_results.json").read_text())
    assert doc["protocol"] == protocol and doc["checkpoint"]["sha256"] and doc["settings"]["protocol"] == protocol.split("_dift")[0]
    assert all(len(v) == 64 for k, v in doc["data"].items() if k.endswith("_sha256"))
    assert all(np.isfinite(v) for v in doc["metrics"].values())
    if protocol.startswith("linear"):
        assert [r["seed"] for r in doc["per_seed"]] == doc["settings"]["train"]["seeds"]
        assert 0 <= doc["metrics"]["mIoU"] <= 100
    preds = sorted((out / "pred").glob("*.png")) if (out / "pred").exists() else []
    if protocol.startswith(("linear", "hummingbird")):
        assert preds and all(Image.open(p).mode == "P" for p in preds)
    if protocol.startswith("depth"):
        assert set(doc["metrics"]) == {"RMSE", "abs_rel", "delta1"}
        im = Image.open(preds[0])
        assert im.mode.startswith("I") and im.size == (640, 480)
        mm = np.asarray(im)
        assert 1 <= mm.min() and mm.max() <= 10000                 # clamped to [0.001, 10] m, in mm
    if protocol.startswith("correspondence"):
        assert 0 <= doc["metrics"]["PCK@0.1"] <= 100 and doc["per_category"]


def test_linear_probe_learns_the_generated_classes(probe_tool, probe_data, tmp_path):
    """A probe that trains: on the VOC stand-in the trained head beats the untrained one."""
    opts = [o for o in SEG if not o.startswith("train.iters")] + ["train.lr=0.01"]
    scores = []
    for iters in (1, 60):
        out = tmp_path / f"it{iters}"
        assert _run(probe_tool, probe_data, "linear", "voc2012", out, opts + [f"train.iters={iters}", "cache.root=" + str(tmp_path / "c")]) == 0
        scores.append(json.loads((out / "probe_results.json").read_text())["per_seed"][0]["aAcc"])
    assert scores[1] > scores[0] + 5


def test_cache_reused_equal_to_fresh_and_recomputed_on_changed_key(probe_tool, probe_data, tmp_path):
    from benchmarks.features import layer_features
    from benchmarks.probes import transforms as T
    from benchmarks.probes.cache import FeatureStore
    from benchmarks.probes.datasets import ade_split, read_rgb
    from pretrain.checkpoint import load_pretrained_encoder
    cache = ["cache.root=" + str(tmp_path / "cache")]
    first = tmp_path / "a"
    assert _run(probe_tool, probe_data, "linear", "ade20k", first, SEG + cache) == 0
    doc1 = json.loads((first / "probe_results.json").read_text())
    assert not doc1["caches"]["train"]["reused"] and not doc1["caches"]["test"]["reused"]
    assert _run(probe_tool, probe_data, "linear", "ade20k", tmp_path / "b", SEG + cache) == 0
    doc2 = json.loads((tmp_path / "b" / "probe_results.json").read_text())
    assert doc2["caches"]["train"]["reused"] and doc2["caches"]["test"]["reused"]
    assert doc2["caches"]["train"]["computed_shards"] == 0
    assert doc2["metrics"] == doc1["metrics"]                   # same features, same seeds
    # the cached test windows equal features computed now from the image
    key = json.loads((tmp_path / "cache" / doc1["caches"]["test"]["digest"] / "key.json").read_text())
    store = FeatureStore(tmp_path / "cache", key, doc1["test_windows"])
    model, _ = load_pretrained_encoder(probe_data["ckpt"])
    sample = ade_split(probe_data["ade20k"], "validation")[0]
    img = read_rgb(sample["image"])
    img = T.resize(img, T.rescale_size(*img.shape[:2], 99999999, 32))
    fresh, _ = layer_features(model.eval(), T.normalise(img[:32, :32], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))[None], [3])
    torch.testing.assert_close(torch.from_numpy(store.take("feat", [0])).float(), fresh.half().float())
    # another checkpoint: both caches recomputed; another test resolution: the test cache only
    assert _run(probe_tool, probe_data, "linear", "ade20k", tmp_path / "c", SEG + cache, ckpt="ckpt_b") == 0
    doc3 = json.loads((tmp_path / "c" / "probe_results.json").read_text())
    assert not doc3["caches"]["train"]["reused"] and not doc3["caches"]["test"]["reused"]
    assert _run(probe_tool, probe_data, "linear", "ade20k", tmp_path / "d", SEG + cache + ["test.short_side=40"]) == 0
    doc4 = json.loads((tmp_path / "d" / "probe_results.json").read_text())
    assert doc4["caches"]["train"]["reused"] and not doc4["caches"]["test"]["reused"]
    # a damaged shard is an error naming the file
    shard = next((tmp_path / "cache" / doc1["caches"]["test"]["digest"]).glob("feat-*.npy"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert _run(probe_tool, probe_data, "linear", "ade20k", tmp_path / "e", SEG + cache) == 2


def test_bad_inputs_are_one_line_errors(probe_tool, probe_data, tmp_path, capsys):
    assert _run(probe_tool, probe_data, "linear", "nyu", tmp_path / "x") == 2
    assert "error: --protocol linear --dataset nyu: no config" in capsys.readouterr().err
    assert _run(probe_tool, probe_data, "linear", "ade20k", tmp_path / "x", ["train.iterz=3"]) == 2
    assert "did you mean train.iters" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert probe_tool(["--protocol", "depth_lin1", "--dataset", "nyu", "--data-root", empty, "--checkpoint",
                       probe_data["ckpt"], "--out", tmp_path / "y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nyu_train.txt: not found" in err and err.count("\n") == 1
    assert not (tmp_path / "y" / "probe_results.json").exists()
    # a label value that is no class of the data set, in a copy of the VOC stand-in
    import shutil
    voc = tmp_path / "voc"
    shutil.copytree(probe_data["voc2012"], voc)
    bad = voc / "SegmentationClass" / "2008_000000.png"
    labels = np.array(Image.open(bad))
    labels[0, 0] = 40
    Image.fromarray(labels).save(bad)
    assert probe_tool(["--protocol", "hummingbird", "--dataset", "voc2012", "--data-root", voc, "--checkpoint",
                       probe_data["ckpt"], "--out", tmp_path / "z", "--cfg-options", "hbird.input_size=32"]) == 2
    assert "2008_000000.png: label value 40 outside 0..20 and not the ignore value 255" in capsys.readouterr().err


def _rank(rank: int, world: int, init: str, root: str):
    import torch.distributed as dist

    from benchmarks.probes.cache import FeatureStore
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        store = FeatureStore(root, {"test": "two ranks"}, n_items=10, shard_size=3)
        store.build(lambda idx: {"value": np.array(idx, np.float32)[:, None] * 2, "rank": np.full(len(idx), rank)})
        assert store.computed == [s for s in range(4) if s % world == rank]
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_two_gloo_ranks_each_write_their_shards(tmp_path):
    import torch.multiprocessing as mp

    from benchmarks.probes.cache import FeatureStore
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_rank, args=(2, init, str(tmp_path / "cache")), nprocs=2, start_method="spawn")
    store = FeatureStore(tmp_path / "cache", {"test": "two ranks"}, n_items=10, shard_size=3)
    assert store.complete()
    np.testing.assert_array_equal(store.load_all("value")[:, 0], np.arange(10) * 2)
    np.testing.assert_array_equal(store.load_all("rank"), [(i // 3) % 2 for i in range(10)])
    np.testing.assert_array_equal(store.take("value", [9, 0, 4, 4])[:, 0], [18, 0, 8, 8])


def test_nyu_test_frames_converted_as_bts_extracts_them(probe_tool, tmp_path):
    import h5py

    from synthetic.probes import write_nyu_labeled
    mat, splits = write_nyu_labeled(tmp_path / "release", n_frames=4, test=(2, 4))
    root = tmp_path / "nyu"
    root.mkdir()
    assert probe_tool(["--convert", "nyu-test", "--data-root", root, "--mat", mat, "--splits", splits]) == 0
    lines = (root / "nyu_test.txt").read_text().splitlines()
    assert lines == ["bathroom/rgb_00001.jpg bathroom/sync_depth_00001.png 518.8579",
                     "bathroom/rgb_00003.jpg bathroom/sync_depth_00003.png 518.8579"]
    with h5py.File(mat, "r") as f:
        image, depth = np.asarray(f["images"][3]).T, np.asarray(f["rawDepths"][3]).T
        other = np.asarray(f["images"][1]).T
    rgb = np.asarray(Image.open(root / "bathroom" / "rgb_00003.jpg")).astype(int)
    assert rgb.shape == (480, 640, 3) and rgb[:5].max() < 20 and rgb[:, 635:].max() < 20   # BTS's black frame
    err = np.abs(rgb[20:460, 20:620] - image[20:460, 20:620]).mean()                        # a JPEG of the frame
    assert err < 12 and err < np.abs(rgb[20:460, 20:620] - other[20:460, 20:620]).mean() / 3
    mm = np.asarray(Image.open(root / "bathroom" / "sync_depth_00003.png"))
    assert mm.dtype == np.uint16 and np.array_equal(mm, (depth * 1000.0).astype(np.uint16)) and mm[0, 0] == 0
    assert not (root / "kitchen").exists()                                                  # train frames not written
