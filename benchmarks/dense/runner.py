"""Config preparation and MMEngine runs behind ``tools/train.py`` and ``tools/test.py``.

* The framework (MMDetection or MMSegmentation) is chosen from the config's ``default_scope``.
* ``data_root``: when ``--cfg-options data_root=NEW`` (or any override) changes it, every dataset
  and evaluator path of the config that starts with the old root is moved under the new one, so
  one variable points a config at a data set.
* Checkpoints written by MMEngine are read with ``torch.load(weights_only=True)`` plus the few
  classes MMEngine stores (:mod:`benchmarks.dense.mm_checkpoint`), never with full unpickling.
* Integrity: every checkpoint a training run writes gets ``<file>.sha256`` beside it
  (:class:`CheckpointDigestHook`); resuming and testing verify it. Testing loads the checkpoint
  strictly: a file that does not cover the model (or holds other tensors) is refused, naming the
  keys, instead of scoring a partly random model.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
from pathlib import Path

import torch

from core.config import apply_options, read_config
from core.errors import ConfigError
from core.files import check_output_path, write_text_atomic
from pretrain.checkpoint import (file_sha256, load_safely, load_strict, recorded_digests, verify_digest,
                                 write_digest)

from .data_check import check_config_data
from .mm_checkpoint import allow_mmengine_checkpoints

FRAMEWORKS = ("mmdet", "mmseg")
DATA_KEYS = ("train_dataloader", "val_dataloader", "test_dataloader", "val_evaluator",
             "test_evaluator")


def runner_flags() -> argparse.ArgumentParser:
    """The flags ``tools/train.py`` and ``tools/test.py`` share: the suite's ``--work-dir`` and
    ``--cfg-options`` (:mod:`core.cli`, MMDetection's spelling too) and the launcher's."""
    from core.cli import flags
    parser = argparse.ArgumentParser(add_help=False, parents=[flags("work_dir", "cfg_options")])
    parser.add_argument("--no-data-check", action="store_true",
                        help="skip the up-front checks of the data and backbone checkpoint files")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    return parser


def parse_runner_args(parser, argv=None):
    """Parse, and hand torchrun's older ``--local-rank`` flag to MMEngine through the environment."""
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


@contextlib.contextmanager
def refused_pickles(checkpoint_of):
    """Report a checkpoint that ``torch.load(weights_only=True)`` refuses (a class outside the
    allow-list of :mod:`.mm_checkpoint`) as a :class:`ConfigError` naming the file;
    ``checkpoint_of()`` says which file was being read."""
    import pickle
    try:
        yield
    except pickle.UnpicklingError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{checkpoint_of() or 'checkpoint'}: refused by "
                          f"torch.load(weights_only=True): {first}") from None


def reroot(value, old: str, new: str):
    """Return ``value`` (nested dicts / lists / strings) with every string path equal to or
    under ``old`` moved under ``new``."""
    o, n = old.rstrip("/"), new.rstrip("/")
    if isinstance(value, str):
        return n + value[len(o):] if value == o or value.startswith(o + "/") else value
    if isinstance(value, dict):
        return type(value)({k: reroot(v, old, new) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(reroot(v, old, new) for v in value)
    return value


def load_config(path: str | os.PathLike, cfg_options: dict | None = None):
    """Read an MMEngine config, apply ``cfg_options`` and a ``data_root`` change (see module doc)."""
    from mmengine.config import ConfigDict
    path = Path(path)
    cfg = read_config(path)
    old_root = cfg.get("data_root")
    # values must be of the kind they replace (max_epochs=abc is refused); new keys are legal in
    # MMEngine configs (e.g. a backbone checkpoint), so they are only reported
    apply_options(cfg, cfg_options, strict=False)
    new_root = cfg.get("data_root")
    if old_root and new_root and str(new_root) != str(old_root):
        for key in DATA_KEYS:
            if cfg.get(key) is not None:
                value = reroot(cfg[key].to_dict() if hasattr(cfg[key], "to_dict") else cfg[key],
                               str(old_root), str(new_root))
                cfg[key] = ConfigDict(value) if isinstance(value, dict) else value
    scope = cfg.get("default_scope")
    if scope not in FRAMEWORKS:
        raise ConfigError(f"{path}: default_scope must be one of {FRAMEWORKS}, found {scope!r}")
    return cfg


def init_framework(scope: str) -> None:
    """Register every module of MMDetection or MMSegmentation and our backbone."""
    try:
        importlib.import_module(f"{scope}.utils").register_all_modules(init_default_scope=False)
    except ImportError as err:
        raise ConfigError(f"{scope} is not installed ({err}); run tools/setup_env.sh") from None
    importlib.import_module("benchmarks.dense.backbone")


def _common(cfg, config_path: str, work_dir: str | None, launcher: str) -> None:
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get("work_dir") or str(Path("work_dirs") / Path(config_path).stem)
    check_output_path(cfg.work_dir, [config_path], option="--work-dir")
    if launcher != "none" and not torch.cuda.is_available():
        # MMEngine's launcher binds every process to a CUDA device (torch.cuda.set_device)
        raise ConfigError("multi-process runs need CUDA devices; on a CPU-only machine run with GPUS=1 "
                          "(tools/dist_train.sh CONFIG 1 ...), which uses no launcher")


PRECISIONS = (None, "fp16")


def select_precision(cfg, amp: bool = False) -> str:
    """Train in fp16 (MMEngine's ``AmpOptimWrapper``, dynamic loss scale) when ``--amp`` or the
    config's ``mixed_precision = 'fp16'`` (the paper-row detection configs: the authors' detection
    runs trained in fp16) asks for it and a CUDA device is present; fp32 otherwise, so a CPU run
    of the same config keeps working. Returns ``"fp16"`` or ``"fp32"``."""
    mode = cfg.get("mixed_precision")
    if mode not in PRECISIONS:
        raise ConfigError(f"mixed_precision: {mode!r} is not one of {PRECISIONS}")
    wanted = bool(amp) or mode == "fp16"
    if wanted and torch.cuda.is_available():
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
        return "fp16"
    if amp:
        logging.getLogger(__name__).warning("--amp ignored: fp16 training needs a CUDA device")
    elif wanted:
        logging.getLogger(__name__).info("mixed_precision='fp16' applies on CUDA devices; this run "
                                         "has none and trains in fp32")
    return "fp32"


def record_backbone_structure(cfg) -> None:
    """Write how the FLSLViT encoder runs (``class_token``, ``positions``, stored grid as
    ``encoder_kwargs.img_size``), read from its ``init_cfg`` checkpoint, into ``cfg``: the config
    MMEngine saves with every checkpoint then rebuilds the same network for testing."""
    from .backbone import STRUCTURE_KEYS, resolve_structure
    backbone = cfg.model.get("backbone")
    if not backbone or backbone.get("type") != "FLSLViT":
        return
    plain = backbone.to_dict() if hasattr(backbone, "to_dict") else dict(backbone)
    resolved = resolve_structure(plain)
    for key in STRUCTURE_KEYS:
        if resolved.get(key) is not None:
            cfg.model.backbone[key] = resolved[key]


def trained_meta(checkpoint: str) -> dict | None:
    """What a checkpoint written by our runner says about its training: ``config`` (the saved
    config), ``seed`` and ``encoder`` (the backbone's pretraining file, ``init_cfg.checkpoint``);
    None when the file holds no saved config."""
    from mmengine.config import Config
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        meta = ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}
        text = meta.get("cfg")
        cfg = Config.fromstring(text, ".py") if text else None
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the strict load later
        return None
    if cfg is None:
        return None
    init = ((cfg.get("model") or {}).get("backbone") or {}).get("init_cfg") or {}
    return {"config": cfg, "seed": meta.get("seed"),
            "encoder": init.get("checkpoint") if isinstance(init, dict) else None}


def _structure_of_trained(checkpoint: str) -> dict | None:
    """FLSLViT structure recorded in a trained checkpoint's saved config (``meta.cfg``)."""
    meta = trained_meta(checkpoint)
    backbone = (meta["config"].get("model") or {}).get("backbone") if meta else None
    if not backbone or backbone.get("class_token") is None:
        return None
    from .backbone import STRUCTURE_KEYS
    return {k: backbone.get(k) for k in STRUCTURE_KEYS}


def prepare_train(cfg, config_path: str, work_dir: str | None = None, launcher: str = "none",
                  amp: bool = False, resume: str | None = None, check_data: bool = True) -> None:
    """Mutate ``cfg`` for training: work dir, launcher, precision, backbone structure, resume;
    check its data up front."""
    _common(cfg, config_path, work_dir, launcher)
    select_precision(cfg, amp)
    record_backbone_structure(cfg)
    if resume == "auto":
        cfg.resume, cfg.load_from = True, None
        from mmengine.runner.checkpoint import find_latest_checkpoint
        latest = find_latest_checkpoint(cfg.work_dir) if Path(cfg.work_dir).is_dir() else None
        if latest:
            check_resumable(latest)
    elif resume:
        if not Path(resume).is_file():
            raise ConfigError(f"checkpoint to resume from not found: {resume}")
        check_resumable(resume)
        cfg.resume, cfg.load_from = True, resume
    cfg.custom_hooks = [*(cfg.get("custom_hooks") or []), dict(type="CheckpointDigestHook")]
    if check_data:
        _check_backbone_checkpoint(cfg)
        loaders = ["train_dataloader"] + (["val_dataloader"] if cfg.get("val_cfg") else [])
        check_config_data(cfg, loaders, ["val_evaluator"] if cfg.get("val_cfg") else [])


def prepare_test(cfg, config_path: str, checkpoint: str, work_dir: str | None = None,
                 launcher: str = "none", check_data: bool = True) -> None:
    """Mutate ``cfg`` for testing ``checkpoint`` (a file written by our runner)."""
    _common(cfg, config_path, work_dir, launcher)
    if not Path(checkpoint).is_file():
        raise ConfigError(f"checkpoint not found: {checkpoint}")
    cfg.load_from = checkpoint
    cfg.resume = False
    backbone = cfg.model.get("backbone") or {}
    if backbone.get("type") == "FLSLViT" and backbone.get("class_token") is None:
        # build the network the detector was trained with: as recorded in its saved config,
        # else as the pretraining file (if present) says
        recorded = _structure_of_trained(checkpoint)
        if recorded:
            for key, value in recorded.items():
                if value is not None:
                    cfg.model.backbone[key] = value
        else:
            record_backbone_structure(cfg)
    # the trained weights replace the backbone's: do not read its pretraining file
    if cfg.model.get("backbone", {}).get("init_cfg"):
        cfg.model.backbone.init_cfg = None
    if check_data:
        check_config_data(cfg, ["test_dataloader"], ["test_evaluator"])


def check_resumable(path: str | os.PathLike) -> None:
    """Refuse a checkpoint to resume from whose digest does not match, or, without a digest, that
    does not load (truncated, not a checkpoint): MMEngine would fail deep inside with a traceback."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: checkpoint to resume from not found")
    if not verify_digest(path):
        allow_mmengine_checkpoints()
        load_safely(path)


def load_for_test(runner, checkpoint: str | os.PathLike) -> None:
    """Load ``checkpoint`` into ``runner.model`` strictly (every tensor of the model, nothing else,
    same shapes) after verifying its digest; the runner then skips its own non-strict load.

    MMEngine's ``load_from`` loads with ``strict=False``: a checkpoint sharing few or no keys with
    the model (an encoder file, another config's detector) only logs a warning and the random
    remainder is scored.
    """
    from mmengine.model import is_model_wrapper
    allow_mmengine_checkpoints()
    ckpt = load_safely(checkpoint)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{checkpoint}: not a model checkpoint (no state dict)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_strict(model, state, str(checkpoint), what="the model of the config")
    runner._has_loaded = True  # MMEngine's load_or_resume would load load_from again, non-strictly
    runner.logger.info(f"loaded {checkpoint} strictly ({len(state)} tensors)")


def _register_digest_hook():
    from mmengine.dist import is_main_process
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    if "CheckpointDigestHook" in HOOKS.module_dict:
        return

    @HOOKS.register_module()
    class CheckpointDigestHook(Hook):
        """Write ``<checkpoint>.sha256`` for each checkpoint MMEngine saves (runs after
        ``CheckpointHook``; MMEngine names the newest in ``WORK_DIR/last_checkpoint``)."""

        priority = "LOWEST"

        def __init__(self):
            self._stamp = None

        def _digest_newest(self, runner) -> None:
            if not is_main_process():
                return
            marker = Path(runner.work_dir) / "last_checkpoint"
            try:
                stamp = marker.stat().st_mtime_ns
            except FileNotFoundError:
                return
            if stamp == self._stamp:
                return
            self._stamp = stamp
            newest = Path(marker.read_text().strip())
            if newest.is_file() and recorded_digests(newest) is None:
                write_digest(newest, [file_sha256(newest)])

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            self._digest_newest(runner)

        def after_train_epoch(self, runner) -> None:
            self._digest_newest(runner)

        def after_train(self, runner) -> None:
            self._digest_newest(runner)


def _check_backbone_checkpoint(cfg) -> None:
    init = (cfg.model.get("backbone") or {}).get("init_cfg") or {}
    ckpt = init.get("checkpoint") if isinstance(init, dict) else None
    if ckpt and not Path(ckpt).is_file():
        raise ConfigError(f"backbone checkpoint not found: {ckpt} (set it with --cfg-options "
                          "model.backbone.init_cfg.checkpoint=PATH)")


def build_runner(cfg):
    init_framework(cfg.default_scope)
    allow_mmengine_checkpoints()
    _register_digest_hook()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)


def summarize(metrics: dict) -> list[str]:
    """Human-readable lines for COCO bbox / segm AP (MMDetection reports fractions) and mIoU
    (MMSegmentation reports percent)."""
    lines = []
    for task in ("bbox", "segm"):
        key = f"coco/{task}_mAP"
        if key in metrics:
            ap = [100 * float(metrics.get(f"{key}{s}", float("nan"))) for s in ("", "_50", "_75")]
            lines.append(f"{task} AP {ap[0]:.1f}  AP50 {ap[1]:.1f}  AP75 {ap[2]:.1f}")
    if "mIoU" in metrics:
        lines.append(f"mIoU {float(metrics['mIoU']):.2f}  aAcc {float(metrics.get('aAcc', float('nan'))):.2f}")
    return lines


def write_metrics(metrics: dict, path: str | os.PathLike) -> None:
    clean = {k: (float(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v)
             for k, v in metrics.items()}
    write_text_atomic(json.dumps(clean, indent=2, sort_keys=True, default=str), path)


__all__ = ["ConfigError", "reroot", "load_config", "init_framework", "prepare_train", "prepare_test",
           "select_precision", "record_backbone_structure", "PRECISIONS",
           "build_runner", "summarize", "write_metrics", "trained_meta", "check_resumable", "load_for_test"]
