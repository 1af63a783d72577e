"""Benchmark tools record their runs in the store after writing their own result files: the
stored numbers are the files' numbers, the provenance names the command, the checkpoint's digest
and the protocol; a store that cannot be written costs the record only, never the result files."""
import hashlib
import json
import sys

import pytest
import torch

from core.errors import cli_main
from core.results import Store
from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder
from synthetic.davis import write_davis


@pytest.fixture(scope="module")
def davis_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis_record")
    data = write_davis(root / "DAVIS", n_sequences=2, frames=(4, 4), size=(64, 96), seed=3).root
    torch.manual_seed(0)
    ckpt = root / "tiny.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1), ckpt)
    return root, data, ckpt


def _propagate(root, data, ckpt, out, store):
    from tests.benchmarks.leaderboard.tool import load_tool
    argv = ["--checkpoint", str(ckpt), "--data-root", str(data), "--out", str(out), "--arch", "vit_tiny",
            "--short-side", "64", "--evaluate", "--store", str(store)]
    old = sys.argv
    sys.argv = ["tools/davis_propagate.py", *argv]
    try:
        return cli_main(load_tool("davis_propagate.py").main, argv)
    finally:
        sys.argv = old


def test_davis_propagate_records_its_evaluation(davis_case):
    root, data, ckpt = davis_case
    store = root / "results.db"
    assert _propagate(root, data, ckpt, root / "out", store) == 0
    result = json.loads((root / "out" / "davis_results.json").read_text())["global"]
    with Store(store, create=False) as st:
        (run,) = st.runs()
    assert run["kind"] == "davis" and run["benchmark"] == "davis"
    assert run["metrics"]["JF_mean"] == {0: pytest.approx(100 * result["J&F-Mean"])}
    assert run["metrics"]["F_decay"] == {0: pytest.approx(100 * result["F-Decay"])}
    assert run["checkpoint"] == "tiny.safetensors"
    assert run["checkpoint_digest"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert run["architecture"] == "vit_tiny_patch16_224" and run["family"] == "flsl-export"
    # 64 px frames instead of DINO's 480: a non-default protocol, named
    assert not run["protocol_default"] and "short_side" in run["protocol_note"]
    assert "--short-side 64" in run["command"] and run["source"].endswith("davis_results.json")
    # importing the file the tool wrote finds its record: the run is stored once
    from benchmarks.leaderboard.records import import_file
    assert import_file(root / "out" / "davis_results.json", store) == [run["id"]]
    with Store(store, create=False) as st:
        assert st.count() == 1


def test_a_damaged_store_costs_the_record_not_the_results(davis_case, capsys):
    root, data, ckpt = davis_case
    store = root / "damaged.db"
    store.write_bytes(b"\0" * 4096)
    assert _propagate(root, data, ckpt, root / "out2", store) == 0
    assert (root / "out2" / "davis_results.json").is_file()
    err = capsys.readouterr().err
    assert f"warning: {store}" in err or str(store) in err
    assert store.read_bytes() == b"\0" * 4096


def test_demo_probes_record_per_seed_miou_and_grouping(davis_case):
    from benchmarks.probes import demo_linear
    from synthetic.coco import write_coco
    root, _, ckpt = davis_case
    coco = write_coco(root / "coco", n_train=4, n_val=2, height=64, width=96, seed=0)
    store = root / "probes.db"
    assert cli_main(demo_linear.main, ["--checkpoint", str(ckpt), "--data-root", str(coco), "--out",
                                       str(root / "probe"), "--seeds", "0", "2", "--epochs", "1",
                                       "--store", str(store)]) == 0
    doc = json.loads((root / "probe" / "probe_results.json").read_text())
    with Store(store, create=False) as st:
        runs = {r["benchmark"]: r for r in st.runs()}
    assert runs["linear-probe"]["metrics"]["mIoU"] == {r["seed"]: pytest.approx(r["mIoU"]) for r in doc["linear"]}
    aucs = [v for v in doc["grouping"].values() if v is not None]
    assert runs["patch-grouping"]["metrics"]["AUC"] == {0: pytest.approx(sum(aucs) / len(aucs))}
    assert {r["kind"] for r in runs.values()} == {"probe"}
    assert runs["linear-probe"]["checkpoint_digest"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()


def test_probe_tool_records_each_seed(tmp_path):
    from synthetic.ade import write_ade
    from tests.benchmarks.leaderboard.tool import load_tool
    torch.manual_seed(0)
    ckpt = tmp_path / "enc.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=2, img_size=64, class_token=True), ckpt)
    ade = write_ade(tmp_path / "ade", n_train=4, n_val=2, height=48, width=64)
    store, out = tmp_path / "r.db", tmp_path / "out"
    options = ["train.iters=2", "train.batch_size=2", "train.warmup_iters=1", "train.short_side=32",
               "train.crop_size=(32,32)", "test.short_side=32", "test.crop_size=(32,32)", "test.stride=(22,22)",
               "train.views=2", "train.seeds=[0,1]"]
    argv = ["--protocol", "linear", "--dataset", "ade20k", "--data-root", str(ade), "--checkpoint", str(ckpt),
            "--out", str(out), "--store", str(store), "--cfg-options", *options]
    assert cli_main(load_tool("probe.py").main, argv) == 0
    doc = json.loads((out / "probe_results.json").read_text())
    with Store(store, create=False) as st:
        (run,) = st.runs()
    assert (run["benchmark"], run["dataset"], run["kind"]) == ("probe-linear", "ade20k", "probe")
    assert run["metrics"]["mIoU"] == {r["seed"]: pytest.approx(r["mIoU"]) for r in doc["per_seed"]}
    assert "mIoU_std" not in run["metrics"] and len(run["metrics"]["mIoU"]) == 2
    assert run["checkpoint_digest"] == doc["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert not run["protocol_default"] and "train.iters=2" in run["protocol_note"]
    assert run["config_path"].endswith("linear_ade20k.py")
