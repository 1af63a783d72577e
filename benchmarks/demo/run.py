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
              (every per-seed / per-unit number behind it), printed at the end; figures/results.png;
              every run is in the results store (``--store``, recorded by each tool as it finishes)
              and WORK/leaderboard/index.html is the leaderboard site built from it

Every number is reported with its spread (:mod:`benchmarks.demo.claims`): the mean and
standard deviation over seeds where a protocol trains, and for each difference its 95% interval;
the summary calls a difference a gain or a loss only outside that interval. The commands come
from :mod:`benchmarks.reproduce.plan` (the same builders as tools/reproduce.py). Every tool runs
single-threaded with fixed seeds, so the same command on the same machine prints the same table.

Every stage is a list of :class:`core.steps.Step` run by :func:`core.steps.run_steps`, the runner of
the paper's tables: a finished step is skipped when the demo is run again, and redone when its
command, config or an input file (a backbone, an annotation file, a split list) changed since it
ran (``--fresh`` starts over). ``--quick`` is
a test-sized budget (a few minutes on 2 CPU cores); the default budget measured 7 minutes on a
quiet 2-core machine and 17 while other jobs shared its cores (docs/reproduce.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.reproduce.plan import davis_argv, dense_test_argv, dense_train_argv, epoch_options
from core.errors import FLSLError, cli_main
from core.files import write_json_atomic, write_text_atomic
from core.steps import Step, repo_relative, run_steps

from . import claims

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
#: comparisons of the frozen-feature probes (benchmarks/probes/demo.py) are keyed PROBES_KEY + "protocol/dataset"
PROBES_KEY = "probes:"


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


def _log(line: str) -> None:
    print(line, flush=True)


# ----------------------------------------------------------------------------- steps
def coco_run_dir(work: Path, arm: str, seed: int) -> Path:
    return work / "runs" / arm / "coco" / f"seed{seed}"


class Demo:
    """The demo's work as :class:`core.steps.Step` lists, one list per stage; a step is redone
    when its command, config or one of its input files (backbones, annotations, split lists)
    changed since its result was made (its provenance record)."""

    def __init__(self, work: Path, budget: Budget, python: str, threads: int):
        self.work, self.budget, self.python = work, budget, python
        self.env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        data = work / "data"
        self.roots = {"pretrain": data / "pretrain", "coco": data / "coco", "davis": data / "davis",
                      "probes": data / "probes"}
        self.backbones = {"flsl": work / "backbones" / "flsl.safetensors",
                          "random": work / "backbones" / "random.safetensors"}

    def _step(self, kind: str, label: str, argv: list, output: Path, **kw) -> Step:
        return Step(kind, label, [str(a) for a in argv], repo_relative(output), env=self.env, **kw)

    def _inputs(self, *paths: Path) -> tuple:
        return tuple(str(repo_relative(p)) for p in paths)

    # ---------------------------------------------------------------- 1. data
    def make_data(self) -> None:
        """Generate the COCO-format set and the DAVIS videos (the pretraining images are written
        by the pretraining tool from the config's ``data.generate``)."""
        from synthetic.coco import write_coco
        from synthetic.davis import write_davis
        write_coco(self.roots["coco"], **self.budget.coco)
        from benchmarks.probes.demo import make_data as make_probe_data   # VOC/SBD, ADE20K, NYU, SPair stand-ins
        make_probe_data(self.roots["probes"], self.budget.name)
        davis_root = self.roots["davis"]
        stamp = davis_root / ".complete"
        want = json.dumps(self.budget.davis, sort_keys=True, default=list)
        if not (stamp.is_file() and stamp.read_text() == want):
            if davis_root.exists():
                shutil.rmtree(davis_root)
            write_davis(davis_root, **self.budget.davis)
            stamp.write_text(want)

    def _coco_annotations(self) -> tuple:
        return self._inputs(*(self.roots["coco"] / "annotations" / f"instances_{s}.json" for s in ("train", "val")))

    # ---------------------------------------------------------------- 2.-3. pretraining, export
    def pretrain_steps(self) -> list[Step]:
        out = self.work / "pretrain"
        argv = ["bash", "tools/pretrain.sh", PRETRAIN_CONFIG, "--work-dir", repo_relative(out),
                "--cfg-options", f"data.root={repo_relative(self.roots['pretrain'])}", *self.budget.pretrain_options]
        return [self._step("pretrain", f"FLSL pretraining ({PRETRAIN_CONFIG})", argv, out / "backbone.safetensors",
                           config=PRETRAIN_CONFIG, work_dir=repo_relative(out))]

    def export_steps(self) -> list[Step]:
        """The pretrained teacher, and the same encoder at its initialisation."""
        pretrained = self.work / "pretrain" / "backbone.safetensors"
        flsl, random = self.backbones["flsl"], self.backbones["random"]
        export = self._step("export", "export of the pretrained teacher",
                            [self.python, "tools/export_backbone.py", repo_relative(self.work / "pretrain"),
                             "--out", repo_relative(flsl)], flsl, inputs=self._inputs(pretrained))
        init = self._step("export", "the encoder at its initialisation (the pretraining's starting point)",
                          ["<in-process>", "benchmarks.demo.run.export_initialisation", repo_relative(flsl),
                           repo_relative(random)], random, inputs=self._inputs(flsl), config=PRETRAIN_CONFIG,
                          action=lambda: export_initialisation(flsl, random))
        return [export, init]

    # ---------------------------------------------------------------- 4.-6. protocols, per arm
    def probe_steps(self) -> list[Step]:
        b = self.budget
        out = []
        for arm in ARMS:
            result = self.work / "runs" / arm / "probe"
            argv = [self.python, "-m", "benchmarks.probes.demo_linear", "--checkpoint", repo_relative(self.backbones[arm]),
                    "--data-root", repo_relative(self.roots["coco"]), "--out", repo_relative(result),
                    "--seeds", *map(str, b.probe_seeds), "--epochs", str(b.probe_epochs)]
            out.append(self._step("probe", f"{arm}: frozen-encoder probes", argv, result / "probe_results.json",
                                  inputs=(*self._inputs(self.backbones[arm]), *self._coco_annotations()), lane=arm))
            # the frozen-feature probes at the demo's budget (benchmarks/probes/demo.py, docs/probes.md)
            from benchmarks.probes.demo import commands, data_roots
            roots = {k: repo_relative(v) for k, v in data_roots(self.roots["probes"]).items()}
            for label, cmd, output in commands(self.python, repo_relative(self.backbones[arm]), roots,
                                               repo_relative(self.work / "runs" / arm / "probes"), self.budget.name):
                out.append(self._step("probe", f"{arm}: {label}", cmd, output,
                                      inputs=(*self._inputs(self.backbones[arm]), *map(str, roots.values())), lane=arm))
        return out

    def mask_rcnn_steps(self) -> list[Step]:
        """Fine-tune + evaluate once per seed (``runs/<arm>/coco/seed<s>/test/test_metrics.json``)."""
        b = self.budget
        coco_root = f"{repo_relative(self.roots['coco'])}/"
        out = []
        for arm in ARMS:
            for seed in b.mask_rcnn_seeds:
                run_dir = coco_run_dir(self.work, arm, seed)
                ckpt = run_dir / f"epoch_{b.mask_rcnn_epochs}.pth"
                train = dense_train_argv(MASK_RCNN_CONFIG, 1, repo_relative(run_dir), repo_relative(self.backbones[arm]),
                                         coco_root, amp=False,
                                         options=(*epoch_options(MASK_RCNN_CONFIG, b.mask_rcnn_epochs),
                                                  f"randomness.seed={seed}"))
                test = dense_test_argv(MASK_RCNN_CONFIG, repo_relative(ckpt), 1, repo_relative(run_dir / "test"),
                                       coco_root)
                out += [self._step("train", f"{arm}: Mask R-CNN fine-tuning, seed {seed}", train, ckpt,
                                   inputs=(*self._inputs(self.backbones[arm]), *self._coco_annotations()),
                                   config=MASK_RCNN_CONFIG, work_dir=repo_relative(run_dir), lane=arm),
                        self._step("test", f"{arm}: COCO evaluation, seed {seed}", test,
                                   run_dir / "test" / "test_metrics.json",
                                   inputs=(*self._inputs(ckpt), *self._coco_annotations()),
                                   config=MASK_RCNN_CONFIG, lane=arm)]
        return out

    def davis_steps(self) -> list[Step]:
        """Label propagation + J&F (``runs/<arm>/davis/davis_results.json``)."""
        split = self.roots["davis"] / "ImageSets" / "2017" / "val.txt"
        out = []
        for arm in ARMS:
            result = self.work / "runs" / arm / "davis"
            argv = davis_argv(self.python, DAVIS_CONFIG, repo_relative(self.backbones[arm]),
                              repo_relative(self.roots["davis"]), repo_relative(result),
                              options=("--short-side", str(self.budget.davis_short_side)))
            out.append(self._step("davis", f"{arm}: DAVIS label propagation + J&F", argv,
                                  result / "davis_results.json", inputs=self._inputs(self.backbones[arm], split),
                                  config=DAVIS_CONFIG, lane=arm))
        return out

    # ---------------------------------------------------------------- 7. figures
    def figure_images(self) -> list[Path]:
        return sorted((self.roots["coco"] / "val").glob("*.jpg"))[:self.budget.figure_images]

    def figure_steps(self) -> list[Step]:
        """One figure per image with both encoders (tools/visualize.py) and the pretraining curves."""
        out = self.work / "figures"
        images = self.figure_images()
        argv = [self.python, "tools/visualize.py", "--checkpoint", repo_relative(self.backbones["flsl"]),
                *map(repo_relative, images), "--out", repo_relative(out),
                "--compare", repo_relative(self.backbones["random"]), "--labels", ARM_LABELS["flsl"],
                ARM_LABELS["random"], "--short-side", str(self.budget.coco["height"]), "--k", "6"]
        log = self.work / "pretrain" / "log.jsonl"
        return [self._step("figures", "cluster and attention maps of both encoders", argv,
                           out / f"{images[-1].stem}_summary.png",
                           inputs=self._inputs(self.backbones["flsl"], self.backbones["random"], *images)),
                self._step("figures", "pretraining curves", ["<in-process>", "benchmarks.demo.run.curves",
                                                             repo_relative(log)],
                           out / "pretraining.png", inputs=self._inputs(log),
                           action=lambda: pretraining_curves(log, out / "pretraining.png"))]

    def figure_paths(self) -> list[Path]:
        out = self.work / "figures"
        return [p for p in [out / "pretraining.png", *(out / f"{i.stem}_summary.png" for i in self.figure_images())]
                if p.is_file()]


def export_initialisation(flsl: Path, random: Path) -> None:
    """Export the encoder the pretraining started from (same spec as ``flsl``)."""
    import torch
    from mmengine.config import Config

    from pretrain.checkpoint import export_encoder, safetensors_metadata
    from pretrain.encoder import EncoderSpec, build_encoder
    spec = EncoderSpec.from_json(safetensors_metadata(flsl)["flsl_spec"])
    cfg = Config.fromfile(str(ROOT / PRETRAIN_CONFIG))
    # the trainer seeds, then builds the student backbone first: this is its starting point
    torch.manual_seed(int(cfg.train.get("seed", 0)))
    export_encoder(build_encoder(spec), random)
    print(f"exported the encoder at its initialisation (seed {cfg.train.get('seed', 0)}) to "
          f"{repo_relative(random)}")


def pretraining_curves(log: Path, out: Path) -> None:
    """The loss and its three parts over the pretraining's iterations."""
    from benchmarks.figures.maps import pretraining_figure, read_log, save_figure
    records = {r["iteration"]: r for r in read_log(log)}   # a resumed run repeats some
    save_figure(pretraining_figure([records[i] for i in sorted(records)],
                                   f"FLSL pretraining of the demo ({PRETRAIN_CONFIG}): loss and its three parts"),
                out)


# ----------------------------------------------------------------------------- results
def collect_results(work: Path, budget: Budget) -> dict:
    """Every number behind the table, read back from the tools' result files:
    ``{arm: {"mask_rcnn": {seed: {key: percent}}, "probe": {seed: mIoU}, "probes": {"protocol/dataset":
    [percent per seed]}, "grouping": {image: AUC}, "davis": {object: {"J": .., "F": ..}}}}``."""
    from benchmarks.reproduce.collect import collect
    from benchmarks.probes.demo_linear import read_results
    out = {}
    for arm in ARMS:
        runs = work / "runs" / arm
        coco = {}
        for seed in budget.mask_rcnn_seeds:
            got = collect("coco", coco_run_dir(work, arm, seed))
            if got is None:
                raise DemoError(f"{repo_relative(coco_run_dir(work, arm, seed))}: no Mask R-CNN result")
            coco[seed] = got
        pr = read_results(runs / "probe")
        if pr is None:
            raise DemoError(f"{repo_relative(runs / 'probe')}: no probe result")
        path = runs / "davis" / "davis_results.json"
        if not path.is_file():
            raise DemoError(f"{repo_relative(path)}: no DAVIS result")
        per_object = json.loads(path.read_text())["per_object"]
        from benchmarks.probes.demo import headline_values
        try:
            probes = headline_values(runs / "probes", budget.name)
        except FileNotFoundError as err:
            raise DemoError(str(err)) from None
        out[arm] = {"mask_rcnn": coco,
                    "probe": {r["seed"]: r["mIoU"] for r in pr["linear"]},
                    "probes": probes,
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
    for name in a.get("probes", {}):           # the frozen-feature probes (their own table)
        out[PROBES_KEY + name] = claims.compare_runs(a["probes"][name], b["probes"][name])
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
    probes = [k for k in comparisons if k.startswith(PROBES_KEY)]
    if probes:
        from benchmarks.probes.demo import HEADLINE
        lines += ["", "Frozen-feature probes (`tools/probe.py`, the reference protocols shrunk in size only; "
                  "docs/probes.md):", "",
                  "| probe | data | metric | " + " | ".join(ARM_LABELS[a] for a in ARMS)
                  + " | difference (95% interval) | spread over | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for k in probes:
            protocol, dataset = k[len(PROBES_KEY):].split("/")
            c = comparisons[k]
            over = c.over if c.a.n > 1 or c.b.n > 1 else "one run"
            lines.append(f"| {protocol} | {dataset} | {HEADLINE[protocol][3]} | {_arm_cell(c, 'flsl')} | "
                         f"{_arm_cell(c, 'random')} | {claims.format_difference(c)} | {over} | {_verdict_cell(c.verdict)} |")
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
           "stage_seconds": times, "wall_seconds": round(wall, 1), "figures": [str(repo_relative(p)) for p in figs]}
    write_json_atomic(doc, work / "results.json", indent=1)
    md = work / "results.md"
    write_text_atomic(results_markdown(comparisons, budget, figs, work), md)
    return md


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("store")])
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
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    demo = Demo(work, budget, sys.executable, args.threads)
    from core.results import store_path
    store = store_path(args.store).resolve()
    demo.env["FLSL_RESULTS"] = str(store)     # every tool the demo runs records its run there
    prog = Progress(8)
    prog.stage("data", "generating data (pretraining images are written by the pretraining tool)")
    demo.make_data()
    stages = (("pretrain", f"FLSL pretraining ({PRETRAIN_CONFIG})", demo.pretrain_steps),
              ("export", "exporting the pretrained teacher encoder and the initialisation", demo.export_steps),
              ("probe", "frozen-encoder probes: linear segmentation (seeds) and patch grouping, both encoders",
               demo.probe_steps),
              ("coco", f"Mask R-CNN fine-tuning + COCO evaluation ({MASK_RCNN_CONFIG}), "
                       f"{len(budget.mask_rcnn_seeds)} seeds, both encoders", demo.mask_rcnn_steps),
              ("davis", "DAVIS-style label propagation + J&F, both encoders", demo.davis_steps))
    for name, what, steps in stages:
        prog.stage(name, what)
        run_steps(steps(), log=_log, jobs=args.jobs)
    prog.stage("figures", "figures: cluster and attention maps of both encoders, pretraining curves")
    if not args.no_figures:   # without: keep embedding what an earlier run drew
        run_steps(demo.figure_steps(), log=_log)
    figs = demo.figure_paths()
    prog.stage("table", "table")
    results = collect_results(work, budget)
    comparisons = compare(results)
    prog.finish()
    md = write_results(work, results, comparisons, budget, prog.times, prog.elapsed(), figs)
    from benchmarks.davis.config import load_settings
    from benchmarks.leaderboard.records import record_demo_runs
    from benchmarks.leaderboard.site import publish
    from core.steps import REPO
    record_demo_runs(work, demo.backbones, demo.roots,
                     load_settings(REPO / DAVIS_CONFIG, short_side=budget.davis_short_side), store)
    publish(store, work / "leaderboard")
    print("\n" + md.read_text())
    print(f"wall time {prog.elapsed() / 60:.1f} min; wrote {repo_relative(md)} and "
          f"{repo_relative(work / 'results.json')}; figures under {repo_relative(work / 'figures')}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
