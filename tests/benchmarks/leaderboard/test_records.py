"""Import of the result files this suite writes today (written here by the suite's own writers),
each into the store under the tables' keys in percent; importing twice adds nothing."""
import json

import numpy as np
import pytest

from benchmarks.leaderboard.records import ResultFileError, find_importable, import_file
from core.errors import cli_main
from core.results import Store


def _stored(store):
    with Store(store, create=False) as st:
        return st.runs()


def test_dense_test_metrics(tmp_path):
    from benchmarks.dense.runner import write_metrics
    coco = tmp_path / "coco_run" / "test" / "test_metrics.json"
    write_metrics({"coco/bbox_mAP": 0.4123, "coco/bbox_mAP_50": 0.6, "coco/segm_mAP": 0.375,
                   "coco/segm_mAP_75": -1.0}, coco)
    ade = tmp_path / "ade_run" / "test" / "test_metrics.json"
    write_metrics({"mIoU": 44.5, "mAcc": 55.25, "aAcc": 80.0}, ade)
    uav = tmp_path / "uav_run" / "test" / "test_metrics.json"
    write_metrics({"coco/bbox_mAP": 0.2, "coco/bbox_mAP_70": 0.25}, uav)
    (tmp_path / "coco_run" / "test" / "test_metrics.json.provenance.json").write_text(json.dumps(
        {"command": "tools/test.py c k", "argv": ["tools/test.py", "c", "k"], "inputs": {"k": "aa" * 32},
         "config": {"path": "configs/coco/x.py", "sha256": "bb" * 32}, "written": "2026-01-01T00:00:00+00:00"}))
    store = tmp_path / "r.db"
    for f in (coco, ade, uav):
        import_file(f, store)
    runs = {r["benchmark"]: r for r in _stored(store)}
    assert runs["coco"]["metrics"] == {"bbox_AP": {0: pytest.approx(41.23)}, "bbox_AP50": {0: pytest.approx(60.0)},
                                       "segm_AP": {0: pytest.approx(37.5)}}      # -1 (no ground truth) dropped
    assert runs["coco"]["command"] == "tools/test.py c k" and runs["coco"]["config_digest"] == "bb" * 32
    assert runs["coco"]["inputs"] == {"k": "aa" * 32} and runs["coco"]["finished"] == "2026-01-01T00:00:00+00:00"
    assert runs["coco"]["checkpoint"] == "coco_run"
    assert runs["ade20k"]["metrics"] == {"mIoU": {0: 44.5}, "mAcc": {0: 55.25}, "aAcc": {0: 80.0}}
    assert runs["uavdt"]["metrics"]["AP70"] == {0: pytest.approx(25.0)}
    import_file(coco, store)                        # the same file again: nothing new
    assert len(_stored(store)) == 3


def test_davis_json_and_official_csv(tmp_path):
    from benchmarks.davis.metrics import DavisResults
    res = DavisResults()
    rng = np.random.default_rng(0)
    res.add("bear", rng.uniform(0.5, 0.9, (2, 6)), rng.uniform(0.4, 0.8, (2, 6)))
    res.add("car", rng.uniform(0.5, 0.9, (1, 5)), rng.uniform(0.4, 0.8, (1, 5)))
    out = tmp_path / "davis_out"
    res.write(out, "val")
    g = res.global_scores()
    store = tmp_path / "r.db"
    import_file(out / "davis_results.json", store, checkpoint="dino.pth")
    csv_only = tmp_path / "csv_only"
    csv_only.mkdir()
    (csv_only / "global_results-val.csv").write_bytes((out / "global_results-val.csv").read_bytes())
    import_file(csv_only / "global_results-val.csv", store)
    js, cs = _stored(store)
    j_mean = np.mean([o["J-Mean"] for o in res.per_object().values()])
    f_mean = np.mean([o["F-Mean"] for o in res.per_object().values()])
    assert js["metrics"]["JF_mean"][0] == pytest.approx(100 * (j_mean + f_mean) / 2)
    assert js["metrics"]["J_decay"][0] == pytest.approx(100 * g["J-Decay"])
    assert js["checkpoint"] == "dino.pth" and js["kind"] == "davis"
    assert cs["metrics"]["JF_mean"][0] == pytest.approx(100 * g["J&F-Mean"], abs=0.05)    # CSV: 3 decimals


def test_demo_probes_and_demo_results(tmp_path):
    probe = tmp_path / "probe" / "probe_results.json"
    probe.parent.mkdir()
    probe.write_text(json.dumps({"checkpoint": "work/backbones/flsl.safetensors", "classes": ["bg", "a"],
                                 "linear": [{"seed": 0, "mIoU": 30.0, "pixel_acc": 80.0, "IoU": {}},
                                            {"seed": 3, "mIoU": 34.0, "pixel_acc": 82.0, "IoU": {}}],
                                 "grouping": {"a.jpg": 60.0, "b.jpg": None, "c.jpg": 70.0},
                                 "settings": {"epochs": 2}}))
    demo = tmp_path / "demo" / "results.json"
    demo.parent.mkdir()
    demo.write_text(json.dumps({
        "budget": {"name": "quick"}, "summary": "", "comparisons": {},
        "results": {arm: {"mask_rcnn": {"0": {"bbox_AP": 1.0 + k, "segm_AP": 2.0}, "1": {"bbox_AP": 3.0 + k, "segm_AP": 4.0}},
                          "probe": {"0": 20.0 + k, "1": 22.0}, "grouping": {"x.jpg": 55.0, "y.jpg": 65.0 + k},
                          "davis": {"s_1": {"J": 50.0, "F": 60.0}, "s_2": {"J": 70.0 + k, "F": 40.0}}}
                    for k, arm in enumerate(("flsl", "random"))}}))
    store = tmp_path / "r.db"
    from tools.results import main
    assert cli_main(main, ["import", "--store", str(store), str(tmp_path)]) == 0
    assert find_importable(tmp_path) == [demo, probe]
    runs = _stored(store)
    by = {(r["kind"], r["benchmark"], r.get("extra", {}).get("arm")): r for r in runs}
    lin = by[("probe", "linear-probe", None)]
    assert lin["metrics"] == {"mIoU": {0: 30.0, 3: 34.0}, "pixel_acc": {0: 80.0, 3: 82.0}}
    assert by[("probe", "patch-grouping", None)]["metrics"] == {"AUC": {0: 65.0}}
    assert lin["checkpoint"] == "flsl.safetensors"
    coco = by[("demo", "coco", "random")]
    assert coco["metrics"] == {"bbox_AP": {0: 2.0, 1: 4.0}, "segm_AP": {0: 2.0, 1: 4.0}}
    assert by[("demo", "linear-probe", "flsl")]["metrics"] == {"mIoU": {0: 20.0, 1: 22.0}}
    assert by[("demo", "patch-grouping", "random")]["metrics"] == {"AUC": {0: 60.5}}
    davis = by[("demo", "davis", "random")]["metrics"]
    assert davis["J_mean"][0] == 60.5 and davis["F_mean"][0] == 50.0 and davis["JF_mean"][0] == 55.25
    assert len(runs) == 2 + 2 * 4
    assert cli_main(main, ["import", "--store", str(store), str(tmp_path)]) == 0     # again: nothing new
    assert len(_stored(store)) == len(runs)


def test_unknown_or_broken_files_are_refused(tmp_path):
    bad = tmp_path / "test_metrics.json"
    bad.write_text("{not json")
    with pytest.raises(ResultFileError, match=str(bad)):
        import_file(bad, tmp_path / "r.db")
    other = tmp_path / "notes.json"
    other.write_text("{}")
    with pytest.raises(ResultFileError, match="not a result file"):
        import_file(other, tmp_path / "r.db")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "test_metrics.json").write_text(json.dumps({"loss": 1.0}))
    with pytest.raises(ResultFileError, match="not a COCO"):
        import_file(tmp_path / "x" / "test_metrics.json", tmp_path / "r.db")


def test_demo_work_dir_is_recorded_once_with_what_the_demo_knows(tmp_path):
    from benchmarks.davis.config import load_settings
    from benchmarks.davis.metrics import DavisResults
    from benchmarks.dense.runner import write_metrics
    from benchmarks.leaderboard.records import record_demo_runs
    work = tmp_path / "demo"
    backbones, rng = {}, np.random.default_rng(1)
    for k, arm in enumerate(("flsl", "random")):
        backbones[arm] = work / "backbones" / f"{arm}.safetensors"
        backbones[arm].parent.mkdir(parents=True, exist_ok=True)
        backbones[arm].write_bytes(arm.encode())
        for seed in (0, 1):
            run_dir = work / "runs" / arm / "coco" / f"seed{seed}"
            write_metrics({"coco/bbox_mAP": 0.1 * (k + 1) + 0.01 * seed}, run_dir / "test" / "test_metrics.json")
            if seed == 1:   # MMEngine's checkpoint meta: the training's seed (seed 0's run has none)
                import torch
                torch.save({"meta": {"seed": 7, "cfg": "model = dict(backbone=dict(init_cfg=dict(checkpoint='e.pth')))"},
                            "state_dict": {}}, run_dir / "epoch_1.pth")
                (run_dir / "last_checkpoint").write_text(str(run_dir / "epoch_1.pth"))
        res = DavisResults()
        res.add("s", rng.uniform(0.3, 0.9, (1, 5)), rng.uniform(0.3, 0.9, (1, 5)))
        res.write(work / "runs" / arm / "davis", "val")
    roots = {"coco": work / "data" / "coco", "davis": work / "data" / "davis"}
    settings = load_settings(None, short_side=64)
    store = tmp_path / "r.db"
    first = record_demo_runs(work, backbones, roots, settings, store)
    assert sorted(first) == sorted(set(first)) and len(first) == 2 * 3
    assert record_demo_runs(work, backbones, roots, settings, store) == first       # again: the same runs
    runs = _stored(store)
    coco = [r for r in runs if r["benchmark"] == "coco" and r["checkpoint"] == "random.safetensors"]
    assert len(coco) == 2 and {r["dataset"] for r in coco} == {str(roots["coco"])}
    # the seed comes from the trained checkpoint's meta where the run folder has one
    assert sorted((r["metrics"]["bbox_AP"] for r in coco), key=len) == [{0: pytest.approx(20.0)}, {7: pytest.approx(21.0)}]
    davis = [r for r in runs if r["benchmark"] == "davis"]
    assert {r["protocol_default"] for r in davis} == {False} and "short_side=64" in davis[0]["protocol"]


def test_dense_protocol_marks_the_authors_head_split(repo_root):
    from mmengine.config import Config

    from benchmarks.leaderboard.records import dense_protocol
    authors = Config.fromfile(str(repo_root / "configs" / "coco" / "mask_rcnn_flsl_vits16_8heads.py"))
    as_trained = Config.fromfile(str(repo_root / "configs" / "coco" / "mask_rcnn_flsl_vits16.py"))
    got = dense_protocol(authors, trained_heads=6)
    assert got["protocol"] == "8-head split" and got["protocol_default"] is False
    assert "8 attention heads (trained with 6)" in got["protocol_note"]
    assert dense_protocol(as_trained, trained_heads=6) == {"protocol": "default", "protocol_default": True,
                                                            "protocol_note": ""}
    assert dense_protocol(Config(dict(model=dict(backbone=dict(num_heads=6)))), trained_heads=6)["protocol_default"]
    variant = dense_protocol(Config(dict(protocol_variant="short schedule")), trained_heads=None)
    assert variant["protocol"] == "short schedule" and not variant["protocol_default"]
