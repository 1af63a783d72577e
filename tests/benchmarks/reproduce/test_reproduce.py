"""tools/reproduce.py: the reference file, every table's dry-run commands, collection of results
from work dirs written here, the table layout and its differences, the leaderboard, bad input."""
from __future__ import annotations

import csv
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reproduce import ReproduceError
from benchmarks.reproduce.references import MISSING, load_references
from benchmarks.reproduce.registry import RECIPES, TABLES, table

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "reproduce.py"


def reproduce(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


# ------------------------------------------------------------------------------ reference file
def test_reference_file_is_consistent_and_never_guesses():
    tables, sources = load_references()
    assert set(tables) == set(TABLES)
    n_null = 0
    for t in tables.values():
        for r in t.rows:
            for key, ref in r.reference.items():
                if ref.value is None:
                    n_null += 1
                    assert ref.source == MISSING
                else:
                    assert ref.source in sources and 0 < ref.value < 100
    assert n_null > 0
    # the abstract's margins: the ViT-S/16 baseline row is FLSL's numbers minus +2.8 / +2.3
    coco = tables["coco"]
    flsl, base = coco.row("flsl_vits16").reference, coco.row("selfpatch_vits16").reference
    assert flsl["bbox_AP"].value - base["bbox_AP"].value == pytest.approx(2.8)
    assert flsl["segm_AP"].value - base["segm_AP"].value == pytest.approx(2.3)
    assert flsl["bbox_AP"].source == "abstract" and coco.row("flsl_vits8").reference["segm_AP"].source == "abstract"


def test_every_row_has_a_recipe_and_every_recipe_a_row():
    for name in TABLES:
        t = table(name)
        assert list(t.recipes) == [r.id for r in t.ref.rows]
        assert set(t.recipes) == set(RECIPES[name])


def test_bad_reference_file_is_refused_with_its_key(tmp_path):
    data = json.loads((ROOT / "benchmarks/reproduce/paper_tables.json").read_text())
    data["tables"]["coco"]["rows"][0]["reference"]["bbox_AP50"]["source"] = "my guess"
    bad = tmp_path / "paper_tables.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReproduceError, match=r"tables\.coco\.rows\[0\]\.reference\.bbox_AP50"):
        load_references(bad)
    bad.write_text("{\n  \"tables\": [1,\n")
    with pytest.raises(ReproduceError, match="not valid JSON"):
        load_references(bad)


# ------------------------------------------------------------------------------ dry runs
def _commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line and not line.startswith("#")]


def _opt(argv, name):
    return argv[argv.index(name) + 1]


def _cfg_options(argv):
    i = argv.index("--cfg-options")
    return dict(a.split("=", 1) for a in argv[i + 1:] if "=" in a and not a.startswith("--"))


def _documented_paths() -> str:
    return (ROOT / "docs" / "reproduce.md").read_text()


@pytest.mark.parametrize("name", TABLES)
def test_dry_run_prints_runnable_commands(name, tmp_path):
    from mmengine.config import Config
    work = tmp_path / "work"
    proc = reproduce(name, "--dry-run", "--work-root", work, "--gpus", 4)
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds, proc.stdout
    docs = _documented_paths()
    t = table(name)
    made = {}      # backbone files the pretraining commands make
    converted = False
    trained = {}   # work dir -> config of dist_train
    for argv in cmds:
        tool = argv[1] if argv[0].startswith("GPUS=") else argv[0]
        if tool == "tools/pretrain.sh":
            config = argv[1]
            assert argv[2] == "4"
            cfg = Config.fromfile(str(ROOT / config))
            opts = _cfg_options(argv)
            assert opts["data.root"] == cfg.data.root == "data/imagenet/train"
            wd = Path(_opt(argv, "--work-dir"))
            assert wd.parent == work / "pretrain"
            for key in opts:   # every override names an existing entry of the config
                node = cfg
                for part in key.split("."):
                    assert part in node, f"{key} is not a key of {config}"
                    node = node[part]
            made[str(wd / "backbone.safetensors")] = config
        elif tool == "tools/dist_train.sh":
            config, gpus = argv[1], argv[2]
            assert gpus == "4" and "--resume" in argv
            cfg = Config.fromfile(str(ROOT / config))
            opts = _cfg_options(argv)
            assert opts["data_root"] == cfg.data_root           # the documented data location
            assert cfg.data_root in docs
            ckpt = opts["model.backbone.init_cfg.checkpoint"]
            assert ckpt in made or ckpt in docs, f"{ckpt} neither made by a pretraining nor documented"
            wd = Path(_opt(argv, "--work-dir"))
            assert wd.parent == work / name
            trained[wd] = (config, cfg)
        elif tool == "tools/dist_test.sh":
            config, ckpt, gpus = argv[1], Path(argv[2]), argv[3]
            assert gpus == "4"
            train_cfg, cfg = trained[ckpt.parent]
            assert train_cfg == config
            assert ckpt.name == f"epoch_{cfg.train_cfg.max_epochs}.pth" if "max_epochs" in cfg.train_cfg \
                else ckpt.name == f"iter_{cfg.train_cfg.max_iters}.pth"
            assert Path(_opt(argv, "--work-dir")) == ckpt.parent / "test"
            assert _cfg_options(argv)["data_root"] == cfg.data_root
        elif "tools/uavdt2coco.py" in argv:
            # the conversion runs before the UAVDT training, with its --every recorded, and
            # writes where the configs read their annotations
            assert name == "uavdt" and not trained
            assert _opt(argv, "--every") == "1"
            assert _opt(argv, "--data-root") == "data/uavdt/"
            assert _opt(argv, "--out") == "data/uavdt/annotations"
            converted = True
        else:
            assert argv[0].endswith("python") and argv[1] == "tools/davis_propagate.py"
            assert (ROOT / "tools/davis_propagate.py").is_file()
            davis_cfg = Config.fromfile(str(ROOT / _opt(argv, "--config")))
            assert davis_cfg.patch_size == (8 if "vits8" in _opt(argv, "--config") else 16)
            assert _opt(argv, "--data-root") == "data/davis/" and "data/davis/" in docs
            ckpt = _opt(argv, "--checkpoint")
            assert ckpt in made or ckpt in docs
            assert Path(_opt(argv, "--out")).parent.parent == work / name
    assert converted == (name == "uavdt")                 # once, shared by the UAVDT rows
    assert sum("tools/uavdt2coco.py" in a for a in cmds) == (name == "uavdt")
    # each row of the table is measured exactly once
    n_runs = sum(1 for a in cmds if a[0] in ("tools/dist_train.sh",) or "tools/davis_propagate.py" in a)
    assert n_runs == len(t.recipes)
    # the FLSL rows use our pretraining of the matching patch size
    for cfg_path in made.values():
        assert (ROOT / cfg_path).is_file()


def test_dry_run_with_checkpoint_skips_pretraining_and_marks_finished_steps(tmp_path):
    work = tmp_path / "w"
    ckpt = _tiny_export(tmp_path, patch=16)
    proc = reproduce("uavdt", "--dry-run", "--work-root", work, "--gpus", 1, "--checkpoint", ckpt,
                     "--data-root", tmp_path / "d", "--cfg-options", f"data.uavdt={tmp_path / 'u'}")
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert not any(c[0] == "tools/pretrain.sh" for c in cmds)
    train = [c for c in cmds if c[0] == "tools/dist_train.sh"]
    assert _cfg_options(train[0])["model.backbone.init_cfg.checkpoint"] == str(ckpt)
    assert _cfg_options(train[0])["data_root"] == str(tmp_path / "u") + "/"
    # the DINO row keeps its released checkpoint
    assert _cfg_options(train[1])["model.backbone.init_cfg.checkpoint"] == "checkpoints/dino_deitsmall16_pretrain.pth"
    # an output file alone is not a finished step: without a record of what made it, it is stale
    final = Path(train[0][train[0].index("--work-dir") + 1]) / "epoch_12.pth"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"")
    data = tmp_path / "d"                  # the annotation files the steps read (their digests are recorded)
    for name in ("uavdt_train.json", "uavdt_test.json"):
        (data / "uavdt" / "annotations").mkdir(parents=True, exist_ok=True)
        (data / "uavdt" / "annotations" / name).write_text("{}")
    args = ("uavdt", "--dry-run", "--work-root", work, "--gpus", 1, "--checkpoint", ckpt, "--data-root", data)
    proc = reproduce(*args)
    assert "#   stale result, to redo: no provenance record" in proc.stdout
    assert any(c[0] == "tools/dist_train.sh" and str(final) .startswith(c[c.index("--work-dir") + 1])
               for c in _commands(proc.stdout))
    # a step whose record matches (what core.steps.run_steps writes after a success) is done
    step = _plan_step(work, ckpt, "uavdt/flsl_vits16: fine-tuning", data)
    step.record()
    proc = reproduce(*args)
    assert "# [2/5] done: uavdt/flsl_vits16" in proc.stdout
    assert not any(c[0] == "tools/dist_train.sh" and str(final.parent) in c for c in _commands(proc.stdout))
    # another checkpoint under the same name: the result is stale again, and says why
    other = _tiny_export(tmp_path / "other", patch=16, seed=1)
    ckpt.write_bytes(other.read_bytes())
    (ckpt.parent / (ckpt.name + ".sha256")).unlink(missing_ok=True)
    proc = reproduce(*args)
    assert f"#   stale result, to redo: input {ckpt} changed" in proc.stdout
    # --collect-only tabulates what it finds but names the stale result
    proc = reproduce("uavdt", "--collect-only", "--work-root", work, "--gpus", 1, "--checkpoint", ckpt,
                     "--data-root", data)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {final}: stale result (input {ckpt} changed" in proc.stderr
    # an edited annotation file makes the finished row stale too
    (data / "uavdt" / "annotations" / "uavdt_train.json").write_text('{"images": []}')
    proc = reproduce(*args)
    assert "uavdt_train.json changed" in proc.stdout


def _plan_step(work: Path, ckpt: Path, label_start: str, data: Path | None = None):
    from benchmarks.reproduce.plan import Options, checkpoint_overrides, data_roots, plan
    from core.steps import repo_relative
    opts = Options(work_root=repo_relative(work), gpus=1, data_roots=data_roots(data),
                   checkpoints=checkpoint_overrides(str(ckpt)))
    return next(s for s in plan(table("uavdt"), opts) if s.label.startswith(label_start))


def _tiny_export(folder: Path, patch: int, seed: int = 0) -> Path:
    import torch

    from pretrain.checkpoint import export_encoder
    from pretrain.encoder import build_encoder
    torch.manual_seed(seed)
    path = folder / f"tiny_p{patch}.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=1, img_size=64, patch_size=patch), path)
    return path


def test_checkpoint_of_the_wrong_patch_size_is_refused(tmp_path):
    p16 = _tiny_export(tmp_path, patch=16)
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path, "--checkpoint", p16)
    assert proc.returncode == 2 and "flsl_vits8" in proc.stderr and "patch size 16" in proc.stderr
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path, "--checkpoint", p16, "--rows", "flsl_vits16")
    assert proc.returncode == 0, proc.stderr
    p8 = _tiny_export(tmp_path, patch=8)
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path, "--checkpoint", p16,
                     "--cfg-options", f"checkpoint.flsl_vits8={p8}")
    assert proc.returncode == 0, proc.stderr
    assert f"--checkpoint {p8}" in proc.stdout and f"--checkpoint {p16}" in proc.stdout


def test_slurm_pretraining_command(tmp_path):
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path, "--gpus", 16, "--slurm", "gpu", "--rows", "flsl_vits8")
    assert proc.returncode == 0, proc.stderr
    cmds = _commands(proc.stdout)
    assert cmds[0][:4] == ["GPUS=16", "tools/slurm_pretrain.sh", "gpu", "configs/pretrain/flsl_vits8_in1k.py"]
    assert len(cmds) == 2


# ------------------------------------------------------------------------------ collection + layout
def _write_coco_metrics(path: Path, values: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


COCO_RAW = {
    "flsl_vits16": {"coco/bbox_mAP": 0.452, "coco/bbox_mAP_50": 0.671, "coco/bbox_mAP_75": 0.493,
                    "coco/segm_mAP": 0.404, "coco/segm_mAP_50": 0.640, "coco/segm_mAP_75": 0.431},
    "dino_vits16": {"coco/bbox_mAP": 0.399, "coco/bbox_mAP_50": 0.62, "coco/bbox_mAP_75": 0.43,
                    "coco/segm_mAP": 0.368, "coco/segm_mAP_50": 0.59, "coco/segm_mAP_75": 0.39},
}


def test_collect_only_writes_the_paper_layout_with_differences(tmp_path):
    work = tmp_path / "w"
    _write_coco_metrics(work / "coco" / "flsl_vits16" / "test" / "test_metrics.json",
                        {**COCO_RAW["flsl_vits16"], "coco/bbox_mAP_s": 0.2})
    # a run without tools/test.py output: the last validation record of MMEngine's json log
    log = work / "coco" / "dino_vits16" / "20240101_000000" / "vis_data" / "scalars.json"
    log.parent.mkdir(parents=True)
    early = {k: v / 2 for k, v in COCO_RAW["dino_vits16"].items()}
    log.write_text("\n".join(json.dumps(r) for r in [
        {"lr": 1e-4, "loss": 2.0, "epoch": 1, "iter": 50, "step": 50},
        {**early, "step": 1},
        {"lr": 1e-5, "loss": 1.0, "epoch": 12, "iter": 50, "step": 600},
        {**COCO_RAW["dino_vits16"], "step": 12}]) + "\n")
    proc = reproduce("coco", "--collect-only", "--work-root", work)
    assert proc.returncode == 0, proc.stderr
    md = (work / "tables" / "coco.md").read_text()
    rows = list(csv.DictReader(io.StringIO((work / "tables" / "coco.csv").read_text())))
    ref = table("coco").ref
    assert [r["row"] for r in rows] == [r.id for r in ref.rows]      # the paper's row order
    by_id = {r["row"]: r for r in rows}
    for row_id, raw in COCO_RAW.items():
        r = by_id[row_id]
        for key, raw_key in [("bbox_AP", "coco/bbox_mAP"), ("bbox_AP50", "coco/bbox_mAP_50"),
                             ("segm_AP", "coco/segm_mAP"), ("segm_AP75", "coco/segm_mAP_75")]:
            ours = 100.0 * raw[raw_key]
            assert float(r[key]) == pytest.approx(ours, abs=1e-4)
            paper = ref.row(row_id).reference[key].value
            if paper is None:
                assert r[f"{key}_paper"] == "" and r[f"{key}_diff"] == ""
            else:
                assert float(r[f"{key}_paper"]) == pytest.approx(paper)
                assert float(r[f"{key}_diff"]) == pytest.approx(ours - paper, abs=1e-4)
    # rows without results stay empty, never filled in
    assert by_id["ibot_vits16"]["bbox_AP"] == "" and by_id["ibot_vits16"]["bbox_AP_paper"] == ""
    # Markdown: header in the paper's metric order, ours / paper / difference side by side
    header = next(line for line in md.splitlines() if line.startswith("| pretraining"))
    labels = [m.label for m in ref.metrics]
    assert header.count("(ours)") == len(labels) and header.index(labels[0]) < header.index(labels[3])
    flsl_line = next(line for line in md.splitlines() if line.startswith("| FLSL | ViT-S/16 |"))
    cells = [c.strip() for c in flsl_line.strip("|").split("|")]
    assert cells[2:5] == ["45.2", "44.9", "+0.3"]                       # 45.2 - 44.9
    assert cells[11:14] == ["40.4", "40.8", "-0.4"]                     # mask AP
    assert "n/a" in flsl_line and "to fill from the paper" in md
    assert "`abstract`" in md and "`selfpatch-paper`" in md


def test_collect_reads_davis_results_in_percent(tmp_path):
    work = tmp_path / "w"
    out = work / "davis" / "dino_vits16" / "davis"
    out.mkdir(parents=True)
    g = {"J&F-Mean": 0.6175, "J-Mean": 0.6, "J-Recall": 0.7, "J-Decay": 0.1, "F-Mean": 0.635,
         "F-Recall": 0.75, "F-Decay": 0.12}
    (out / "davis_results.json").write_text(json.dumps({"global": g, "per_object": {}}))
    # a run that only has the official CSV
    out8 = work / "davis" / "dino_vits8" / "davis"
    out8.mkdir(parents=True)
    (out8 / "global_results-val.csv").write_text(
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n0.700,0.665,0.8,0.1,0.735,0.85,0.1\n")
    proc = reproduce("davis", "--collect-only", "--work-root", work)
    assert proc.returncode == 0, proc.stderr
    rows = {r["row"]: r for r in csv.DictReader(io.StringIO((work / "tables" / "davis.csv").read_text()))}
    assert float(rows["dino_vits16"]["JF_mean"]) == pytest.approx(61.75)
    assert float(rows["dino_vits16"]["JF_mean_diff"]) == pytest.approx(61.75 - 61.8)
    assert float(rows["dino_vits16"]["F_mean"]) == pytest.approx(63.5)
    assert float(rows["dino_vits8"]["JF_mean"]) == pytest.approx(70.0)
    assert float(rows["dino_vits8"]["JF_mean_diff"]) == pytest.approx(70.0 - 69.9)
    assert rows["flsl_vits16"]["JF_mean"] == ""


def test_leaderboard_gathers_every_finished_run(tmp_path):
    work = tmp_path / "w"
    _write_coco_metrics(work / "coco" / "a" / "test" / "test_metrics.json", COCO_RAW["dino_vits16"])
    _write_coco_metrics(work / "coco" / "b" / "test" / "test_metrics.json", COCO_RAW["flsl_vits16"])
    _write_coco_metrics(work / "uavdt" / "c" / "test" / "test_metrics.json",
                        {"coco/bbox_mAP": 0.301, "coco/bbox_mAP_50": 0.5, "coco/bbox_mAP_75": 0.3, "coco/bbox_mAP_70": 0.33})
    _write_coco_metrics(work / "ade" / "d" / "test" / "test_metrics.json", {"mIoU": 41.25, "aAcc": 80.0})
    d = work / "elsewhere" / "davis_run"
    d.mkdir(parents=True)
    (d / "davis_results.json").write_text(json.dumps({"global": {"J&F-Mean": 0.5, "J-Mean": 0.45, "F-Mean": 0.55}}))
    (work / "coco" / "unfinished").mkdir(parents=True)
    proc = reproduce("leaderboard", "--work-root", work)
    assert proc.returncode == 0, proc.stderr
    md = (work / "leaderboard.md").read_text()
    coco_section = md.split("## coco")[1].split("##")[0]
    assert coco_section.index("| coco/b |") < coco_section.index("| coco/a |")   # best first
    assert "| uavdt/c | 30.1 | 50.0 | 30.0 | 33.0 |" in md
    assert "| ade/d | 41.2 |" in md or "| ade/d | 41.3 |" in md
    assert "| elsewhere/davis_run | 50.0 | 45.0 | 55.0 |" in md
    assert "unfinished" not in md
    rows = list(csv.DictReader(io.StringIO((work / "leaderboard.csv").read_text())))
    assert {(r["run"], r["metric"]) for r in rows} >= {("coco/b", "bbox_AP"), ("ade/d", "mIoU")}


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_give_one_line_errors(tmp_path):
    bad = tmp_path / "w" / "coco" / "flsl_vits16" / "test" / "test_metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    proc = reproduce("coco", "--collect-only", "--work-root", tmp_path / "w")
    last = proc.stderr.strip().splitlines()[-1]  # stale-result warnings may come first
    assert proc.returncode == 2 and last.startswith("error: ") and str(bad) in last
    assert "Traceback" not in proc.stderr
    bad.write_text(json.dumps({"mIoU": 40.0}))
    proc = reproduce("coco", "--collect-only", "--work-root", tmp_path / "w")
    assert proc.returncode == 2 and "coco/bbox_mAP" in proc.stderr
    proc = reproduce("coco", "--dry-run", "--rows", "no_such_row")
    assert proc.returncode == 2 and "no_such_row" in proc.stderr
    proc = reproduce("coco", "--dry-run", "--cfg-options", "data.imagenett=/x")
    assert proc.returncode == 2 and "data.imagenett" in proc.stderr and "did you mean data.imagenet?" in proc.stderr
    proc = reproduce("coco", "--dry-run", "--cfg-options", "checkpoint.flsl_vits16x=/x")
    assert proc.returncode == 2 and "did you mean checkpoint.flsl_vits16?" in proc.stderr
    proc = reproduce("tabel9")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_run_stops_at_a_missing_released_checkpoint(tmp_path):
    """Running (not a dry run) the DINO row without its release file fails before any work,
    naming the documented path."""
    proc = reproduce("davis", "--work-root", tmp_path, "--rows", "dino_vits16", "--gpus", 1)
    assert proc.returncode == 2
    assert "checkpoints/dino_deitsmall16_pretrain.pth" in proc.stderr and "docs/reproduce.md" in proc.stderr


# ------------------------------------------------------------------------------ schedule edits
def _apply_options(config: Path, options: list[str]):
    """The config as the tools see it after ``--cfg-options *options`` (MMEngine's DictAction)."""
    import argparse

    from mmengine.config import Config, DictAction
    p = argparse.ArgumentParser()
    p.add_argument("--cfg-options", nargs="+", action=DictAction)
    cfg = Config.fromfile(str(config), import_custom_modules=False)
    cfg.merge_from_dict(p.parse_args(["--cfg-options", *options]).cfg_options)
    return cfg


def test_epoch_options_edit_schedulers_by_type_not_position(tmp_path):
    from benchmarks.reproduce.plan import epoch_options
    demo = ROOT / "configs/demo/mask_rcnn_vit_tiny_synthetic.py"
    cfg = _apply_options(demo, epoch_options(str(demo), 3))
    assert cfg.train_cfg.max_epochs == 3 and cfg.default_hooks.checkpoint.interval == 3
    multistep = next(s for s in cfg.param_scheduler if s.type == "MultiStepLR")
    assert multistep.end == 3 and multistep.milestones == [2]       # the decay keeps its last-epoch place
    warmup = next(s for s in cfg.param_scheduler if s.type == "LinearLR")
    assert warmup.end == 20 and not warmup.by_epoch                 # by-iteration warm-up untouched
    # the same schedule listed in the other order: the options follow the type
    swapped = tmp_path / "swapped.py"
    swapped.write_text(f"_base_ = [{str(demo)!r}]\n"
                       "param_scheduler = [dict(type='MultiStepLR', begin=0, end=5, by_epoch=True, milestones=[4], "
                       "gamma=0.1), dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)]\n")
    opts = epoch_options(str(swapped), 1)
    assert "param_scheduler.0.end=1" in opts and "param_scheduler.0.milestones=[1]" in opts
    cfg = _apply_options(swapped, opts)
    assert cfg.param_scheduler[0].end == 1 and cfg.param_scheduler[1].end == 20
    ambiguous = tmp_path / "ambiguous.py"
    ambiguous.write_text(f"_base_ = [{str(demo)!r}]\n"
                         "param_scheduler = [dict(type='MultiStepLR', end=5, milestones=[2]), "
                         "dict(type='MultiStepLR', end=5, milestones=[4])]\n")
    with pytest.raises(ReproduceError, match="2 schedulers of type 'MultiStepLR'"):
        epoch_options(str(ambiguous), 2)


def test_the_demo_builds_its_commands_with_the_plans_builders():
    """One place spells the fine-tuning, evaluation and DAVIS commands: the demo's steps are the
    builders' output, and its options set what they mean to in the config the tools load."""
    from benchmarks.demo import run as demo
    from benchmarks.reproduce.plan import davis_argv, dense_test_argv, dense_train_argv, epoch_options
    d = demo.Demo(ROOT / "w", demo.DEFAULT, "py", threads=1)
    coco = {s.label: s.argv for s in d.mask_rcnn_steps() if s.lane == "flsl"}
    cmds = {"train": coco["flsl: Mask R-CNN fine-tuning, seed 2"], "test": coco["flsl: COCO evaluation, seed 2"],
            "davis": next(s.argv for s in d.davis_steps() if s.lane == "flsl")}
    epochs = demo.DEFAULT.mask_rcnn_epochs
    options = (*epoch_options(demo.MASK_RCNN_CONFIG, epochs), "randomness.seed=2")
    assert cmds["train"] == dense_train_argv(demo.MASK_RCNN_CONFIG, 1, "w/runs/flsl/coco/seed2",
                                             "w/backbones/flsl.safetensors", "w/data/coco/", amp=False, options=options)
    assert cmds["test"] == dense_test_argv(demo.MASK_RCNN_CONFIG, f"w/runs/flsl/coco/seed2/epoch_{epochs}.pth", 1,
                                           "w/runs/flsl/coco/seed2/test", "w/data/coco/")
    assert cmds["davis"] == davis_argv("py", demo.DAVIS_CONFIG, "w/backbones/flsl.safetensors", "w/data/davis",
                                       "w/runs/flsl/davis",
                                       options=("--short-side", str(demo.DEFAULT.davis_short_side)))
    i = cmds["train"].index("--cfg-options")
    cfg = _apply_options(ROOT / demo.MASK_RCNN_CONFIG, cmds["train"][i + 1:])
    assert cfg.train_cfg.max_epochs == epochs and cfg.randomness.seed == 2 and cfg.data_root == "w/data/coco/"
    assert cfg.model.backbone.init_cfg.checkpoint == "w/backbones/flsl.safetensors"
    assert next(s for s in cfg.param_scheduler if s.type == "MultiStepLR").milestones == [epochs - 1]


def test_released_dino_rows_name_their_family(tmp_path):
    """A bare DINO state dict reads as a headless timm file too: the DINO rows say which family
    their release is (dense: model.backbone.family, DAVIS: --family); rows of our pretraining and
    a file the user gives for a row are left to their content."""
    proc = reproduce("coco", "--dry-run", "--work-root", tmp_path)
    assert proc.returncode == 0, proc.stderr
    train = {c[c.index("--work-dir") + 1].rsplit("/", 1)[-1]: _cfg_options(c)
             for c in _commands(proc.stdout) if c[0] == "tools/dist_train.sh"}
    assert train["dino_vits16"]["model.backbone.family"] == "dino"
    assert train["dino_vits8"]["model.backbone.family"] == "dino"
    assert "model.backbone.family" not in train["flsl_vits16"]
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path)
    davis = {c[c.index("--out") + 1].split("/")[-2]: c for c in _commands(proc.stdout) if "tools/davis_propagate.py" in c}
    assert davis["dino_vits16"][davis["dino_vits16"].index("--family") + 1] == "dino"
    assert "--family" not in davis["flsl_vits16"]
    own = _tiny_export(tmp_path, patch=16)
    proc = reproduce("davis", "--dry-run", "--work-root", tmp_path, "--cfg-options", f"checkpoint.dino_vits16={own}")
    davis = {c[c.index("--out") + 1].split("/")[-2]: c for c in _commands(proc.stdout) if "tools/davis_propagate.py" in c}
    assert "--family" not in davis["dino_vits16"]
