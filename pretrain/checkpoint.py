"""Checkpoints: atomic save, safe load (never unpickles code), export of the teacher encoder,
and import of every supported ViT checkpoint family.

:func:`load_encoder_weights` reads this project's files (``flsl-export``: ``.safetensors`` with
``flsl_spec`` metadata; ``flsl-train``: ``{"teacher", "student", "meta"}``) directly and every
other release through :mod:`pretrain.families` (the FLSL authors' release, DINO, iBOT, SelfPatch,
timm, DINOv2, MAE, DeiT III, OpenAI CLIP / OpenCLIP, SigLIP: docs/families.md), deciding the
family from the content, never from the file name. Each is returned in the key layout of
:func:`pretrain.encoder.build_encoder` with the spec of the network it was trained as.
"""
from __future__ import annotations

from core.errors import FLSLError
from core.digests import DIGEST_SUFFIX, digest_path, file_sha256, recorded_digests, write_digest
from core.files import atomic_path

import argparse
import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import Iterator

import torch

from .encoder import DEFAULT_POSITIONS, POSITION_RULES, EncoderSpec, build_encoder, vit_arguments


class CheckpointError(FLSLError):
    """A checkpoint that cannot be used; the message names the file and the key."""


class IntegrityError(CheckpointError):
    """A checkpoint whose bytes no longer match the SHA-256 recorded when it was written."""


# --------------------------------------------------------------------------------------- integrity
# digests and their sidecar files live in core.digests (provenance reads them too)


def intact_alternative(path: str | os.PathLike) -> Path | None:
    """The newest other file of the same kind (suffix) in ``path``'s folder whose own ``.sha256``
    verifies (None if none)."""
    path = Path(path)
    candidates = [p for p in path.parent.glob("*" + path.suffix + DIGEST_SUFFIX)]
    files = [Path(str(c)[:-len(DIGEST_SUFFIX)]) for c in candidates]
    files = sorted((f for f in files if f.is_file() and f.name != path.name),
                   key=lambda f: f.stat().st_mtime, reverse=True)
    for f in files:
        if file_sha256(f) in (recorded_digests(f) or ()):
            return f
    return None


def verify_digest(path: str | os.PathLike) -> bool:
    """Check ``path`` against ``<path>.sha256``; False when there is no digest file (files from
    elsewhere), True when it matches. A mismatch raises :class:`IntegrityError` naming the file
    and the newest intact checkpoint of the same folder, if any."""
    path = Path(path)
    expected = recorded_digests(path)
    if expected is None:
        return False
    actual = file_sha256(path)
    if actual in expected:
        return True
    other = intact_alternative(path)
    where = (f"the newest intact checkpoint in that folder is {other}" if other is not None
             else f"no other checkpoint in {path.parent} has a matching digest")
    shown = expected[0][:16] + "..." if expected else "no valid digest"
    raise IntegrityError(f"{path}: SHA-256 {actual[:16]}... does not match {digest_path(path).name} "
                         f"({shown}): the file changed after it was written (corrupted, truncated or "
                         f"replaced; if you replaced it on purpose, delete {digest_path(path).name}); "
                         f"{where}")


@contextlib.contextmanager
def atomic_with_digest(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`core.files.atomic_path` that also writes ``<path>.sha256`` of the new content.

    The digest file lists the new and the old digest while the new file is renamed into place,
    then the new one only: whatever moment a crash hits, the file on disk verifies.
    """
    path = Path(path)
    previous = (recorded_digests(path) or [file_sha256(path)]) if path.is_file() else []
    with atomic_path(path) as tmp:
        yield tmp
        new = file_sha256(tmp)
        write_digest(path, [new, *previous[:1]])
    write_digest(path, [new])


# --------------------------------------------------------------------------------------- save/load
def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``,
    with its SHA-256 in ``<path>.sha256``.

    A crash at any moment leaves either the previous file or the new one, never a partial file,
    and a digest file that matches whichever it is. A failed write (disk full) raises
    :class:`CheckpointError` and leaves the previous file and digest as they were.
    """
    path = Path(path)
    with atomic_with_digest(path) as tmp:
        try:
            torch.save(obj, tmp)
        except (RuntimeError, OSError) as err:  # torch reports a full disk as a RuntimeError
            msg = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", str(err).splitlines()[0] if str(err) else "")
            free = _free_bytes(path.parent)
            raise CheckpointError(
                f"{path}: writing the checkpoint failed ({msg or type(err).__name__}; "
                f"{free / 2**20:.0f} MiB free on that disk); "
                + ("the previous checkpoint is unchanged" if path.is_file() else "nothing was written")) from None


def _free_bytes(folder: Path) -> int:
    import shutil
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


#: classes ``load_safely`` lets ``torch.load(weights_only=True)`` rebuild besides tensors and plain
#: containers: DINO-family training checkpoints (DINO, iBOT, the authors' FLSL release) store their
#: command line as an ``argparse.Namespace``, which unpickles to attributes only.
SAFE_GLOBALS = [argparse.Namespace]


def load_safely(path: str | os.PathLike, mmap: bool = False) -> dict:
    """Load a checkpoint without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers. A file
    holding arbitrary Python objects (for example an MMEngine checkpoint whose ``meta`` holds
    custom classes) is refused with a message that says how to convert it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    verify_digest(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    if path.suffix == ".npz":  # big_vision (SigLIP): flattened flax parameters, never pickles
        import numpy as np
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {k: arrays[k] for k in arrays.files}
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise CheckpointError(f"{path}: not a readable .npz file ({err})") from None
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            if mmap:
                # memory-mapped: tensors are read from the file as they are used, so a model built
                # on them (assign=True) holds the weights once, not the file plus a copy. Encoder
                # loading only: training states are read whole (resuming stays bitwise exact)
                try:
                    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as err:
                    if "mmap" not in str(err):
                        raise
                    # a file in torch's legacy (pre-zip) format cannot be mapped: read it whole
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # torch colours part of its message
        msg = text.splitlines()[0] if text else type(err).__name__
        if not re.search(r"unsupported global|not allowed", text, re.IGNORECASE):
            # not a refused class: the zip reader or the unpickler met damaged bytes
            detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
            raise CheckpointError(f"{path}: not a readable checkpoint, truncated or corrupted "
                                  f"({(detail.group(1) if detail else msg).split('. ')[0].strip()})") from None
        refused = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", text, re.IGNORECASE)
        if refused:
            msg = f"it holds the Python object {refused.group(1)}, which only full unpickling can rebuild"
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
    spec: EncoderSpec = model.flsl_spec
    state = {k: v.detach() for k, v in model.state_dict().items()}
    metadata = {"format": "flsl-encoder", "flsl_spec": spec.to_json(),
                "patch_size": str(int(model.patch_embed.patch_size[0]))}
    with atomic_with_digest(path) as tmp:
        try:
            write_safetensors(state, tmp, metadata)
        except OSError as err:
            raise CheckpointError(f"{path}: writing the export failed ({err})") from None


#: safetensors dtype names
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                       torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
                       torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(state: dict, path: str | os.PathLike, metadata: dict) -> None:
    """Write ``state`` in the safetensors format (8-byte little-endian header length, a JSON
    header, the tensors' bytes), streaming one tensor at a time from its own memory.

    The header's keys are sorted and the tensors stored in name order, so identical tensors and
    metadata give identical bytes in every process (safetensors' own writer orders the metadata
    by a hash map that changes between processes), and no copy of the whole state is made (its
    writer serialises every tensor to bytes first: 2x the file in memory)."""
    import json
    import struct
    header, offset, order = {"__metadata__": dict(metadata)}, 0, sorted(state)
    for name in order:
        t = state[name]
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)   # the data starts 8-byte aligned, as safetensors writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            t = state[name].contiguous().cpu()
            if t.numel():
                f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))


# --------------------------------------------------------------------------------------- import
@dataclasses.dataclass
class LoadedEncoder:
    """Encoder weights in the layout of ``build_encoder(spec)``, how the network runs, and what of
    the source file was not used."""

    state_dict: dict            # timm keys; cls_token and a [1, 1 + N, C] pos_embed iff spec.class_token
    spec: EncoderSpec           # architecture, class token, position rule, family
    format: str                 # the release layout read (docs/families.md)
    source: str                 # file name
    dropped: dict = dataclasses.field(default_factory=dict)  # key in the source -> why it is unused
    not_read: tuple = ()        # top-level entries of the file that hold no encoder weights
    notes: list = dataclasses.field(default_factory=list)  # conversions made on reading (dtype)

    @property
    def patch_size(self) -> int:
        return int(self.state_dict["patch_embed.proj.weight"].shape[-1])

    @property
    def class_token(self) -> bool:
        return self.spec.class_token

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def mean(self) -> tuple:
        """RGB mean of the input normalisation the family was trained with (pixels in [0, 1])."""
        from .families import family
        return family(self.spec.family).mean

    @property
    def std(self) -> tuple:
        from .families import family
        return family(self.spec.family).std

    def describe(self) -> str:
        """Format and how the encoder runs, in words (the one line every tool logs)."""
        from .families.layouts import summarize_dropped
        converted = "".join(f"; {n.split(': ', 1)[-1]}" for n in self.notes)
        return (f"format {self.format}: {self.spec.family} family; {self.spec.describe()}; "
                f"{summarize_dropped(self.dropped)}{converted}")


def infer_spec(state: dict, source: str = "checkpoint", class_token: bool = False,
               positions: str = "dino", **rule) -> EncoderSpec:
    """The timm architecture of ``state`` from tensor shapes: see
    :func:`pretrain.families.layouts.infer_spec`."""
    from .families.layouts import infer_spec as infer
    return infer(state, source, class_token=class_token, positions=positions, **rule)


def load_encoder_weights(path: str | os.PathLike, which: str = "teacher",
                         family: str | None = None) -> LoadedEncoder:
    """Read any supported checkpoint and return encoder weights in the layout of
    :func:`pretrain.encoder.build_encoder` for the network the file was trained as.

    ``which`` selects the teacher (default, as in DINO-family evaluation) or the student where the
    file holds both. The family (docs/families.md) is decided from the content (keys, nesting,
    shapes), never from the file name; ``family`` (``--family``) settles files whose content fits
    several families, which are otherwise refused with an error naming the candidates.
    """
    from .families import layouts
    path = Path(path)
    source = str(path)
    raw = load_safely(path, mmap=True)
    if which == "student" and not (isinstance(raw, dict) and isinstance(raw.get("student"), dict)):
        raise CheckpointError(f"{source}: holds a single encoder (no 'student' entry), so there is no "
                              "student to choose; --which student applies to training checkpoints")
    hint = None
    if path.suffix == ".safetensors":
        meta = safetensors_metadata(path)
        if "flsl_spec" in meta:
            spec = spec_from_metadata(meta["flsl_spec"], source)
            if family is not None and family != spec.family:
                raise CheckpointError(f"{source}: this project's export of a {spec.family} encoder, "
                                      f"not {family} (drop --family)")
            return _finish(layouts.Read(dict(raw), spec.family, "flsl-export", {}, spec.positions, {}, ()),
                           source, spec)
        hint = "timm"    # a timm / Hugging Face hub file
    elif isinstance(raw, dict) and isinstance(raw.get("meta"), dict) and "flsl_spec" in raw["meta"] \
            and isinstance(raw.get(which), dict):
        spec = spec_from_metadata(raw["meta"]["flsl_spec"], source)
        state, rest = layouts._split(raw[which])
        not_read = tuple(sorted(k for k in raw if k != which))
        return _finish(layouts.Read(state, spec.family, "flsl-train", {}, spec.positions, rest, not_read),
                       source, spec)
    return _finish(layouts.read(raw, source, which=which, family=family, hint=hint), source)


def check_finite(state: dict, source: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged run): they would be evaluated as a
    number (J&F 0, AP 0) instead of reported."""
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source}: {len(bad)} tensor(s) hold NaN or infinite values "
                              f"({', '.join(sorted(bad)[:4])}{' ...' if len(bad) > 4 else ''})")


def spec_from_metadata(text, source: str) -> EncoderSpec:
    """:class:`EncoderSpec` from a file's ``flsl_spec`` JSON, with a one-line error when it is
    malformed (not JSON, no architecture, unknown timm model, or keyword overrides that a timm
    VisionTransformer does not take)."""
    import json

    import timm

    from .encoder import SPEC_STRINGS
    from .families import FAMILIES
    try:
        d = json.loads(text)
        arch, kwargs = d["arch"], d.get("kwargs", {})
        if not isinstance(arch, str) or not isinstance(kwargs, dict):
            raise TypeError("'arch' must be a string and 'kwargs' an object")
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{source}: malformed flsl_spec metadata ({type(err).__name__}: {err})") from None
    if not timm.is_model(arch):
        raise CheckpointError(f"{source}: flsl_spec names an unknown architecture {arch!r}")
    allowed = vit_arguments()
    for key, value in kwargs.items():
        numbers = value if isinstance(value, list) else [value]
        if isinstance(value, str) and value in SPEC_STRINGS.get(key, ()):
            continue
        if key not in allowed or not numbers or not all(isinstance(v, (int, float)) for v in numbers):
            raise CheckpointError(f"{source}: flsl_spec has an unusable override {key}={value!r}")
    positions = d.get("positions", DEFAULT_POSITIONS)
    if positions not in POSITION_RULES:
        raise CheckpointError(f"{source}: flsl_spec names an unknown position rule {positions!r}")
    fam = d.get("family", "flsl")
    if fam not in FAMILIES:
        raise CheckpointError(f"{source}: flsl_spec names an unknown family {fam!r}")
    return EncoderSpec.make(arch, positions=positions, family=fam, **kwargs)


def _finish(read, source: str, spec: EncoderSpec | None = None) -> LoadedEncoder:
    """Check what the forward pass uses, decide the class token from the shapes, and settle the
    spec (given by our metadata, else inferred with the family's run rule)."""
    state, dropped = dict(read.state), dict(read.dropped)
    for key in [k for k, v in state.items() if not torch.is_tensor(v)]:
        dropped[key] = "not a tensor"
        state.pop(key)
    from .families.layouts import UNUSED_KEYS
    for key in [k for k in state if k in UNUSED_KEYS or k.startswith(("head.", "fc_norm."))]:
        dropped[key] = UNUSED_KEYS.get(key, "projection / classification head")
        state.pop(key)
    notes = _float32_weights(state, source)
    check_finite(state, source)
    given = read.spec
    if given is not None and given.rope:   # RoPE families: no table, the spec comes with the layout
        return LoadedEncoder(state, given, read.layout, source, dropped, tuple(read.not_read), notes)
    if spec is not None and spec.rope:
        return LoadedEncoder(state, spec, read.layout, source, dropped, tuple(read.not_read), notes)
    pos = state.get("pos_embed")
    if pos is None or pos.ndim != 3 or "patch_embed.proj.weight" not in state:
        raise CheckpointError(f"{source}: no ViT encoder found (need patch_embed.proj.weight and a "
                              "[1, N, C] pos_embed)")
    n_pos = int(pos.shape[1])
    no_embed_class = bool(read.kwargs.get("no_embed_class")) or (spec is not None and bool(
        dict(spec.kwargs).get("no_embed_class")))
    if spec is not None:
        img = dict(spec.kwargs).get("img_size", 224)
        h, w = (img, img) if isinstance(img, int) else tuple(img)
        patch = int(state["patch_embed.proj.weight"].shape[-1])
        n_grid = (h // patch) * (w // patch)
        if n_pos not in (n_grid, n_grid + 1):
            raise CheckpointError(f"{source}: pos_embed has {n_pos} entries, the {h}x{w} input of its "
                                  f"flsl_spec has {n_grid} patches")
        slot = n_pos == n_grid + 1
    else:
        slot = _is_square(n_pos - 1) and not _is_square(n_pos)
    if slot and "cls_token" not in state:
        raise CheckpointError(f"{source}: pos_embed has a class slot ({n_pos} = 1 + {n_pos - 1} entries) "
                              "but there is no cls_token")
    class_token = slot or (no_embed_class and "cls_token" in state)
    if not class_token and "cls_token" in state:
        # the authors' FLSL release: DINO's ViT made class-token free after construction
        dropped["cls_token"] = (f"unused: pos_embed has {n_pos} entries (no class slot), the network "
                                "ran without a class token")
        state.pop("cls_token")
    fmt = read.layout
    if spec is None:
        family = read.family
        if family in ("dino", "ibot") and not slot:
            family, fmt = "flsl", "flsl-authors"
        spec = infer_spec(state, source, class_token=class_token, positions=read.positions,
                          family=family, **read.kwargs)
    elif spec.class_token != class_token:
        raise CheckpointError(f"{source}: flsl_spec says class_token={spec.class_token}, but pos_embed "
                              f"has {n_pos} entries ({'with' if slot else 'without'} a class slot)")
    loaded = LoadedEncoder(state, spec, fmt, source, dropped, tuple(read.not_read))
    loaded.notes = notes
    return loaded


def _float32_weights(state: dict, source: str) -> list[str]:
    """Cast half / double precision weights to float32 in place (the encoder runs in float32;
    the cast of fp16 and bf16 is exact), returning a note for the log, and refuse integer,
    quantised or complex tensors: reading int8 codes as weights would run another network."""
    bad = {k: v.dtype for k, v in state.items() if not v.is_floating_point()}
    if bad:
        shown = ", ".join(f"{k} ({str(d).removeprefix('torch.')})" for k, d in sorted(bad.items())[:4])
        raise CheckpointError(f"{source}: {len(bad)} encoder tensor(s) are not floating point ({shown}"
                              f"{' ...' if len(bad) > 4 else ''}): a quantised or integer checkpoint; "
                              "dequantise it to float first")
    cast = sorted({str(v.dtype).removeprefix("torch.") for v in state.values() if v.dtype != torch.float32})
    if not cast:
        return []
    for k in list(state):
        state[k] = state[k].float()
    note = f"{source}: weights stored as {', '.join(cast)}, converted to float32"
    import warnings
    warnings.warn(note, stacklevel=3)
    return [note]


def _is_square(n: int) -> bool:
    return n > 0 and int(round(n ** 0.5)) ** 2 == n


def load_pretrained_encoder(path: str | os.PathLike, expect_patch_size: int | None = None,
                            expect_arch: str | None = None, which: str = "teacher",
                            family: str | None = None):
    """Build the encoder described by the checkpoint and load its weights strictly.

    Returns ``(model, LoadedEncoder)``; ``model.flsl_source`` names the file (feature checks
    quote it). ``family`` settles a file whose content fits several families. Raises
    :class:`CheckpointError` naming missing, unexpected or mis-shaped keys, or a patch size /
    architecture different from the one expected.
    """
    loaded = load_encoder_weights(path, which=which, family=family)
    if expect_patch_size is not None and loaded.patch_size != expect_patch_size:
        raise CheckpointError(f"{path}: patch size {loaded.patch_size} in the checkpoint, "
                              f"{expect_patch_size} expected")
    if expect_arch is not None and loaded.spec.arch != expect_arch:
        raise CheckpointError(f"{path}: architecture {loaded.spec.arch} in the checkpoint, "
                              f"{expect_arch} expected")
    with parameters_on_meta():   # no initial weights: the file's tensors become the parameters
        model = build_encoder(loaded.spec)
    load_strict(model, loaded.state_dict, str(path), assign=True)
    model.flsl_source = str(path)
    return model, loaded


@contextlib.contextmanager
def parameters_on_meta():
    """Modules built inside get every parameter on the meta device (no memory) as soon as it is
    registered, so a large encoder whose weights come from a file is never held twice; the
    module code itself runs as usual (timm calls ``.item()`` while building, which a global meta
    device would refuse). Fill the parameters with ``load_strict(..., assign=True)``."""
    original = torch.nn.Module.register_parameter

    def register(self, name, param):
        if param is not None and param.device.type != "meta":
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)
    torch.nn.Module.register_parameter = register
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original


def load_strict(model: torch.nn.Module, state: dict, source: str, what: str = "the encoder",
                assign: bool = False) -> None:
    """``load_state_dict(strict=True)`` with one readable error listing every problem.
    ``assign`` makes ``state``'s tensors the module's parameters (a model built on the meta
    device), keeping each parameter's ``requires_grad``."""
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
        raise CheckpointError(f"{source}: does not match {what}: " + " | ".join(parts))
    model.load_state_dict(state, strict=True, assign=assign)


__all__ = ["CheckpointError", "save_atomic", "load_safely", "export_encoder", "LoadedEncoder",
           "load_encoder_weights", "load_pretrained_encoder", "load_strict", "infer_spec",
           "safetensors_metadata", "spec_from_metadata"]
