"""The recipe of every row of every table: where its backbone comes from and which benchmark
config measures it.

A backbone is either made by our FLSL pretraining (a config of ``configs/pretrain/`` plus
overrides; one run serves every table that uses it) or a released checkpoint at a documented
path under ``checkpoints/`` (DINO, iBOT, SelfPatch; see docs/reproduce.md). ``--checkpoint``
on the command line replaces either by a file of the user's.

The reference numbers live in ``benchmarks/reproduce/paper_tables.json``; :func:`table` joins them to
the recipes here and refuses a row that has numbers but no recipe, or the reverse.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import ReproduceError
from .references import DEFAULT_PATH, TableRef, load_references

BENCHMARKS = ("coco", "uavdt", "ade20k", "davis")
DENSE = ("coco", "uavdt", "ade20k")


@dataclasses.dataclass(frozen=True)
class Pretraining:
    """One FLSL pretraining run: ``tools/pretrain.sh CONFIG --cfg-options *options``."""

    name: str                  # work dir name under WORK_ROOT/pretrain/
    config: str                # path relative to the repository root
    options: tuple = ()        # "key=value" overrides of the config
    data: str = "imagenet"     # data-root key of the images it trains on


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one row is measured."""

    benchmark: str             # one of BENCHMARKS
    config: str                # downstream config (MMEngine config of configs/coco, uavdt, ade20k, davis)
    pretraining: Pretraining | None = None   # our FLSL run, or
    release: str | None = None               # a released checkpoint (documented path)
    arch: str = "vit_small_patch16_224"      # the backbone the row needs (patch size checked)
    convert_every: int = 1                   # UAVDT: tools/uavdt2coco.py --every (train frames kept)
    family: str | None = None                # the release's checkpoint family where its content does
                                             # not settle it (a bare DINO state dict reads as timm's too)

    def __post_init__(self):
        if (self.pretraining is None) == (self.release is None):
            raise ValueError("a recipe has either a pretraining run or a released checkpoint")
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}")


# ----------------------------------------------------------------------------- backbones
FLSL_S16 = Pretraining("flsl_vits16_in1k", "configs/pretrain/flsl_vits16_in1k.py")
FLSL_S8 = Pretraining("flsl_vits8_in1k", "configs/pretrain/flsl_vits8_in1k.py")

#: released checkpoints of the baselines, where docs/reproduce.md says to put them
RELEASES = {
    "dino_vits16": "checkpoints/dino_deitsmall16_pretrain.pth",
    "dino_vits8": "checkpoints/dino_deitsmall8_pretrain.pth",
    "ibot_vits16": "checkpoints/ibot_vits16_checkpoint_teacher.pth",
    "selfpatch_vits16": "checkpoints/selfpatch_vits16.pth",
}

#: the ablations' pretraining schedule: shorter than the 300-epoch recipe (our choice; the
#: paper's ablation schedule is to be confirmed)
ABLATION_EPOCHS = 100
_C = 384 ** 0.5


#: the authors' lr warm-up is a fraction of the run (their --warmup_epochs 0.1): 10 of 100 epochs
ABLATION_WARMUP_EPOCHS = int(0.1 * ABLATION_EPOCHS)


def _ablation(name: str, *options: str) -> Pretraining:
    return Pretraining(f"ablation_{name}", FLSL_S16.config,
                       (f"train.epochs={ABLATION_EPOCHS}", f"optim.warmup_epochs={ABLATION_WARMUP_EPOCHS}", *options))


ABLATIONS = {
    "default": _ablation("default"),
    "no_meanshift": _ablation("no_meanshift", "loss.coefficients=(0.0,1.0,5.0)"),
    "upsilon_0.3": _ablation("upsilon_0.3", "loss.coefficients=(0.3,1.0,5.0)"),
    "no_vmr": _ablation("no_vmr", "loss.coefficients=(0.03,1.0,0.0)", "loss.volume_maximization=False"),
    "centering": _ablation("centering", "loss.volume_maximization=False", "loss.centering=True"),
    "beta_x0.5": _ablation("beta_x0.5", f"loss.beta_sa={0.05 / _C!r}", f"loss.beta_ca={0.1 / _C!r}"),
    "beta_x2": _ablation("beta_x2", f"loss.beta_sa={0.2 / _C!r}", f"loss.beta_ca={0.4 / _C!r}"),
    "k_1024": _ablation("k_1024", "model.out_dim=1024"),
    "k_8192": _ablation("k_8192", "model.out_dim=8192"),
    "window_2_2": _ablation("window_2_2", "data.views.global_window=2", "data.views.local_window=2"),
    "window_4_3": _ablation("window_4_3", "data.views.global_window=4", "data.views.local_window=3"),
    "random_sampling": _ablation("random_sampling", "data.views.random_sampling=True"),
}

S16, S8 = "vit_small_patch16_224", "vit_small_patch8_224"
COCO16, COCO8 = "configs/coco/mask_rcnn_flsl_vits16.py", "configs/coco/mask_rcnn_flsl_vits8.py"

RECIPES: dict[str, dict[str, Recipe]] = {
    "coco": {
        "flsl_vits16": Recipe("coco", COCO16, pretraining=FLSL_S16),
        "flsl_vits8": Recipe("coco", COCO8, pretraining=FLSL_S8, arch=S8),
        "selfpatch_vits16": Recipe("coco", COCO16, release=RELEASES["selfpatch_vits16"]),
        "dino_vits16": Recipe("coco", COCO16, release=RELEASES["dino_vits16"], family="dino"),
        "dino_vits8": Recipe("coco", COCO8, release=RELEASES["dino_vits8"], arch=S8, family="dino"),
        "ibot_vits16": Recipe("coco", COCO16, release=RELEASES["ibot_vits16"]),
    },
    "uavdt": {
        "flsl_vits16": Recipe("uavdt", "configs/uavdt/faster_rcnn_flsl_vits16.py", pretraining=FLSL_S16),
        "dino_vits16": Recipe("uavdt", "configs/uavdt/faster_rcnn_dino_vits16.py", release=RELEASES["dino_vits16"], family="dino"),
    },
    "davis": {
        "flsl_vits16": Recipe("davis", "configs/davis/flsl_vits16.py", pretraining=FLSL_S16),
        "flsl_vits8": Recipe("davis", "configs/davis/flsl_vits8.py", pretraining=FLSL_S8, arch=S8),
        "dino_vits16": Recipe("davis", "configs/davis/dino_vits16.py", release=RELEASES["dino_vits16"], family="dino"),
        "dino_vits8": Recipe("davis", "configs/davis/dino_vits8.py", release=RELEASES["dino_vits8"], arch=S8, family="dino"),
    },
    "ade20k": {
        "flsl_vits16": Recipe("ade20k", "configs/ade20k/semfpn_flsl_vits16_40k.py", pretraining=FLSL_S16),
        "flsl_vits16_adapter": Recipe("ade20k", "configs/ade20k/semfpn_flsl_vits16_adapter_40k.py",
                                      pretraining=FLSL_S16),
    },
    "ablations": {name: Recipe("davis", "configs/davis/flsl_vits16.py", pretraining=p)
                  for name, p in ABLATIONS.items()},
}

TABLES = tuple(RECIPES)


@dataclasses.dataclass(frozen=True)
class Table:
    """A table's reference numbers joined to its recipes (same row order as the paper file)."""

    ref: TableRef
    recipes: dict              # row id -> Recipe

    @property
    def name(self) -> str:
        return self.ref.name


def table(name: str, references: str | Path = DEFAULT_PATH) -> Table:
    """The table ``name`` (one of :data:`TABLES`), checked for a recipe on every row."""
    if name not in RECIPES:
        raise ReproduceError(f"unknown table {name!r}; choose one of: {', '.join(TABLES)}")
    tables, _ = load_references(references)
    if name not in tables:
        raise ReproduceError(f"{references}: no table {name!r}")
    ref, recipes = tables[name], RECIPES[name]
    ids = [r.id for r in ref.rows]
    no_recipe = [i for i in ids if i not in recipes]
    if no_recipe:
        raise ReproduceError(f"{references}: tables.{name} row {no_recipe[0]!r} has no recipe in "
                             "benchmarks/reproduce/registry.py")
    no_row = [i for i in recipes if i not in ids]
    if no_row:
        raise ReproduceError(f"{references}: tables.{name} lacks row {no_row[0]!r} (a recipe exists)")
    return Table(ref, {i: recipes[i] for i in ids})


__all__ = ["BENCHMARKS", "DENSE", "Pretraining", "Recipe", "RELEASES", "ABLATIONS", "ABLATION_EPOCHS",
           "RECIPES", "TABLES", "Table", "table"]
