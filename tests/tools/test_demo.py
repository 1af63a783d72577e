"""The demo's quick variant end to end (benchmarks/reproduce/demo.py --quick, what tools/demo.sh runs):
every stage through the real tools, a table whose numbers are the tools' metric files, figures,
and a second run that resumes without redoing anything."""
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

ROOT = Path(__file__).resolve().parents[2]
COCO_RAW = {"bbox_AP": "coco/bbox_mAP", "bbox_AP50": "coco/bbox_mAP_50", "bbox_AP75": "coco/bbox_mAP_75",
            "segm_AP": "coco/segm_mAP", "segm_AP50": "coco/segm_mAP_50", "segm_AP75": "coco/segm_mAP_75"}
DAVIS_RAW = {"JF_mean": "J&F-Mean", "J_mean": "J-Mean", "F_mean": "F-Mean"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "quick"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reproduce.demo", "--quick", "--work-dir", str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work, proc


def test_every_stage_ran_with_progress(demo):
    work, proc = demo
    headers = re.findall(r"==> \[(\d)/7\]", proc.stdout)
    assert headers == [str(i) for i in range(1, 8)]
    assert "img/s" in proc.stdout                       # the pretraining's progress lines
    for tool in ("tools/pretrain.sh", "tools/export_backbone.py", "tools/dist_train.sh", "tools/dist_test.sh",
                 "tools/davis_propagate.py", "tools/visualize.py"):
        assert f" {tool} " in proc.stdout, tool
    assert (work / "results.md").read_text() in proc.stdout


def test_table_numbers_are_the_tools_metrics(demo):
    work, _ = demo
    doc = json.loads((work / "results.json").read_text())
    md = (work / "results.md").read_text()
    for arm in ("flsl", "random"):
        raw = json.loads((work / "runs" / arm / "coco" / "test" / "test_metrics.json").read_text())
        dav = json.loads((work / "runs" / arm / "davis" / "davis_results.json").read_text())["global"]
        got = doc["results"][arm]
        for key, raw_key in COCO_RAW.items():
            if raw[raw_key] < 0:            # pycocotools' -1: nothing to evaluate
                assert got[key] is None
                continue
            assert got[key] == pytest.approx(100 * raw[raw_key], abs=1e-4)
            assert 0.0 <= got[key] <= 100.0
        for key, raw_key in DAVIS_RAW.items():
            assert got[key] == pytest.approx(100 * dav[raw_key], abs=1e-4)
            assert 0.0 <= got[key] <= 100.0
        label = {"flsl": "FLSL-pretrained", "random": "random init"}[arm]
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {label} |"))
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        keys = list(COCO_RAW) + list(DAVIS_RAW)
        assert cells == ["-" if got[k] is None else f"{got[k]:.1f}" for k in keys]
    for key in list(COCO_RAW) + list(DAVIS_RAW):
        a, b = doc["results"]["flsl"][key], doc["results"]["random"][key]
        assert doc["difference"][key] == (None if a is None or b is None else pytest.approx(a - b, abs=1e-3))
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


def test_figures_were_written(demo):
    work, _ = demo
    doc = json.loads((work / "results.json").read_text())
    summaries = [ROOT / p if not Path(p).is_absolute() else Path(p) for p in doc["figures"]]
    assert len(summaries) == 2 and all(p.is_file() for p in summaries)
    with Image.open(summaries[0]) as im:
        # quick budget: 96 x 128 images -> 6 x 8 patches, 4 default query patches: 6 panels
        assert im.size == (128 * 6, 96)
    for arm in ("flsl", "random"):
        assert len(list((work / "figures" / arm).glob("*_attn_*.png"))) == 4


def test_second_run_resumes_without_redoing(demo):
    work, _ = demo
    before = (work / "results.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reproduce.demo", "--quick", "--work-dir", str(work), "--no-figures"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pretraining already done" in proc.stdout
    assert proc.stdout.count("already evaluated") == 4
    assert "tools/dist_train.sh" not in proc.stdout
    assert json.loads((work / "results.json").read_text())["results"] == json.loads(before)["results"]


def test_arms_side_by_side_prefix_output_and_raise_failures(capsys):
    """--jobs 2: both arms run (at the same time), every output line is led by its arm's name,
    and a failing tool's error reaches the caller after the other arm has finished."""
    import threading

    from benchmarks.reproduce import demo as demo_module

    inside, peak, lock = [0], [0], threading.Lock()
    barrier = threading.Barrier(2, timeout=30)

    def job(arm, prefix):
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        barrier.wait()                      # returns only if both arms are running at once
        demo_module.run([sys.executable, "-c", f"print('hello from {arm}'); print('line two')"],
                        f"test/{arm}", prefix=prefix)
        with lock:
            inside[0] -= 1
        return arm.upper()

    assert demo_module.for_each_arm(job, jobs=2) == {"flsl": "FLSL", "random": "RANDOM"}
    assert peak[0] == 2
    out = capsys.readouterr().out.splitlines()
    for arm in demo_module.ARMS:
        assert f"[{arm}] hello from {arm}" in out
        assert f"[{arm}] line two" in out
    assert not [ln for ln in out if ln and not ln.startswith(("[flsl] ", "[random] "))]

    finished = []

    def failing(arm, prefix):
        if arm == "flsl":
            demo_module.run([sys.executable, "-c", "import sys; sys.exit(3)"], "test/flsl", prefix=prefix)
        finished.append(arm)

    with pytest.raises(demo_module.DemoError, match="exit status 3"):
        demo_module.for_each_arm(failing, jobs=2)
    assert finished == ["random"]
    # one job at a time: no prefix, the arms in order
    order = []
    demo_module.for_each_arm(lambda arm, prefix: order.append((arm, prefix)), jobs=1)
    assert order == [("flsl", None), ("random", None)]
