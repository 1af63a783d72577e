"""What a pretraining config may hold, checked before anything is built.

:data:`SCHEMA` lists every entry the trainer reads with the kind of value it needs; a value of
another kind or out of range is a :class:`core.errors.ConfigError` naming the key (``train.epochs:
must be an integer >= 1, got 0``) instead of a traceback, or worse, a run that "succeeds" without
training (``train.epochs=0`` used to export the random initialisation). ``--cfg-options`` keys
must name an entry of the config or of :data:`SCHEMA` (a misspelt key is refused).
"""
from __future__ import annotations

import dataclasses
import math
import re

from core.config import apply_options, lookup
from core.errors import ConfigError


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None):
    def check(v):
        if not _is_int(v) or (lo is not None and v < lo):
            return f"must be an integer{f' >= {lo}' if lo is not None else ''}"
    return check


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, optional: bool = False):
    def check(v):
        if optional and v is None:
            return None
        ok = _is_num(v) and (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or v <= hi)
        if not ok:
            rng = "" if lo is None else f" {'>' if lo_open else '>='} {lo}"
            rng += "" if hi is None else f"{' and' if rng else ''} <= {hi}"
            return f"must be {'None or ' if optional else ''}a number{rng}"
    return check


def choice(*options):
    def check(v):
        if v not in options:
            return f"must be one of {', '.join(repr(o) for o in options)}"
    return check


def boolean(v):
    if not isinstance(v, bool):
        return "must be true or false (True / False)"


def numbers(n: int, lo: float | None = None, hi: float | None = None):
    def check(v):
        if not isinstance(v, (list, tuple)) or len(v) != n or not all(
                _is_num(x) and (lo is None or x >= lo) and (hi is None or x <= hi) for x in v):
            rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
            return f"must be a list of {n} numbers{rng}"
    return check


def text(v):
    if not isinstance(v, str) or not v:
        return "must be a non-empty string"


def arch(v):
    import timm
    if not isinstance(v, str) or not v.startswith("vit_") or not timm.is_model(v):
        return "must be a timm ViT name such as 'vit_small_patch16_224'"


def arch_kwargs(v):
    from .encoder import vit_arguments
    if not isinstance(v, dict):
        return "must be a dict of timm VisionTransformer arguments"
    allowed = vit_arguments()
    for key, value in v.items():
        if key not in allowed:
            return f"has {key!r}, not an argument of timm's VisionTransformer"
        if key in ("depth", "img_size", "patch_size", "embed_dim", "num_heads") and not (_is_int(value) and value >= 1):
            # depth 0 used to train and export an encoder without a single block
            return f"{key} must be an integer >= 1, got {value!r}"


def views(v):
    from .views import ViewConfig
    if not isinstance(v, dict):
        return "must be a dict of view settings"
    defaults = {f.name: f.default for f in dataclasses.fields(ViewConfig) if f.name != "patch_size"}
    for key, value in v.items():
        if key not in defaults:
            return f"has unknown entry {key!r} (known: {', '.join(defaults)})"
        err = (boolean(value) if isinstance(defaults[key], bool) else
               integer(0 if key == "n_local" else 1)(value) if _is_int(defaults[key]) else
               scale_range(value) if isinstance(defaults[key], tuple) else None)
        if err:
            return f"{key} {err}, got {value!r}"


def scale_range(v):
    """A crop's area fraction ``(low, high)``: 0 < low <= high <= 1 (RandomResizedCrop draws
    uniformly in between and fails deep in a loader worker on ``(1.0, 0.5)``)."""
    if numbers(2, 0.0, 1.0)(v) or not 0 < v[0] <= v[1]:
        return "must be a list [low, high] with 0 < low <= high <= 1"


def patch_size_of(model: dict) -> int | None:
    """The patch size the config's encoder has: ``model.arch_kwargs.patch_size``, else the one in
    the timm name (``vit_small_patch16_224`` -> 16); None when neither says."""
    size = (model.get("arch_kwargs") or {}).get("patch_size")
    if size is None:
        found = re.search(r"patch(\d+)", str(model.get("arch", "")))
        size = int(found.group(1)) if found else None
    return size


def check_views_fit(tree: dict, source: str) -> None:
    """The view sizes against the encoder: each view a whole number of patches, and each token
    grid at least one sampling window wide (otherwise a loader worker fails on the first batch
    with a traceback naming neither key)."""
    from .views import ViewConfig
    patch = patch_size_of(tree["model"])
    if patch is None:
        return
    v = {**{f.name: f.default for f in dataclasses.fields(ViewConfig)}, **(tree["data"].get("views") or {})}
    where = "model.arch_kwargs.patch_size" if (tree["model"].get("arch_kwargs") or {}).get("patch_size") \
        else f"model.arch {tree['model'].get('arch')!r}"
    for kind in ("global", "local"):
        size, window = v[f"{kind}_size"], v[f"{kind}_window"]
        if kind == "local" and not v["n_local"]:
            continue
        if size % patch:
            raise ConfigError(f"data.views.{kind}_size: must be a multiple of the patch size {patch} "
                              f"({where}), got {size} ({source})")
        if size // patch < window:
            raise ConfigError(f"data.views.{kind}_window: a {size}-pixel view has {size // patch}x"
                              f"{size // patch} tokens of {patch} pixels, fewer than the sampling window "
                              f"{window} (data.views.{kind}_size / {kind}_window) ({source})")


def generate(v):
    if v is None:
        return None
    if not isinstance(v, dict) or set(v) - {"n_images", "size", "seed"} or "n_images" not in v \
            or "size" not in v:
        return "must be None or dict(n_images=..., size=..., seed=...)"
    for key, lo in (("n_images", 1), ("size", 16), ("seed", None)):
        if key in v and integer(lo)(v[key]):
            return f"{key} {integer(lo)(v[key])}, got {v[key]!r}"


#: every entry the trainer reads -> its check (returns an error text or None)
#: ``train.compile``: what torch.compile compiles (None: nothing, eager)
COMPILE_SCOPES = (None, "blocks", "model")
#: ``train.compile_mode``: torch.compile's mode ("reduce-overhead" adds CUDA graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

SCHEMA = {
    "model.arch": arch,
    "model.arch_kwargs": arch_kwargs,
    "model.drop_path_rate": number(0.0, 1.0),
    "model.out_dim": integer(1),
    "model.hidden_dim": integer(1),
    "model.bottleneck_dim": integer(1),
    "model.norm_last_layer": boolean,
    "data.root": text,
    "data.generate": generate,
    "data.batch_size_per_gpu": integer(1),
    "data.num_workers": integer(0),
    "data.on_corrupt": choice("error", "skip"),
    "data.views": views,
    "loss.student_temp": number(0.0, lo_open=True),
    "loss.warmup_teacher_temp": number(0.0, lo_open=True),
    "loss.teacher_temp": number(0.0, lo_open=True),
    "loss.warmup_teacher_temp_epochs": integer(0),
    "loss.coefficients": numbers(3),
    "loss.ms_coefficient_start": number(optional=True),
    "loss.beta_sa": number(0.0, lo_open=True),
    "loss.beta_sa_start": number(0.0, lo_open=True, optional=True),
    "loss.beta_ca": number(0.0, lo_open=True),
    "loss.beta_ca_start": number(0.0, lo_open=True, optional=True),
    "loss.volume_maximization": boolean,
    "loss.centering": boolean,
    "optim.lr": number(0.0, lo_open=True),
    "optim.min_lr": number(0.0),
    "optim.warmup_epochs": number(0.0),
    "optim.weight_decay": number(0.0),
    "optim.weight_decay_end": number(0.0),
    "optim.betas": numbers(2, 0.0, 1.0),
    "optim.clip_grad": number(0.0),
    "optim.freeze_last_layer": integer(0),
    "optim.momentum_teacher": number(0.0, 1.0),
    "train.epochs": integer(1),
    "train.amp": choice("bf16", "fp16", None),
    "train.seed": integer(),
    "train.log_interval": integer(1),
    "train.checkpoint_interval": integer(1),
    "train.saveckp_freq": integer(0),
    "train.device": choice("auto", "cpu", "cuda"),
    "train.compile": choice(*COMPILE_SCOPES),
    "train.compile_mode": choice(*COMPILE_MODES),
}

#: entries without which nothing can be built (the others have defaults in the trainer)
REQUIRED = ("model.arch", "model.out_dim", "data.root", "data.batch_size_per_gpu", "loss.student_temp",
            "loss.warmup_teacher_temp", "loss.teacher_temp", "loss.warmup_teacher_temp_epochs",
            "loss.beta_sa", "loss.beta_ca", "optim.lr", "optim.min_lr", "optim.weight_decay",
            "optim.weight_decay_end", "optim.momentum_teacher", "train.epochs")

#: option keys accepted although a config may not hold them (the trainer has a default)
OPTIONAL_PATTERNS = (*SCHEMA, "model.arch_kwargs.*", "data.views.*", "data.generate.*")


def check_config(cfg, source: str = "config") -> None:
    """Raise :class:`ConfigError` for the first entry of :data:`SCHEMA` with an unusable value
    or a missing required entry; ``source`` names the config in the message."""
    tree = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    for section in ("model", "data", "loss", "optim", "train"):
        if not isinstance(tree.get(section), dict):
            raise ConfigError(f"{source}: section {section!r} missing (a dict such as {section} = dict(...))")
    for key in REQUIRED:
        if not lookup(tree, key)[1]:
            raise ConfigError(f"{source}: {key} missing")
    for key, check in SCHEMA.items():
        value, found = lookup(tree, key)
        if found:
            err = check(value)
            if err:
                raise ConfigError(f"{key}: {err}, got {value!r} ({source})")
    check_views_fit(tree, source)


def apply_pretrain_options(cfg, options: dict | None) -> None:
    """``--cfg-options`` of ``tools/pretrain_flsl.py``: known keys only, values of the right kind."""
    apply_options(cfg, options, extra_keys=OPTIONAL_PATTERNS, strict=True)


__all__ = ["SCHEMA", "REQUIRED", "check_config", "apply_pretrain_options"]
