"""Protocol settings of a DAVIS run: built-in defaults < MMEngine config file < ``--cfg-options``
< the dedicated command-line flags.

A config (``configs/davis/*.py``) is a pure-Python MMEngine config with any of the keys of
:data:`DEFAULTS`, e.g.::

    checkpoint = 'work_dirs/export/flsl_vits16.safetensors'
    arch = 'vit_small'
    patch_size = 16
    n_last_frames, neighborhood, topk, temperature = 7, 12, 5, 0.1
"""
from __future__ import annotations

from pathlib import Path

from .io import DavisError

DEFAULTS = dict(
    checkpoint=None,        # encoder file (any format pretrain.checkpoint reads)
    arch="vit_small",       # expected ViT family of the checkpoint (None: no check)
    patch_size=16,          # expected patch size (None: no check)
    n_last_frames=7,        # context: first frame + this many most recent frames
    neighborhood=12,        # Chebyshev window radius in patches (0: whole frame)
    topk=5,                 # affinities kept per target patch, over all context frames
    temperature=0.1,        # softmax-free temperature of exp(cos / t)
    short_side=480,         # frames resized to this short side (pixels) ...
    multiple=64,            # ... and the long side floored to a multiple of this
    batch_size=8,           # frames per encoder forward
    split="val",
    which="teacher",        # teacher or student, where the checkpoint holds both
    family=None,            # checkpoint family where the file's content does not settle it
)


def load_settings(config: str | Path | None = None, options: dict | None = None, **overrides) -> dict:
    """Merge :data:`DEFAULTS`, the config file (if any), ``options`` (``--cfg-options``, checked
    against the known keys) and the non-``None`` ``overrides``.

    Unknown keys in the config are refused (a typo would otherwise be silently ignored).
    """
    out = dict(DEFAULTS)
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise DavisError(f"{path}: config file not found")
        from mmengine.config import Config
        try:
            cfg = Config.fromfile(str(path)).to_dict()
        except Exception as err:  # noqa: BLE001 - any parse error, re-raised with the file name
            raise DavisError(f"{path}: cannot read config ({type(err).__name__}: {err})") from None
        unknown = sorted(set(cfg) - set(DEFAULTS))
        if unknown:
            raise DavisError(f"{path}: unknown key(s) {', '.join(unknown)} (known: "
                             f"{', '.join(DEFAULTS)})")
        out.update(cfg)
    if options:
        from mmengine.config import Config

        from core.config import apply_options
        merged = Config(out)
        apply_options(merged, options)
        out = merged.to_dict()
    out.update({k: v for k, v in overrides.items() if v is not None})
    for key, default in DEFAULTS.items():  # a value of the wrong kind would surface as a traceback
        value, where = out[key], config or "command line"
        if value is None and key in ("checkpoint", "arch", "patch_size", "family"):
            continue
        want = (int if isinstance(default, int) else float if isinstance(default, float) else str)
        ok = isinstance(value, (int, float) if want is float else want) and not isinstance(value, bool)
        if not ok:
            raise DavisError(f"{key}: expected {'an integer' if want is int else 'a number' if want is float else 'a string'}, "
                             f"got {value!r} ({where})")
    return out


__all__ = ["DEFAULTS", "load_settings"]
