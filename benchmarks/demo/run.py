"""The end-to-end demo: does FLSL pretraining help downstream, on generated data, on a laptop?

    python -m benchmarks.demo.run [--work-dir work_dirs/demo] [--quick] [--fresh]     (tools/demo.sh)

Two arms, the same budget: the encoder after FLSL pretraining, and the same encoder at its
initialisation (the pretraining's starting point, bit for bit). Stages, each through the suite's
own tools (their progress streams through; the arms run side by side, one process each):

1. data       generated pretraining images, a COCO-format instance set
              (:mod:`synthetic.coco`) and DAVIS-layout videos
              (:mod:`synthetic.davis`); no download
2. pretrain   tools/pretrain.sh configs/demo/flsl_demo.py (FLSL, tiny ViT)
3. export     tools/export_backbone.py -> backbones/flsl.safetensors, and the initialisation ->
              backbones/random.safetensors
4. probe      frozen-encoder probes (:mod:`benchmarks.probes.demo_linear`): a linear segmentation
              probe (several seeds) and patch grouping (no training) on the instance set
5. coco       Mask R-CNN fine-tuning + COCO evaluation (tools/dist_train.sh + tools/dist_test.sh,
              configs/demo/mask_rcnn_vit_tiny_synthetic.py), once per fine-tuning seed
6. davis      tools/davis_propagate.py --evaluate (label propagation, J&F; no training)
7. figures    tools/visualize.py (both encoders in one figure per image) and the pretraining
              curves from the pretraining's log.jsonl
8. table      WORK/results.md (the table, the summary and the figures) and WORK/results.json
              (every per-seed / per-unit number behind it), printed at the end; figures/results.png

Every number is reported with its spread (:mod:`benchmarks.demo.claims`): the mean and
standard deviation over seeds where a protocol trains, and for each difference its 95% interval;
the summary calls a difference a gain or a loss only outside that interval. The commands come
from :mod:`benchmarks.reproduce.plan` (the same builders as tools/reproduce.py). Every tool runs
single-threaded with fixed seeds, so the same command on the same machine prints the same table.

A finished step is skipped when the demo is run again (``--fresh`` starts over). ``--quick`` is
a test-sized budget (a few minutes on 2 CPU cores); the default budget measured 7 minutes on a
quiet 2-core machine and 17 while other jobs shared its cores (docs/reproduce.md).
"""
from __future__ import annotations

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

from core.errors import FLSLError, cli_main
from core.files import write_json_atomic, write_text_atomic

from . import claims
from benchmarks.reproduce.plan import davis_argv, dense_test_argv, dense_train_argv, epoch_options

ROOT = Path(__file__).resolve().parents[2]
ARMS = ("flsl", "random")
ARM_LABELS = {"flsl": "FLSL-pretrained", "random": "random init"}

PRETRAIN_CONFIG = "configs/demo/flsl_demo.py"
MASK_RCNN_CONFIG = "configs/demo/mask_rcnn_vit_tiny_synthetic.py"
DAVIS_CONFIG = "configs/demo/davis_vit_tiny_synthetic.py"


class DemoError(FLSLError):
    """A stage of the demo failed; the message names the stage and its command."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Sizes of one demo variant."""

    name: str
    pretrain_options: tuple          # --cfg-options of configs/demo/flsl_demo.py
    coco: dict                       # synthetic.coco.write_coco arguments
    mask_rcnn_epochs: int
    mask_rcnn_seeds: tuple           # one fine-tuning run per seed and arm
    probe_seeds: tuple               # linear probe seeds
    probe_epochs: int
    davis: dict                      # synthetic.davis.write_davis arguments
    davis_short_side: int            # network input short side for DAVIS frames (pixels)
    figure_images: int = 2


DEFAULT = Budget(
    name="default",
    pretrain_options=(),
    coco=dict(n_train=256, n_val=96, height=128, width=160, seed=0),
    mask_rcnn_epochs=3,
    mask_rcnn_seeds=(0, 1, 2),
    probe_seeds=(0, 1, 2, 3, 4),
    probe_epochs=20,
    davis=dict(n_sequences=24, frames=(10, 14), size=(128, 224), seed=1),
    davis_short_side=128,
)
QUICK = Budget(
    name="quick",
    pretrain_options=("data.generate.n_images=32", "data.batch_size_per_gpu=8", "train.epochs=1",
                      "train.log_interval=2", "data.num_workers=0"),
    coco=dict(n_train=8, n_val=4, height=96, width=128, seed=0),
    mask_rcnn_epochs=1,
    mask_rcnn_seeds=(0, 1),
    probe_seeds=(0, 1),
    probe_epochs=2,
    davis=dict(n_sequences=2, frames=(4, 5), size=(64, 96), seed=1),
    davis_short_side=64,
    figure_images=1,
)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One row of the table."""

    key: str          # key in results.json
    label: str        # in the table
    protocol: str     # key of PROTOCOLS
    summary: str = "" # name in the summary line (only the headline metric of each protocol)


PROTOCOLS = {
    "mask_rcnn": "Mask R-CNN, fine-tuned",
    "probe": "linear probe, frozen encoder",
    "grouping": "patch grouping, frozen encoder",
    "davis": "DAVIS label propagation",
}
METRICS = (
    Metric("bbox_AP", "box AP", "mask_rcnn", "box AP"),
    Metric("bbox_AP50", "box AP50", "mask_rcnn"),
    Metric("bbox_AP75", "box AP75", "mask_rcnn"),
    Metric("segm_AP", "mask AP", "mask_rcnn", "mask AP"),
    Metric("segm_AP50", "mask AP50", "mask_rcnn"),
    Metric("segm_AP75", "mask AP75", "mask_rcnn"),
    Metric("probe_mIoU", "mIoU", "probe", "linear-probe mIoU"),
    Metric("grouping_AUC", "same-segment AUC", "grouping", "patch-grouping AUC"),
    Metric("JF_mean", "J&F", "davis", "DAVIS J&F"),
    Metric("J_mean", "J", "davis"),
    Metric("F_mean", "F", "davis"),
)


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
    """``{arm: fn(arm, prefix)}``; with ``jobs`` > 1 the arms run side by side (each tool on its
    own ``--threads`` torch threads), their output lines led by the arm's name. The first failure
    is raised after every arm has finished."""
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


# ----------------------------------------------------------------------------- commands
def coco_run_dir(work: Path, arm: str, seed: int) -> Path:
    return work / "runs" / arm / "coco" / f"seed{seed}"


def commands(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
             seed: int) -> dict:
    """The tool command lines of one arm (fine-tuning and its evaluation for ``seed``, the probe,
    DAVIS), built by :mod:`benchmarks.reproduce.plan`'s builders."""
    run_dir = coco_run_dir(work, arm, seed)
    coco_root = rel(roots["coco"]) + "/"
    ckpt = run_dir / f"epoch_{budget.mask_rcnn_epochs}.pth"
    return {
        "train": dense_train_argv(MASK_RCNN_CONFIG, 1, rel(run_dir), rel(backbone), coco_root, amp=False,
                                  options=(*epoch_options(MASK_RCNN_CONFIG, budget.mask_rcnn_epochs),
                                           f"randomness.seed={seed}")),
        "test": dense_test_argv(MASK_RCNN_CONFIG, rel(ckpt), 1, rel(run_dir / "test"), coco_root),
        "davis": davis_argv(python, DAVIS_CONFIG, rel(backbone), rel(roots["davis"]),
                            rel(work / "runs" / arm / "davis"),
                            options=("--short-side", str(budget.davis_short_side))),
        "probe": [python, "-m", "benchmarks.probes.demo_linear", "--checkpoint", rel(backbone),
                  "--data-root", rel(roots["coco"]), "--out", rel(work / "runs" / arm / "probe"),
                  "--seeds", *map(str, budget.probe_seeds), "--epochs", str(budget.probe_epochs)],
    }


# ----------------------------------------------------------------------------- stages
def make_data(work: Path, budget: Budget) -> dict:
    """Generate the COCO-format set and the DAVIS videos (the pretraining images are written by
    the pretraining tool from the config's ``data.generate``). Returns the data roots."""
    from synthetic.coco import write_coco
    from synthetic.davis import write_davis
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


def pretrain(work: Path, roots: dict, budget: Budget) -> Path:
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
    from mmengine.config import Config

    from pretrain.checkpoint import export_encoder, safetensors_metadata
    from pretrain.encoder import EncoderSpec, build_encoder

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


def probe(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
          prefix: str | None = None) -> None:
    from benchmarks.probes.demo_linear import read_results
    done = read_results(work / "runs" / arm / "probe")
    if done is not None and [r["seed"] for r in done["linear"]] == list(budget.probe_seeds) \
            and done["settings"]["epochs"] == budget.probe_epochs:
        print(f"{arm}: probes already done ({rel(work / 'runs' / arm / 'probe')})")
        return
    run(commands(work, arm, backbone, roots, budget, python, 0)["probe"], f"probe/{arm}", prefix=prefix)


def mask_rcnn(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
              prefix: str | None = None) -> None:
    """Fine-tune + evaluate once per seed (``runs/<arm>/coco/seed<s>/test/test_metrics.json``)."""
    for seed in budget.mask_rcnn_seeds:
        run_dir = coco_run_dir(work, arm, seed)
        if (run_dir / "test" / "test_metrics.json").is_file():
            print(f"{arm}: Mask R-CNN seed {seed} already evaluated")
            continue
        cmd = commands(work, arm, backbone, roots, budget, python, seed)
        if not (run_dir / f"epoch_{budget.mask_rcnn_epochs}.pth").is_file():
            run(cmd["train"], f"coco/{arm}/seed{seed}", prefix=prefix)
        run(cmd["test"], f"coco/{arm}/seed{seed}", prefix=prefix)


def davis(work: Path, arm: str, backbone: Path, roots: dict, budget: Budget, python: str,
          prefix: str | None = None) -> None:
    """Label propagation + J&F (``runs/<arm>/davis/davis_results.json``)."""
    out = work / "runs" / arm / "davis"
    if (out / "davis_results.json").is_file():
        print(f"{arm}: DAVIS already evaluated ({rel(out / 'davis_results.json')})")
        return
    run(commands(work, arm, backbone, roots, budget, python, 0)["davis"], f"davis/{arm}", prefix=prefix)


def figures(work: Path, backbones: dict, roots: dict, budget: Budget, python: str) -> list:
    """One figure per image with both encoders (tools/visualize.py) and the pretraining curves."""
    from benchmarks.figures.maps import pretraining_figure, read_log, save_figure
    images = sorted((Path(roots["coco"]) / "val").glob("*.jpg"))[:budget.figure_images]
    out = work / "figures"
    run([python, "tools/visualize.py", "--checkpoint", rel(backbones["flsl"]), *[rel(i) for i in images], "--out", rel(out),
         "--compare", rel(backbones["random"]), "--labels", ARM_LABELS["flsl"], ARM_LABELS["random"],
         "--short-side", str(budget.coco["height"]), "--k", "6"], "figures")
    records = {r["iteration"]: r for r in read_log(work / "pretrain" / "log.jsonl")}   # a resumed run repeats some
    curves = save_figure(pretraining_figure([records[i] for i in sorted(records)],
                                            f"FLSL pretraining of the demo ({PRETRAIN_CONFIG}): loss and its "
                                            "three parts"), out / "pretraining.png")
    return [curves, *[out / f"{i.stem}_summary.png" for i in images]]


# ----------------------------------------------------------------------------- results
def collect_results(work: Path, budget: Budget) -> dict:
    """Every number behind the table, read back from the tools' result files:
    ``{arm: {"mask_rcnn": {seed: {key: percent}}, "probe": {seed: mIoU}, "grouping": {image: AUC},
    "davis": {object: {"J": .., "F": ..}}}}``."""
    from benchmarks.reproduce.collect import collect
    from benchmarks.probes.demo_linear import read_results
    out = {}
    for arm in ARMS:
        runs = work / "runs" / arm
        coco = {}
        for seed in budget.mask_rcnn_seeds:
            got = collect("coco", coco_run_dir(work, arm, seed))
            if got is None:
                raise DemoError(f"{rel(coco_run_dir(work, arm, seed))}: no Mask R-CNN result")
            coco[seed] = got
        pr = read_results(runs / "probe")
        if pr is None:
            raise DemoError(f"{rel(runs / 'probe')}: no probe result")
        path = runs / "davis" / "davis_results.json"
        if not path.is_file():
            raise DemoError(f"{rel(path)}: no DAVIS result")
        per_object = json.loads(path.read_text())["per_object"]
        out[arm] = {"mask_rcnn": coco,
                    "probe": {r["seed"]: r["mIoU"] for r in pr["linear"]},
                    "grouping": pr["grouping"],
                    "davis": {o: {"J": 100 * v["J-Mean"], "F": 100 * v["F-Mean"]} for o, v in per_object.items()}}
    return out


def compare(results: dict) -> dict:
    """``{metric key: claims.Comparison}`` for every metric of :data:`METRICS` that has numbers."""
    a, b = results["flsl"], results["random"]
    out = {}
    for m in METRICS:
        if m.protocol == "mask_rcnn":
            va = [r[m.key] for r in a["mask_rcnn"].values() if r.get(m.key) is not None]
            vb = [r[m.key] for r in b["mask_rcnn"].values() if r.get(m.key) is not None]
            if va and vb:
                out[m.key] = claims.compare_runs(va, vb)
        elif m.protocol == "probe":
            out[m.key] = claims.compare_runs(list(a["probe"].values()), list(b["probe"].values()))
        elif m.protocol == "grouping":
            both = [k for k in a["grouping"] if a["grouping"][k] is not None and b["grouping"].get(k) is not None]
            out[m.key] = claims.compare_paired([a["grouping"][k] for k in both], [b["grouping"][k] for k in both],
                                               unit="images")
        else:
            objects = sorted(set(a["davis"]) & set(b["davis"]))
            part = {"JF_mean": lambda o: (o["J"] + o["F"]) / 2, "J_mean": lambda o: o["J"],
                    "F_mean": lambda o: o["F"]}[m.key]
            out[m.key] = claims.compare_paired([part(a["davis"][o]) for o in objects],
                                               [part(b["davis"][o]) for o in objects], unit="objects")
    return out


def summary(comparisons: dict) -> str:
    """The summary line: the headline metric of each protocol, in table order."""
    return claims.summary_line({m.summary: comparisons[m.key] for m in METRICS
                                if m.summary and m.key in comparisons})


def _arm_cell(c: claims.Comparison, arm: str) -> str:
    e = c.a if arm == "flsl" else c.b
    if c.paired or e.sd is None:
        return f"{e.mean:.1f}"
    return f"{e.mean:.1f} ± {e.sd:.1f}"


def _verdict_cell(v: str) -> str:
    return f"**{v}**" if v in (claims.GAIN, claims.LOSS) else v


def results_markdown(comparisons: dict, budget: Budget, figure_paths: list, work: Path) -> str:
    """results.md: the table, the summary line, how to read them, and the figures. Nothing in it
    depends on the wall clock: the same run prints the same text."""
    b = budget
    lines = ["# FLSL demo: pretrained vs randomly initialised encoder", "",
             f"Budget `{b.name}`, generated data, percent. Both encoders get the same budget: "
             f"Mask R-CNN fine-tuned on {b.coco['n_train']} train images for {b.mask_rcnn_epochs} epoch(s) "
             f"and evaluated on {b.coco['n_val']} val images, once per fine-tuning seed "
             f"({', '.join(map(str, b.mask_rcnn_seeds))}); a linear segmentation probe on the frozen encoder "
             f"(seeds {', '.join(map(str, b.probe_seeds))}) and patch grouping (no training) on the same "
             f"images; DAVIS-style label propagation on {b.davis['n_sequences']} generated videos.", "",
             "| protocol | metric | " + " | ".join(ARM_LABELS[a] for a in ARMS)
             + " | difference (95% interval) | spread over | verdict |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        c = comparisons.get(m.key)
        if c is None:
            lines.append(f"| {PROTOCOLS[m.protocol]} | {m.label} | - | - | - | - | no result |")
            continue
        lines.append(f"| {PROTOCOLS[m.protocol]} | {m.label} | {_arm_cell(c, 'flsl')} | {_arm_cell(c, 'random')} "
                     f"| {claims.format_difference(c)} | {c.over} | {_verdict_cell(c.verdict)} |")
    lines += ["", f"**Summary.** {summary(comparisons)}", "",
              "How to read it: where a protocol trains (fine-tuning, probe), an arm's cell is the mean "
              "± the standard deviation over its seeds; patch grouping and DAVIS propagation train "
              "nothing and repeat their numbers exactly, so their cells are single numbers and their "
              "difference's interval is over the evaluation units (images, objects), paired. The "
              "difference is FLSL minus random init ± the half-width of its 95% confidence interval "
              "(Welch's t over seeds; paired t over units). A difference is called a gain or a loss only "
              "when it lies outside its interval (and is at least 0.05); otherwise: no difference shown. "
              "The 95% level holds for each row separately: among many rows without a true difference, "
              "about one in twenty would still be marked.", ""]
    if figure_paths:
        lines += ["## Figures", ""]
        for p in figure_paths:
            try:
                shown = Path(p).resolve().relative_to(work.resolve())
            except ValueError:
                shown = Path(p)
            lines += [f"![{Path(p).stem}]({shown.as_posix()})", ""]
    return "\n".join(lines)


def write_results(work: Path, results: dict, comparisons: dict, budget: Budget, times: dict, wall: float,
                  figs: list) -> Path:
    from benchmarks.figures.maps import results_figure, save_figure
    chart = save_figure(results_figure([(f"{PROTOCOLS[m.protocol].split(',')[0]}: {m.label}", comparisons[m.key])
                                        for m in METRICS if m.key in comparisons],
                                       "FLSL demo: each arm (left) and their difference (right)"),
                        work / "figures" / "results.png")
    figs = [chart, *figs]
    doc = {"budget": dataclasses.asdict(budget),
           "comparisons": {k: c.as_dict() for k, c in comparisons.items()},
           "summary": summary(comparisons),
           "results": {arm: {p: {str(k): v for k, v in d.items()} for p, d in r.items()}
                       for arm, r in results.items()},
           "stage_seconds": times, "wall_seconds": round(wall, 1), "figures": [rel(p) for p in figs]}
    write_json_atomic(doc, work / "results.json", indent=1)
    md = work / "results.md"
    write_text_atomic(results_markdown(comparisons, budget, figs, work), md)
    return md


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default=None, help="output folder (default work_dirs/demo, quick: work_dirs/demo_quick)")
    p.add_argument("--quick", action="store_true", help="test-sized budget (a few minutes)")
    p.add_argument("--fresh", action="store_true", help="delete the work dir first")
    p.add_argument("--no-figures", action="store_true",
                   help="draw no encoder figures or curves (those of an earlier run stay embedded; the "
                        "results chart is always drawn)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per tool (default 1: on a 2-core machine, intra-op threads "
                        "competing with the data workers and other processes make every step "
                        "several times slower; one thread also keeps the sums in one order)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="arms processed side by side in the probe, fine-tuning and DAVIS stages "
                        "(default: 2 where the machine has 2 or more cores, each tool on --threads threads)")
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
    prog = Progress(8)
    prog.stage("data", "generating data (pretraining images are written by the pretraining tool)")
    roots = make_data(work, budget)
    prog.stage("pretrain", f"FLSL pretraining ({PRETRAIN_CONFIG})")
    pretrain(work, roots, budget)
    prog.stage("export", "exporting the pretrained teacher encoder and the initialisation")
    backbones = export(work, python)
    prog.stage("probe", "frozen-encoder probes: linear segmentation (seeds) and patch grouping, both encoders")
    for_each_arm(lambda arm, prefix: probe(work, arm, backbones[arm], roots, budget, python, prefix), args.jobs)
    prog.stage("coco", f"Mask R-CNN fine-tuning + COCO evaluation ({MASK_RCNN_CONFIG}), "
                       f"{len(budget.mask_rcnn_seeds)} seeds, both encoders")
    for_each_arm(lambda arm, prefix: mask_rcnn(work, arm, backbones[arm], roots, budget, python, prefix), args.jobs)
    prog.stage("davis", "DAVIS-style label propagation + J&F, both encoders")
    for_each_arm(lambda arm, prefix: davis(work, arm, backbones[arm], roots, budget, python, prefix), args.jobs)
    prog.stage("figures", "figures: cluster and attention maps of both encoders, pretraining curves")
    if args.no_figures:   # keep embedding what an earlier run drew
        figs = [p for p in [work / "figures" / "pretraining.png", *sorted((work / "figures").glob("*_summary.png"))]
                if p.is_file()]
    else:
        figs = figures(work, backbones, roots, budget, python)
    prog.stage("table", "table")
    results = collect_results(work, budget)
    comparisons = compare(results)
    prog.finish()
    md = write_results(work, results, comparisons, budget, prog.times, prog.elapsed(), figs)
    print("\n" + md.read_text())
    print(f"wall time {prog.elapsed() / 60:.1f} min; wrote {rel(md)} and {rel(work / 'results.json')}; "
          f"figures under {rel(work / 'figures')}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
