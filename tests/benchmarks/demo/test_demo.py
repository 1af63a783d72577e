"""The demo's quick variant end to end (benchmarks/demo/run.py --quick, what tools/demo.sh runs):
every stage through the real tools, a table whose numbers are the tools' metric files with
spreads recomputed here independently, figures, a second run that resumes without redoing
anything, and a fresh second run that prints the identical table."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from pretrain.checkpoint import load_encoder_weights

ROOT = Path(__file__).resolve().parents[3]
COCO_RAW = {"bbox_AP": "coco/bbox_mAP", "bbox_AP50": "coco/bbox_mAP_50", "bbox_AP75": "coco/bbox_mAP_75",
            "segm_AP": "coco/segm_mAP", "segm_AP50": "coco/segm_mAP_50", "segm_AP75": "coco/segm_mAP_75"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "quick"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.demo.run", "--quick", "--work-dir", str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work, proc


def test_every_stage_ran_with_progress(demo):
    work, proc = demo
    headers = re.findall(r"==> \[(\d)/8\]", proc.stdout)
    assert headers == [str(i) for i in range(1, 9)]
    assert "img/s" in proc.stdout                       # the pretraining's progress lines
    for tool in ("tools/pretrain.sh", "tools/export_backbone.py", "benchmarks.probes.demo_linear", "tools/dist_train.sh",
                 "tools/dist_test.sh", "tools/davis_propagate.py", "tools/visualize.py"):
        assert f" {tool} " in proc.stdout, tool
    assert (work / "results.md").read_text() in proc.stdout
    for arm in ("flsl", "random"):          # the arms ran side by side (--jobs 2), each line led by its name
        assert f"[{arm}] $ " in proc.stdout


def _sd(values):
    m = sum(values) / len(values)
    return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def test_table_numbers_are_the_tools_metrics_with_their_spreads(demo):
    """Every number behind the table is read back from the tools' own files; the means,
    standard deviations and 95% intervals are recomputed here (scipy's t-tests) and the table's
    cells are those numbers."""
    from scipy import stats

    from benchmarks.demo.run import QUICK
    work, _ = demo
    doc = json.loads((work / "results.json").read_text())
    md = (work / "results.md").read_text()
    per_arm = {}
    for arm in ("flsl", "random"):
        got = doc["results"][arm]
        coco = {}
        for seed in QUICK.mask_rcnn_seeds:
            raw = json.loads((work / "runs" / arm / "coco" / f"seed{seed}" / "test" / "test_metrics.json").read_text())
            for key, raw_key in COCO_RAW.items():
                mine = got["mask_rcnn"][str(seed)][key]
                if raw[raw_key] < 0:            # pycocotools' -1: nothing to evaluate
                    assert mine is None
                    continue
                assert mine == pytest.approx(100 * raw[raw_key], abs=1e-4)
                coco.setdefault(key, []).append(mine)
        probe = json.loads((work / "runs" / arm / "probe" / "probe_results.json").read_text())
        assert [r["seed"] for r in probe["linear"]] == list(QUICK.probe_seeds)
        assert [got["probe"][str(r["seed"])] for r in probe["linear"]] == [r["mIoU"] for r in probe["linear"]]
        assert got["grouping"] == probe["grouping"]
        dav = json.loads((work / "runs" / arm / "davis" / "davis_results.json").read_text())
        for obj, v in dav["per_object"].items():
            assert got["davis"][obj] == {"J": pytest.approx(100 * v["J-Mean"]), "F": pytest.approx(100 * v["F-Mean"])}
        # the per-object J&F average is the tool's global J&F
        jf = [(o["J"] + o["F"]) / 2 for o in got["davis"].values()]
        assert sum(jf) / len(jf) == pytest.approx(100 * dav["global"]["J&F-Mean"], abs=1e-6)
        per_arm[arm] = {**coco, "probe_mIoU": [r["mIoU"] for r in probe["linear"]], "JF": jf}
    comps = doc["comparisons"]
    for key in list(COCO_RAW) + ["probe_mIoU"]:
        a, b = per_arm["flsl"].get(key), per_arm["random"].get(key)
        if not a or not b:
            assert key not in comps
            continue
        c = comps[key]
        assert c["flsl"]["mean"] == pytest.approx(sum(a) / len(a)) and c["random"]["sd"] == pytest.approx(_sd(b))
        if _sd(a) + _sd(b) > 0:
            ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
            assert c["difference"] + c["half_width"] == pytest.approx(ci.high)
        label = {"probe_mIoU": "mIoU", "bbox_AP": "box AP", "segm_AP": "mask AP"}.get(key)
        if label:
            line = next(ln for ln in md.splitlines() if f"| {label} |" in ln)
            cells = [x.strip() for x in line.strip("|").split("|")]
            assert cells[2] == f"{sum(a) / len(a):.1f} ± {_sd(a):.1f}"
            assert cells[4] == f"{c['difference']:+.1f} ± {c['half_width']:.1f}"
            assert cells[6].strip("*") == c["verdict"]
    jf = comps["JF_mean"]
    d = [x - y for x, y in zip(per_arm["flsl"]["JF"], per_arm["random"]["JF"])]
    assert jf["difference"] == pytest.approx(sum(d) / len(d)) and jf["paired"]
    ci = stats.ttest_rel(per_arm["flsl"]["JF"], per_arm["random"]["JF"]).confidence_interval(0.95)
    assert jf["difference"] + jf["half_width"] == pytest.approx(ci.high)
    assert f"**Summary.** {doc['summary']}" in md
    # the frozen-feature probes' table: each arm's cell from its run's own results file
    from benchmarks.probes.demo import RUNS as PROBE_RUNS
    for protocol, dataset, _ in PROBE_RUNS["quick"]:
        cells_want = []
        for arm in ("flsl", "random"):
            res = json.loads((work / "runs" / arm / "probes" / f"{protocol}_{dataset}" / "probe_results.json").read_text())
            if protocol.startswith("linear"):
                v = [r["mIoU"] for r in res["per_seed"]]
            elif protocol.startswith("depth"):
                v = [100 * r["a1"] for r in res["per_seed"]]
            else:
                v = [res["metrics"]["mIoU" if protocol == "hummingbird" else "PCK@0.1"]]
            assert doc["results"][arm]["probes"][f"{protocol}/{dataset}"] == pytest.approx(v)
            mean = sum(v) / len(v)
            cells_want.append(f"{mean:.1f} ± {_sd(v):.1f}" if len(v) > 1 else f"{mean:.1f}")
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {protocol} | {dataset} |"))
        cells = [x.strip() for x in line.strip("|").split("|")]
        assert cells[3:5] == cells_want, line
    # the DAVIS ground truth was evaluated on every generated sequence and object
    per_object = json.loads((work / "runs" / "flsl" / "davis" / "davis_results.json").read_text())["per_object"]
    seqs = (work / "data" / "davis" / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert {k.rsplit("_", 1)[0] for k in per_object} == set(seqs)


def test_backbones_are_the_pretrained_teacher_and_its_initialisation(demo):
    work, _ = demo
    from mmengine.config import Config

    from pretrain.model import FLSLNet
    flsl = load_encoder_weights(work / "backbones" / "flsl.safetensors")
    rand = load_encoder_weights(work / "backbones" / "random.safetensors")
    train = load_encoder_weights(work / "pretrain" / "latest.pth")          # the training state's teacher
    for k, v in train.state_dict.items():
        assert torch.equal(flsl.state_dict[k], v), k
    cfg = Config.fromfile(str(ROOT / "configs/demo/flsl_demo.py"))
    m = cfg.model
    torch.manual_seed(cfg.train.seed)
    start = FLSLNet(flsl.spec, m.drop_path_rate, m.out_dim, m.hidden_dim, m.bottleneck_dim).backbone.state_dict()
    for k, v in start.items():
        assert torch.equal(rand.state_dict[k], v), k
    moved = [k for k in start if k != "pos_embed" and not torch.equal(start[k], flsl.state_dict[k])]
    assert len(moved) == len(start) - 1


def test_figures_were_written_and_embedded(demo):
    from benchmarks.figures.maps import DPI, PANEL_INCHES
    work, _ = demo
    doc = json.loads((work / "results.json").read_text())
    md = (work / "results.md").read_text()
    figs = [ROOT / p if not Path(p).is_absolute() else Path(p) for p in doc["figures"]]
    assert [p.name for p in figs] == ["results.png", "pretraining.png", "000000_summary.png"]
    for p in figs:
        assert p.is_file() and f"](figures/{p.name})" in md
    with Image.open(figs[2]) as im:
        # quick budget: 96 x 128 images, 4 default query patches: 2 rows (FLSL, random init) x 6 panels
        w, h = im.size
        assert abs(w - (PANEL_INCHES * 6 + 1.2) * DPI) <= 1 and abs(h - (PANEL_INCHES * 0.75 * 2 + 1.5) * DPI) <= 1
    for p in figs[:2]:
        with Image.open(p) as im:
            assert im.size[0] >= 1000 and im.size[1] >= 250
    for arm in ("flsl_pretrained", "random_init"):
        assert len(list((work / "figures").glob(f"{arm}_*_attn_*.png"))) == 4


def test_second_run_resumes_without_redoing(demo):
    """Every stage is a list of steps with provenance: a second run finds each result up to date
    (its record names the command and the digests of the backbone and data it read) and runs
    nothing."""
    from benchmarks.demo.run import QUICK
    from core.digests import file_sha256
    work, _ = demo
    before = (work / "results.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.demo.run", "--quick", "--work-dir", str(work), "--no-figures"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from benchmarks.probes.demo import RUNS as PROBE_RUNS
    n_steps = 1 + 2 + 2 * (1 + len(PROBE_RUNS["quick"])) + 2 * 2 * len(QUICK.mask_rcnn_seeds) + 2  # pretrain, export, probes, coco, davis
    assert len(re.findall(r"# \[\d+/\d+\] done: ", proc.stdout)) == n_steps
    assert proc.stdout.count("every step is already done") == 5
    assert "$ " not in proc.stdout and "tools/dist_train.sh" not in proc.stdout
    assert json.loads((work / "results.json").read_text())["results"] == json.loads(before)["results"]
    for arm in ("flsl", "random"):
        record = json.loads((work / "runs" / arm / "probe" / "probe_results.json.provenance.json").read_text())
        inputs = {Path(k).name: v for k, v in record["inputs"].items()}
        assert inputs[f"{arm}.safetensors"] == file_sha256(work / "backbones" / f"{arm}.safetensors")
        assert inputs["instances_val.json"] == file_sha256(work / "data" / "coco" / "annotations" / "instances_val.json")


def test_a_fresh_run_prints_the_identical_table(demo, tmp_path):
    """The same command twice on one machine: every stage again from nothing, the same table,
    summary and per-seed numbers (fixed seeds, one thread per tool)."""
    work, first = demo
    again = tmp_path / "again"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.demo.run", "--quick", "--work-dir", str(again)],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"}, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    table = (again / "results.md").read_text()
    assert table in first.stdout and table in proc.stdout       # what each run printed at its end
    assert (work / "results.md").read_text() == table
    a, b = (json.loads(p.read_text()) for p in (work / "results.json", again / "results.json"))
    assert a["results"] == b["results"] and a["comparisons"] == b["comparisons"]
