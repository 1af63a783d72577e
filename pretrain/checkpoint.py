"""Checkpoints: atomic save, safe load (never unpickles code), export of the teacher encoder,
and import of foreign ViT checkpoint formats.

Supported encoder formats (auto-detected by :func:`load_encoder_weights`):

``flsl-export``   this project's ``.safetensors`` export (metadata ``flsl_spec``)
``flsl-train``    this project's training state (``{"teacher": ..., "student": ..., "meta": ...}``)
``flsl-authors``  the authors' release: ``{"student"|"teacher": {"module.backbone.*"|"backbone.*"}}``
``dino`` / ``ibot``  DINO / iBOT releases: a bare (or ``teacher``-wrapped) ViT state dict with
                  ``cls_token`` and a ``1 + N`` position embedding
``timm``          a timm ViT state dict (optionally with ``head.*``)

All of them are converted to the key layout of :func:`pretrain.encoder.build_encoder` (timm keys,
no class token, ``pos_embed`` of shape ``[1, N, C]``).
"""
from __future__ import annotations

from core.errors import FLSLError
from core.files import atomic_path

import argparse
import dataclasses
import os
import re
from pathlib import Path

import torch

from .encoder import EncoderSpec, build_encoder


class CheckpointError(FLSLError):
    """A checkpoint that cannot be used; the message names the file and the key."""


# --------------------------------------------------------------------------------------- save/load
def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the previous file or the new one, never a partial file.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


#: classes ``load_safely`` lets ``torch.load(weights_only=True)`` rebuild besides tensors and plain
#: containers: DINO-family training checkpoints (DINO, iBOT, the authors' FLSL release) store their
#: command line as an ``argparse.Namespace``, which unpickles to attributes only.
SAFE_GLOBALS = [argparse.Namespace]


def load_safely(path: str | os.PathLike) -> dict:
    """Load a checkpoint without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers. A file
    holding arbitrary Python objects (for example an MMEngine checkpoint whose ``meta`` holds
    custom classes) is refused with a message that says how to convert it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        msg = re.sub(r"\x1b\[[0-9;]*m", "", msg)  # torch colours part of its message
        raise CheckpointError(
            f"{path}: cannot be loaded safely (weights_only=True): {msg}. If you trust the file, "
            "convert it once with tools/convert_checkpoint.py --trust-pickle.") from None


def safetensors_metadata(path: str | os.PathLike) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


# --------------------------------------------------------------------------------------- export
def export_encoder(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write ``model``'s state dict as ``.safetensors`` with its architecture in the metadata.

    The file loads through timm with strict key matching::

        spec = EncoderSpec.from_json(safetensors_metadata(path)["flsl_spec"])
        timm.create_model(spec.arch, pretrained=True,
                          pretrained_cfg_overlay=dict(file=path, custom_load=False),
                          **spec.timm_kwargs())
    """
    from safetensors.torch import save_file
    spec: EncoderSpec = model.flsl_spec
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "flsl-encoder", "flsl_spec": spec.to_json(),
                                             "patch_size": str(int(model.patch_embed.patch_size[0]))})


# --------------------------------------------------------------------------------------- import
@dataclasses.dataclass
class LoadedEncoder:
    """Encoder weights in this project's layout plus what was found in the source file."""

    state_dict: dict            # timm keys, no class token, pos_embed [1, N, C]
    spec: EncoderSpec           # architecture (from metadata, or inferred from the tensors)
    format: str                 # one of the formats in the module docstring
    source: str                 # file name
    cls_token: torch.Tensor | None = None        # [1, 1, C] when the source had one
    pos_embed_with_cls: torch.Tensor | None = None  # [1, 1 + N, C] as found, when it had a class slot
    dropped: tuple = ()         # keys present in the source but deliberately not used (heads...)

    @property
    def patch_size(self) -> int:
        return int(self.state_dict["patch_embed.proj.weight"].shape[-1])


_HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16}
_NAME_BY_WIDTH = {192: "tiny", 384: "small", 768: "base", 1024: "large"}


def infer_spec(state: dict, source: str = "checkpoint") -> EncoderSpec:
    """Infer the timm architecture from tensor shapes (width, depth, patch, grid)."""
    try:
        w = state["patch_embed.proj.weight"]
        pos = state["pos_embed"]
    except KeyError as err:
        raise CheckpointError(f"{source}: no ViT encoder found (missing key {err.args[0]!r})") from None
    width, patch = int(w.shape[0]), int(w.shape[-1])
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    n = pos.shape[1]
    grid = int(round(n ** 0.5))
    if width not in _NAME_BY_WIDTH:
        raise CheckpointError(f"{source}: unsupported ViT width {width} (known: {sorted(_NAME_BY_WIDTH)})")
    import timm
    arch = f"vit_{_NAME_BY_WIDTH[width]}_patch{patch}_224"
    kwargs = {}
    if not timm.is_model(arch):  # e.g. no tiny/8 in timm: same family, patch size overridden
        arch = f"vit_{_NAME_BY_WIDTH[width]}_patch16_224"
        kwargs["patch_size"] = patch
    if depth != 12 and not (width == 1024 and depth == 24):
        kwargs["depth"] = depth
    if grid * patch != 224:
        kwargs["img_size"] = grid * patch
    return EncoderSpec.make(arch, **kwargs)


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_encoder_weights(path: str | os.PathLike, which: str = "teacher") -> LoadedEncoder:
    """Read any supported checkpoint and return encoder weights in this project's layout.

    ``which`` selects the teacher (default, as in DINO-family evaluation) or the student where the
    file holds both.
    """
    path = Path(path)
    source = str(path)
    raw = load_safely(path)
    spec = None
    if path.suffix == ".safetensors":
        meta = safetensors_metadata(path)
        if "flsl_spec" in meta:
            return _finish(dict(raw), EncoderSpec.from_json(meta["flsl_spec"]), "flsl-export", source)
        fmt, state = "timm", dict(raw)
    elif isinstance(raw, dict) and "meta" in raw and "teacher" in raw and "student" in raw \
            and isinstance(raw.get("meta"), dict) and "flsl_spec" in raw["meta"]:
        fmt = "flsl-train"
        spec = EncoderSpec.from_json(raw["meta"]["flsl_spec"])
        state = _strip(raw[which], "backbone.")
    elif isinstance(raw, dict) and which in raw and isinstance(raw[which], dict):
        sub = raw[which]
        if any(k.startswith(("module.backbone.", "backbone.")) for k in sub):
            fmt = "flsl-authors" if not any("cls_token" in k for k in sub) or "flsl" in path.name.lower() \
                else "dino"
            state = _strip(sub, "module.backbone.") or _strip(sub, "backbone.")
        else:
            fmt, state = "dino", dict(sub)
    elif isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        fmt, state = "timm", _strip(raw["state_dict"], "backbone.") or dict(raw["state_dict"])
    elif isinstance(raw, dict) and "model" in raw and isinstance(raw["model"], dict):
        fmt, state = "timm", dict(raw["model"])
    elif isinstance(raw, dict):
        fmt, state = "timm", dict(raw)
    else:
        raise CheckpointError(f"{source}: unrecognised checkpoint content ({type(raw).__name__})")
    if fmt == "timm" and "cls_token" in state and not any(k.startswith("head.") for k in state):
        fmt = "dino"
    if "ibot" in path.name.lower() and fmt == "dino":
        fmt = "ibot"
    return _finish(state, spec, fmt, source)


def _finish(state: dict, spec: EncoderSpec | None, fmt: str, source: str) -> LoadedEncoder:
    state = {k: v for k, v in state.items() if torch.is_tensor(v)}
    dropped = tuple(sorted(k for k in state
                           if k.startswith(("head.", "fc_norm.", "mask_token", "masked_embed"))))
    for k in dropped:
        state.pop(k)
    cls_token = state.pop("cls_token", None)
    pos_with_cls = None
    if "pos_embed" in state and cls_token is not None:
        pos = state["pos_embed"]
        pos_with_cls = pos
        n = pos.shape[1]
        if int(round((n - 1) ** 0.5)) ** 2 == n - 1:
            state["pos_embed"] = pos[:, 1:]
    if spec is None:
        spec = infer_spec(state, source)
    return LoadedEncoder(state, spec, fmt, source, cls_token, pos_with_cls, dropped)


def load_pretrained_encoder(path: str | os.PathLike, expect_patch_size: int | None = None,
                            expect_arch: str | None = None, which: str = "teacher"):
    """Build the encoder described by the checkpoint and load its weights strictly.

    Returns ``(model, LoadedEncoder)``. Raises :class:`CheckpointError` naming missing, unexpected
    or mis-shaped keys, or a patch size / architecture different from the one expected.
    """
    loaded = load_encoder_weights(path, which=which)
    if expect_patch_size is not None and loaded.patch_size != expect_patch_size:
        raise CheckpointError(f"{path}: patch size {loaded.patch_size} in the checkpoint, "
                              f"{expect_patch_size} expected")
    if expect_arch is not None and loaded.spec.arch != expect_arch:
        raise CheckpointError(f"{path}: architecture {loaded.spec.arch} in the checkpoint, "
                              f"{expect_arch} expected")
    model = build_encoder(loaded.spec)
    load_strict(model, loaded.state_dict, str(path))
    return model, loaded


def load_strict(model: torch.nn.Module, state: dict, source: str) -> None:
    """``load_state_dict(strict=True)`` with one readable error listing every problem."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}"
                         + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}"
                         + (" ..." if len(unexpected) > 8 else ""))
        if shapes:
            parts.append("shape mismatches: " + "; ".join(shapes[:8]))
        raise CheckpointError(f"{source}: does not match the encoder: " + " | ".join(parts))
    model.load_state_dict(state, strict=True)


__all__ = ["CheckpointError", "save_atomic", "load_safely", "export_encoder", "LoadedEncoder",
           "load_encoder_weights", "load_pretrained_encoder", "load_strict", "infer_spec",
           "safetensors_metadata"]
