"""The end-to-end demo: does FLSL pretraining help downstream, on generated data, on a laptop?

    python -m benchmarks.reproduce.demo [--work-dir work_dirs/demo] [--quick] [--fresh]     (tools/demo.sh)

Stages, each through the suite's own command-line tools (their progress streams through):

1. data       generated pretraining images, a COCO-format instance set
              (:mod:`benchmarks.synthetic.coco`) and DAVIS-layout videos
              (:mod:`benchmarks.synthetic.davis`); no download
2. pretrain   tools/pretrain.sh configs/demo/flsl_demo.py (FLSL, tiny ViT)
3. export     tools/export_backbone.py -> backbones/flsl.safetensors; the same encoder at its
              initialisation (the pretraining's starting point: same seed, same code) ->
              backbones/random.safetensors
4. coco       per backbone: tools/dist_train.sh + tools/dist_test.sh with
              configs/demo/mask_rcnn_vit_tiny_synthetic.py (Mask R-CNN fine-tuning, COCO bbox /
              segm AP with pycocotools); both backbones get the same budget
5. davis      per backbone: tools/davis_propagate.py --config configs/demo/davis_vit_tiny_synthetic.py
              --evaluate (label propagation, J&F)
6. figures    tools/visualize.py: k-means cluster maps and mean-shift attention maps
7. table      WORK/results.md and WORK/results.json (the same numbers, read back from the
              tools' metric files), printed at the end

A finished stage is skipped when the demo is run again (``--fresh`` starts over). ``--quick`` is
a test-sized budget (a few minutes on 2 CPU cores); the default budget is sized to finish in
about 11 minutes there (under 15 on a busy machine) (docs/reproduce.md states the measured time).
"""
from __future__ import annotations

from core.errors import FLSLError

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARMS = ("flsl", "random")
ARM_LABELS = {"flsl": "FLSL-pretrained", "random": "random init"}
COCO_KEYS = ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75")
DAVIS_KEYS = ("JF_mean", "J_mean", "F_mean")
LABELS = {"bbox_AP": "box AP", "bbox_AP50": "box AP50", "bbox_AP75": "box AP75", "segm_AP": "mask AP",
          "segm_AP50": "mask AP50", "segm_AP75": "mask AP75", "JF_mean": "J&F", "J_mean": "J", "F_mean": "F"}


class DemoError(FLSLError):
    """A stage of the demo failed; the message names the stage and its command."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Sizes of one demo variant."""

    name: str
    pretrain_options: tuple          # --cfg-options of configs/demo/flsl_demo.py
    coco: dict                       # benchmarks.synthetic.coco.write_coco arguments
    mask_rcnn_epochs: int
    davis: dict                      # benchmarks.synthetic.davis.write_davis arguments
    davis_short_side: int            # network input short side for DAVIS frames (pixels)
    figure_images: int = 2


DEFAULT = Budget(
    name="default",
    pretrain_options=(),
    coco=dict(n_train=320, n_val=96, height=128, width=160, seed=0),
    mask_rcnn_epochs=5,
    davis=dict(n_sequences=8, frames=(10, 14), size=(128, 224), seed=1),
    davis_short_side=128,
)
QUICK = Budget(
    name="quick",
    pretrain_options=("data.generate.n_images=32", "data.batch_size_per_gpu=8", "train.epochs=1",
                      "train.log_interval=2", "data.num_workers=0"),
    coco=dict(n_train=8, n_val=4, height=96, width=128, seed=0),
    mask_rcnn_epochs=1,
    davis=dict(n_sequences=2, frames=(4, 5), size=(64, 96), seed=1),
    davis_short_side=64,
    figure_images=1,
)

PRETRAIN_CONFIG = "configs/demo/flsl_demo.py"
MASK_RCNN_CONFIG = "configs/demo/mask_rcnn_vit_tiny_synthetic.py"
DAVIS_CONFIG = "configs/demo/davis_vit_tiny_synthetic.py"


# ----------------------------------------------------------------------------- helpers
class Progress:
    """Stage headers with elapsed wall time."""

    def __init__(self, n_stages: int, log=print):
        self.n, self.i, self.t0, self.log = n_stages, 0, time.perf_counter(), log
        self.times: dict = {}
        self._stage, self._start = None, None

    def stage(self, name: str, what: str) -> None:
        self._close()
        self.i += 1
        self._stage, self._start = name, time.perf_counter()
        self.log(f"\n==> [{self.i}/{self.n}] {what}   (elapsed {self.elapsed():.0f} s)", flush=True)

    def _close(self) -> None:
        if self._stage is not None:
            self.times[self._stage] = round(time.perf_counter() - self._start, 1)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def finish(self) -> None:
        self._close()
        self._stage = None


#: environment of every tool the demo runs (set by :func:`main`: ``--threads``)
TOOL_ENV: dict = {}


_PRINT_LOCK = threading.Lock()


def run(argv: list, stage: str, log=print, prefix: str | None = None) -> None:
    """Run a suite tool from the repository root. Its output streams through, each line led by
    ``[prefix]`` when given (for tools that run side by side)."""
    argv = [str(a) for a in argv]
    lead = f"[{prefix}] " if prefix else ""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **TOOL_ENV}
    with _PRINT_LOCK:
        log(lead + "$ " + " ".join(argv), flush=True)
    if prefix is None:
        returncode = subprocess.run(argv, cwd=ROOT, env=env).returncode
    else:
        with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", bufsize=1) as proc:
            for line in proc.stdout:
                with _PRINT_LOCK:
                    log(lead + line.rstrip("\n"), flush=True)
            returncode = proc.wait()
    if returncode != 0:
        raise DemoError(f"stage {stage}: command failed with exit status {returncode}: {' '.join(argv)}")


def for_each_arm(fn, jobs: int) -> dict:
    """``{arm: fn(arm)}``; with ``jobs`` > 1 the arms run side by side (each tool on its own
    ``--threads`` torch threads), their output lines led by the arm's name. The first failure is
    raised after every arm has finished."""
    if jobs <= 1:
        return {arm: fn(arm, None) for arm in ARMS}
    with ThreadPoolExecutor(max_workers=min(jobs, len(ARMS))) as pool:
        futures = {arm: pool.submit(fn, arm, arm) for arm in ARMS}
        return {arm: f.result() for arm, f in futures.items()}


def rel(path: Path) -> str:
    """``path`` relative to the repository root when inside it (commands run from there)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(Path(path).resolve())


def final_epoch_checkpoint(work: Path, epochs: int) -> Path:
    return work / f"epoch_{epochs}.pth"


# ----------------------------------------------------------------------------- stages
def make_data(work: Path, budget: Budget) -> dict:
    """Generate the COCO-format set and the DAVIS videos (the pretraining images are written by
    tools/pretrain_flsl.py from the config's ``data.generate``). Returns the data roots."""
    from benchmarks.synthetic.coco import write_coco
    from benchmarks.synthetic.davis import write_davis
    data = work / "data"
    coco = write_coco(data / "coco", **budget.coco)
    davis_root = data / "davis"
    stamp = davis_root / ".complete"
    want = json.dumps(budget.davis, sort_keys=True, default=list)
    if not (stamp.is_file() and stamp.read_text() == want):
        if davis_root.exists():
            shutil.rmtree(davis_root)
        write_davis(davis_root, **budget.davis)
        stamp.write_text(want)
    return {"pretrain": data / "pretrain", "coco": coco, "davis": davis_root}


def pretrain(work: Path, roots: dict, budget: Budget, python: str) -> Path:
    out = work / "pretrain" / "backbone.safetensors"
    if out.is_file():
        print(f"pretraining already done: {rel(out)}")
        return out
    run(["bash", "tools/pretrain.sh", PRETRAIN_CONFIG, "--work-dir", rel(work / "pretrain"),
         "--cfg-options", f"data.root={rel(roots['pretrain'])}", *budget.pretrain_options], "pretrain")
    return out


def export(work: Path, python: str) -> dict:
    """Export the pretrained teacher and the same encoder at its initialisation."""
    import torch

    from pretrain.checkpoint import export_encoder, safetensors_metadata
    from pretrain.encoder import EncoderSpec, build_encoder
    from mmengine.config import Config

    backbones = work / "backbones"
    flsl, random = backbones / "flsl.safetensors", backbones / "random.safetensors"
    if not flsl.is_file():
        run([python, "tools/export_backbone.py", rel(work / "pretrain"), "--out", rel(flsl)], "export")
    if not random.is_file():
        spec = EncoderSpec.from_json(safetensors_metadata(flsl)["flsl_spec"])
        cfg = Config.fromfile(str(ROOT / PRETRAIN_CONFIG))
        # the trainer seeds, then builds the student backbone first: this is its starting point
        torch.manual_seed(int(cfg.train.get("seed", 0)))
        export_encoder(build_encoder(spec), random)
        print(f"exported the encoder at its initialisation (seed {cfg.train.get('seed', 0)}) to {rel(random)}")
    return {"flsl": flsl, "random": random}


def mask_rcnn(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget,
              prefix: str | None = None) -> Path:
    """Fine-tune + evaluate; returns the run folder (``test/test_metrics.json`` inside)."""
    run_dir = work / "runs" / arm / "coco"
    if (run_dir / "test" / "test_metrics.json").is_file():
        print(f"{arm}: Mask R-CNN already evaluated ({rel(run_dir / 'test' / 'test_metrics.json')})")
        return run_dir
    epochs = budget.mask_rcnn_epochs
    data_root = rel(roots["coco"]) + "/"
    ckpt = final_epoch_checkpoint(run_dir, epochs)
    if not ckpt.is_file():
        run(["bash", "tools/dist_train.sh", MASK_RCNN_CONFIG, "1", "--work-dir", rel(run_dir), "--resume",
             "--cfg-options", f"model.backbone.init_cfg.checkpoint={rel(backbone)}", f"data_root={data_root}",
             f"train_cfg.max_epochs={epochs}",
             f"default_hooks.checkpoint.interval={epochs}",
             f"param_scheduler.1.end={epochs}", f"param_scheduler.1.milestones=[{max(epochs - 1, 1)}]"],
            f"coco/{arm}", prefix=prefix)
    run(["bash", "tools/dist_test.sh", MASK_RCNN_CONFIG, rel(ckpt), "1", "--work-dir", rel(run_dir / "test"),
         "--cfg-options", f"data_root={data_root}"], f"coco/{arm}", prefix=prefix)
    return run_dir


def davis(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
          prefix: str | None = None) -> Path:
    """Label propagation + J&F; returns the run folder (``davis/davis_results.json`` inside)."""
    run_dir = work / "runs" / arm
    out = run_dir / "davis"
    if (out / "davis_results.json").is_file():
        print(f"{arm}: DAVIS already evaluated ({rel(out / 'davis_results.json')})")
        return run_dir
    run([python, "tools/davis_propagate.py", "--config", DAVIS_CONFIG, "--checkpoint", rel(backbone),
         "--data-root", rel(roots["davis"]), "--out", rel(out), "--evaluate",
         "--short-side", str(budget.davis_short_side)], f"davis/{arm}", prefix=prefix)
    return run_dir


def figures(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
            prefix: str | None = None) -> list:
    images = sorted((Path(roots["coco"]) / "val").glob("*.jpg"))[:budget.figure_images]
    out = work / "figures" / arm
    run([python, "tools/visualize.py", rel(backbone), *[rel(i) for i in images], "--out", rel(out),
         "--size", str(budget.coco["height"]), "--k", "6"], f"figures/{arm}", prefix=prefix)
    return sorted(out.glob("*_summary.png"))


# ----------------------------------------------------------------------------- table
def collect_results(work: Path) -> dict:
    """``{arm: {metric key: percent}}`` read back from the tools' metric files."""
    from benchmarks.reproduce.collect import collect
    out = {}
    for arm in ARMS:
        coco = collect("coco", work / "runs" / arm / "coco") or {}
        dav = collect("davis", work / "runs" / arm) or {}
        both = {**coco, **dav}
        out[arm] = {k: None if both.get(k) is None else round(both[k], 4) for k in COCO_KEYS + DAVIS_KEYS}
    return out


def results_markdown(results: dict, budget: Budget, wall: float | None = None) -> str:
    keys = COCO_KEYS + DAVIS_KEYS

    def f(v, signed=False):
        return "-" if v is None else (f"{v:+.1f}" if signed else f"{v:.1f}")

    lines = ["# FLSL demo: pretrained vs randomly initialised backbone", "",
             f"Budget `{budget.name}`; generated data; percent. Mask R-CNN on the generated instance set "
             f"({budget.coco['n_train']} train / {budget.coco['n_val']} val images, "
             f"{budget.mask_rcnn_epochs} epochs, same for both); DAVIS-style label propagation on "
             f"{budget.davis['n_sequences']} generated videos.", "",
             "| backbone | " + " | ".join(LABELS[k] for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for arm in ARMS:
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(f(results[arm].get(k)) for k in keys) + " |")
    diffs = [None if results["flsl"].get(k) is None or results["random"].get(k) is None
             else results["flsl"][k] - results["random"][k] for k in keys]
    lines.append("| difference | " + " | ".join(f(d, signed=True) for d in diffs) + " |")
    if wall is not None:
        lines += ["", f"Wall time {wall / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def write_results(work: Path, results: dict, budget: Budget, times: dict, wall: float, figs: list) -> Path:
    doc = {"budget": dataclasses.asdict(budget), "results": results,
           "difference": {k: (None if results["flsl"].get(k) is None or results["random"].get(k) is None
                              else round(results["flsl"][k] - results["random"][k], 4))
                          for k in COCO_KEYS + DAVIS_KEYS},
           "sources": {arm: {"coco": rel(work / "runs" / arm / "coco" / "test" / "test_metrics.json"),
                             "davis": rel(work / "runs" / arm / "davis" / "davis_results.json")} for arm in ARMS},
           "stage_seconds": times, "wall_seconds": round(wall, 1), "figures": [rel(p) for p in figs]}
    (work / "results.json").write_text(json.dumps(doc, indent=1, default=list) + "\n")
    md = work / "results.md"
    md.write_text(results_markdown(results, budget, wall))
    return md


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default=None, help="output folder (default work_dirs/demo, quick: work_dirs/demo_quick)")
    p.add_argument("--quick", action="store_true", help="test-sized budget (a few minutes)")
    p.add_argument("--fresh", action="store_true", help="delete the work dir first")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per tool (default 1: on a 2-core machine, intra-op threads "
                        "competing with the data workers and other processes make every step "
                        "several times slower)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="backbones (arms) processed side by side in the fine-tuning, DAVIS and figure "
                        "stages (default: 2 where the machine has 2 or more cores, each tool on "
                        "--threads threads)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else DEFAULT
    work = Path(args.work_dir or ("work_dirs/demo_quick" if args.quick else "work_dirs/demo"))
    if not work.is_absolute():
        work = Path.cwd() / work
    python = sys.executable
    TOOL_ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    prog = Progress(7)
    try:
        prog.stage("data", "generating data (pretraining images are written by the pretraining tool)")
        roots = make_data(work, budget)
        prog.stage("pretrain", f"FLSL pretraining ({PRETRAIN_CONFIG})")
        pretrain(work, roots, budget, python)
        prog.stage("export", "exporting the pretrained teacher encoder and the initialisation")
        backbones = export(work, python)
        prog.stage("coco", f"Mask R-CNN fine-tuning + COCO evaluation ({MASK_RCNN_CONFIG}), both backbones")
        for_each_arm(lambda arm, prefix: mask_rcnn(work, arm, backbones[arm], roots, budget, prefix), args.jobs)
        prog.stage("davis", "DAVIS-style label propagation + J&F, both backbones")
        for_each_arm(lambda arm, prefix: davis(work, arm, backbones[arm], roots, budget, python, prefix),
                     args.jobs)
        prog.stage("figures", "k-means cluster maps and mean-shift attention maps")
        figs = sorted((work / "figures").glob("*/*_summary.png")) if args.no_figures \
            else [f for arm_figs in for_each_arm(
                lambda arm, prefix: figures(work, arm, backbones[arm], roots, budget, python, prefix),
                args.jobs).values() for f in arm_figs]
        prog.stage("table", "table")
        results = collect_results(work)
        prog.finish()
        md = write_results(work, results, budget, prog.times, prog.elapsed(), figs)
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n" + md.read_text())
    print(f"wrote {rel(md)} and {rel(work / 'results.json')}; figures under {rel(work / 'figures')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
