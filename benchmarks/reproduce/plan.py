"""The exact commands that produce a table, in order, and which of them are already done.

Work-root layout (``--work-root``, default ``work_dirs/reproduce``)::

    WORK/pretrain/<pretraining name>/        tools/pretrain.sh work dir; backbone.safetensors at the end
    WORK/<table>/<row>/                      tools/dist_train.sh work dir (MMEngine checkpoints, logs)
    WORK/<table>/<row>/test/test_metrics.json   tools/dist_test.sh of the final checkpoint
    WORK/<table>/<row>/davis/                DAVIS predictions + davis_results.json (DAVIS rows)

Each command is a :class:`core.steps.Step`: done when its output exists and its provenance record
still matches; a step that was interrupted is simply run again and resumes by itself (pretraining
from ``latest.pth``, MMEngine training with ``--resume``, DAVIS by recomputing). All commands run
from the repository root.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from core.steps import REPO, Step, repo_relative, resolve

from .errors import ReproduceError
from .registry import DENSE, Recipe, Table


#: documented data locations under the data root (docs/reproduce.md); the configs' defaults
DATA_LAYOUT = {
    "imagenet": "imagenet/train",
    "coco": "coco/",
    "uavdt": "uavdt/",
    "ade20k": "ade/ADEChallengeData2016/",
    "davis": "davis/",
}
DEFAULT_DATA_ROOT = "data"

#: what the steps of each benchmark read of its data besides the images (relative to its data
#: root), by step: their digests go into the step's provenance record, so an edited annotation or
#: split list, or a UAVDT conversion redone with another ``--every``, marks the result stale.
#: Folders count with the names and contents of their files. Image folders are left out: hashing
#: ImageNet or the COCO images on every plan would cost minutes; the pretraining's own checkpoint
#: records its file list and refuses a resume on other images.
DATA_READ = {
    "coco": {"train": ("annotations/instances_train2017.json", "annotations/instances_val2017.json"),
             "test": ("annotations/instances_val2017.json",)},
    "uavdt": {"train": ("annotations/uavdt_train.json", "annotations/uavdt_test.json"),
              "test": ("annotations/uavdt_test.json",)},
    "ade20k": {"train": ("annotations/training", "annotations/validation"),
               "test": ("annotations/validation",)},
    "davis": {"davis": ("ImageSets/2017/val.txt", "Annotations/480p")},
}


def data_inputs(benchmark: str, root: str | os.PathLike, step: str) -> tuple[str, ...]:
    """The data files and folders ``step`` of ``benchmark`` reads (see :data:`DATA_READ`), under
    ``root``."""
    return tuple(str(Path(root) / rel) for rel in DATA_READ[benchmark][step])


@dataclasses.dataclass
class Options:
    """Everything a plan depends on besides the table."""

    work_root: Path = Path("work_dirs/reproduce")
    gpus: int = 8
    data_roots: dict = dataclasses.field(default_factory=dict)   # key of DATA_LAYOUT -> path
    checkpoints: dict = dataclasses.field(default_factory=dict)  # row id or "*" -> backbone file
    slurm_partition: str | None = None
    python: str = ".venv/bin/python"
    rows: tuple = ()           # restrict to these row ids (all when empty)


def data_roots(parent: str | os.PathLike | None = None, moved: dict | None = None,
               cwd: Path | None = None) -> dict:
    """Folder of every data set: ``parent`` (``--data-root``, default ``data``) laid out as in
    :data:`DATA_LAYOUT`, except the data sets ``moved`` names (``--cfg-options data.KEY=PATH``)."""
    parent, explicit = parent or DEFAULT_DATA_ROOT, dict(moved or {})
    unknown = sorted(set(explicit) - set(DATA_LAYOUT))
    if unknown:
        raise ReproduceError(f"data.{unknown[0]}: unknown data set (known: {', '.join(DATA_LAYOUT)})")
    out = {}
    for key, rel in DATA_LAYOUT.items():
        path = explicit.get(key) or str(Path(parent) / rel)
        shown = str(repo_relative(path, cwd))
        out[key] = shown + "/" if rel.endswith("/") and not shown.endswith("/") else shown
    return out


def checkpoint_overrides(every: str | os.PathLike | None = None, rows: dict | None = None,
                         cwd: Path | None = None) -> dict:
    """Backbone files replacing pretraining: ``every`` (``--checkpoint``: each row our FLSL
    pretraining makes) and ``rows`` (``--cfg-options checkpoint.ROW=PATH``: that row, whatever
    its recipe). Keys: row ids, ``"*"`` for ``every``."""
    out = {"*": str(repo_relative(every, cwd))} if every else {}
    out.update({row: str(repo_relative(path, cwd)) for row, path in (rows or {}).items()})
    return out


def final_checkpoint_name(config: str) -> str:
    """``epoch_<max_epochs>.pth`` or ``iter_<max_iters>.pth``: the last checkpoint MMEngine writes
    for ``config`` (read with MMEngine, without importing the config's custom modules)."""
    from mmengine.config import Config
    path = resolve(config)
    if not path.is_file():
        raise ReproduceError(f"config not found: {config}")
    cfg = Config.fromfile(str(path), import_custom_modules=False)
    loop = cfg.get("train_cfg") or {}
    if "max_epochs" in loop:
        return f"epoch_{int(loop['max_epochs'])}.pth"
    if "max_iters" in loop:
        return f"iter_{int(loop['max_iters'])}.pth"
    raise ReproduceError(f"{config}: train_cfg has neither max_epochs nor max_iters")


def _patch_of_arch(arch: str) -> int:
    m = re.search(r"patch(\d+)", arch)
    return int(m.group(1)) if m else 16


def check_patch_size(path: str, rows: dict, source: str) -> None:
    """Refuse a backbone file whose patch size differs from the rows' architecture (when the file
    exists; a dry run may name files that are still to be made)."""
    full = resolve(path)
    if not full.is_file():
        return
    from pretrain.checkpoint import CheckpointError, load_encoder_weights
    try:
        patch = load_encoder_weights(full).patch_size
    except CheckpointError as err:
        raise ReproduceError(str(err)) from None
    bad = [r for r, recipe in rows.items() if _patch_of_arch(recipe.arch) != patch]
    if bad:
        raise ReproduceError(f"{source} {path}: patch size {patch}, but row {bad[0]!r} needs "
                             f"{rows[bad[0]].arch}; use --rows or --checkpoint ROW=PATH")


def backbone_of(row: str, recipe: Recipe, opts: Options) -> tuple[str, Step | None]:
    """The backbone file a row uses and the pretraining step that makes it (None if given)."""
    given = opts.checkpoints.get(row) or (opts.checkpoints.get("*") if recipe.pretraining else None)
    if given:
        return given, None
    if recipe.release:
        return recipe.release, None
    p = recipe.pretraining
    wd = Path(opts.work_root) / "pretrain" / p.name
    out = wd / "backbone.safetensors"
    cfg_options = [f"data.root={opts.data_roots[p.data]}", *p.options]
    if opts.slurm_partition:
        argv = ["tools/slurm_pretrain.sh", opts.slurm_partition, p.config, "--work-dir", str(wd),
                "--cfg-options", *cfg_options]
        env = {"GPUS": str(opts.gpus)}
    else:
        argv = ["tools/pretrain.sh", p.config, str(opts.gpus), "--work-dir", str(wd),
                "--cfg-options", *cfg_options]
        env = {}
    return str(out), Step("pretrain", f"pretrain/{p.name}: FLSL pretraining ({p.config})", argv, out, env,
                          config=p.config, work_dir=wd)


def row_dir(opts: Options, table: str, row: str) -> Path:
    return Path(opts.work_root) / table / row


# ----------------------------------------------------------------------------- command lines
# The one place that spells the downstream tools' command lines: tools/reproduce.py (through
# row_steps) and the demo (benchmarks/demo/run.py) both call these.
def dense_train_argv(config: str, gpus: int, work_dir, backbone, data_root, amp: bool = True,
               options: tuple = ()) -> list[str]:
    """``tools/dist_train.sh CONFIG GPUS --work-dir WD [--amp] --resume --cfg-options
    model.backbone.init_cfg.checkpoint=BACKBONE data_root=ROOT [*options]``."""
    return ["tools/dist_train.sh", str(config), str(gpus), "--work-dir", str(work_dir),
            *(["--amp"] if amp else []), "--resume", "--cfg-options",
            f"model.backbone.init_cfg.checkpoint={backbone}", f"data_root={data_root}", *options]


def dense_test_argv(config: str, checkpoint, gpus: int, work_dir, data_root, options: tuple = ()) -> list[str]:
    """``tools/dist_test.sh CONFIG CHECKPOINT GPUS --work-dir WD --cfg-options data_root=ROOT``;
    the metrics land in ``WD/test_metrics.json``."""
    return ["tools/dist_test.sh", str(config), str(checkpoint), str(gpus), "--work-dir", str(work_dir),
            "--cfg-options", f"data_root={data_root}", *options]


def davis_argv(python: str, config: str, backbone, data_root, out, options: tuple = ()) -> list[str]:
    """``PYTHON tools/davis_propagate.py --config CONFIG --checkpoint BACKBONE --data-root ROOT
    --out OUT --evaluate [*options]``; the metrics land in ``OUT/davis_results.json``."""
    return [str(python), "tools/davis_propagate.py", "--config", str(config), "--checkpoint", str(backbone),
            "--data-root", str(data_root), "--out", str(out), "--evaluate", *options]


def uavdt_convert_argv(python: str, data_root, every: int) -> list[str]:
    """``PYTHON tools/uavdt2coco.py --data-root ROOT --out ROOT/annotations --every K``: the COCO
    files the UAVDT configs read (``annotations/uavdt_{train,test}.json`` under their data root)."""
    return [str(python), "tools/uavdt2coco.py", "--data-root", str(data_root),
            "--out", str(Path(data_root) / "annotations"), "--every", str(int(every))]


def epoch_options(config: str, epochs: int) -> list[str]:
    """``--cfg-options`` entries that set ``config``'s epoch-based training to ``epochs`` epochs:
    the loop (``train_cfg.max_epochs``), the checkpoint interval (the last epoch is saved) and
    every by-epoch learning-rate scheduler, found by its ``type`` (never by a fixed list
    position): its ``end`` becomes ``epochs`` and its milestones keep their distance from its
    old end (at least 1). Two by-epoch schedulers of one type are refused as ambiguous."""
    from mmengine.config import Config
    path = resolve(config)
    if not path.is_file():
        raise ReproduceError(f"config not found: {config}")
    cfg = Config.fromfile(str(path), import_custom_modules=False)
    loop = cfg.get("train_cfg") or {}
    if "max_epochs" not in loop:
        raise ReproduceError(f"{config}: train_cfg has no max_epochs (not an epoch-based schedule)")
    old_end = int(loop["max_epochs"])
    out = [f"train_cfg.max_epochs={epochs}", f"default_hooks.checkpoint.interval={epochs}"]
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    types = [s.get("type") for s in schedulers]
    for sched in schedulers:
        if not sched.get("by_epoch", True):
            continue
        kind = sched["type"]
        if types.count(kind) > 1:
            raise ReproduceError(f"{config}: param_scheduler has {types.count(kind)} schedulers of type "
                                 f"{kind!r}; cannot tell which one to change")
        i = types.index(kind)
        out.append(f"param_scheduler.{i}.end={epochs}")
        if "milestones" in sched:
            end = int(sched.get("end", old_end))
            kept = [max(1, int(m) - end + epochs) for m in sched["milestones"]]
            out.append(f"param_scheduler.{i}.milestones=[{','.join(str(m) for m in kept)}]")
    return out


def row_steps(table: Table, row: str, opts: Options) -> tuple[list[Step], str]:
    """Steps of one row (pretraining first when needed; UAVDT: the annotation conversion) and
    its backbone file."""
    recipe = table.recipes[row]
    ckpt, pre = backbone_of(row, recipe, opts)
    steps = [pre] if pre else []
    family = recipe.family if ckpt == recipe.release else None   # a file of the user's: its own content
    dense_family = (f"model.backbone.family={family}",) if family else ()
    wd = row_dir(opts, table.name, row)
    where = f"{table.name}/{row}"
    if recipe.benchmark in DENSE:
        root = opts.data_roots[recipe.benchmark]
        if recipe.benchmark == "uavdt":
            every = recipe.convert_every
            steps.append(Step("convert", f"uavdt: COCO annotations of the release (--every {every} on the "
                                         "train split; the test split is always complete)",
                              uavdt_convert_argv(opts.python, root, every),
                              Path(root) / "annotations" / "uavdt_train.json",
                              inputs=(str(Path(root) / "UAV-benchmark-MOTD_v1.0" / "GT"),)))
        final = wd / final_checkpoint_name(recipe.config)
        steps.append(Step("train", f"{where}: fine-tuning ({recipe.config})",
                          dense_train_argv(recipe.config, opts.gpus, wd, ckpt, root, options=dense_family), final,
                          inputs=(ckpt, *data_inputs(recipe.benchmark, root, "train")),
                          config=recipe.config, work_dir=wd))
        steps.append(Step("test", f"{where}: evaluation of {final.name}",
                          dense_test_argv(recipe.config, final, opts.gpus, wd / "test", root),
                          wd / "test" / "test_metrics.json",
                          inputs=(str(final), *data_inputs(recipe.benchmark, root, "test")), config=recipe.config))
    else:  # DAVIS label propagation: no training
        out = wd / "davis"
        steps.append(Step("davis", f"{where}: DAVIS 2017 label propagation + J&F",
                          davis_argv(opts.python, recipe.config, ckpt, opts.data_roots["davis"], out,
                                     options=("--family", family) if family else ()),
                          out / "davis_results.json",
                          inputs=(ckpt, *data_inputs("davis", opts.data_roots["davis"], "davis")),
                          config=recipe.config))
    return steps, ckpt


def plan(table: Table, opts: Options) -> list[Step]:
    """Every step of ``table`` in order; a pretraining shared by several rows appears once."""
    rows = list(table.recipes)
    if opts.rows:
        unknown = [r for r in opts.rows if r not in table.recipes]
        if unknown:
            raise ReproduceError(f"table {table.name!r} has no row {unknown[0]!r} (rows: {', '.join(rows)})")
        rows = [r for r in rows if r in opts.rows]
    unknown = [k for k in opts.checkpoints if k != "*" and k not in table.recipes]
    if unknown:
        raise ReproduceError(f"--checkpoint {unknown[0]}=...: table {table.name!r} has no such row "
                             f"(rows: {', '.join(table.recipes)})")
    for key, path in opts.checkpoints.items():
        targets = {r: table.recipes[r] for r in rows
                   if (r == key) or (key == "*" and table.recipes[r].pretraining and r not in opts.checkpoints)}
        check_patch_size(path, targets, "--checkpoint")
    steps, seen = [], set()
    for row in rows:
        for step in row_steps(table, row, opts)[0]:
            key = (step.kind, str(step.output))
            if key not in seen:
                seen.add(key)
                steps.append(step)
    return steps


__all__ = ["REPO", "DATA_LAYOUT", "DEFAULT_DATA_ROOT", "Options", "data_roots",
           "checkpoint_overrides", "final_checkpoint_name", "backbone_of", "row_dir", "dense_train_argv",
           "dense_test_argv", "davis_argv", "uavdt_convert_argv", "epoch_options", "row_steps", "plan"]
