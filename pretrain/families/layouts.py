"""Release layouts -> encoder weights in timm's ViT layout plus the family's run rule.

:func:`read` takes what :func:`pretrain.checkpoint.load_safely` returned, finds the encoder in it
(unwrapping training states, ``{"model": ...}`` / ``{"state_dict": ...}`` wrappers, ``module.``,
``backbone.`` and ``visual.`` prefixes), decides the family from the content (or takes the
override) and converts the keys. What each family's run rule sets is in :data:`RUN_RULES`; the
shapes (width, depth, patch, stored grid, MLP width) are read by :func:`infer_spec`.

Conversions that are timm's own and exact are used as they are: ``_convert_dinov2`` (registers:
the class slot folded into the class token, exact because that slot is never resampled; SwiGLU
``w12``/``w3`` -> ``fc1``/``fc2``), ``_convert_openai_clip`` (``visual.*`` names, 2-D table,
fused ``in_proj``), and ``checkpoint_filter_fn(adapt_layer_scale=True)``'s DeiT III
``gamma_{1,2}`` -> ``ls{1,2}.gamma``; timm's *resampling* is not used for families whose own rule
differs (docs/families.md).
"""
from __future__ import annotations

import dataclasses
import re

import torch

from pretrain.checkpoint import CheckpointError
from pretrain.encoder import EncoderSpec, sincos_pos_embed_2d

from . import FAMILIES

#: spec keywords of each family's network beyond what the shapes say, and its position rule
RUN_RULES = {
    "flsl": (dict(), "dino"),
    "dino": (dict(), "dino"),
    "ibot": (dict(), "dino"),
    "selfpatch": (dict(final_norm=False), "dino"),
    "timm": (dict(), "timm"),
    "dinov2": (dict(), "dino"),            # with registers: "timm" (DINOv2's antialiased rule)
    "mae": (dict(), "size"),
    "deit3": (dict(no_embed_class=True), "size"),
    "openai-clip": (dict(pre_norm=True, norm_eps=1e-5, act_layer="quick_gelu"), "timm"),
    "openclip": (dict(pre_norm=True, norm_eps=1e-5), "timm"),
    "siglip": (dict(act_layer="gelu_tanh"), "corners"),
    "dinov3": (dict(), "timm"),            # no table: RoPE on the patch tokens (timm's Eva)
    "eva02": (dict(), "size"),             # RoPE plus an absolute table resized as its fine-tuning does
}

#: top-level key prefixes of tensors that are not part of the encoder, and what they are
HEAD_PREFIXES = {
    "head.": "projection / classification head", "c_head.": "SelfPatch image-level head",
    "ca_head.": "SelfPatch class-attention head", "p_head.": "SelfPatch patch-level head",
    "dino_head.": "DINOv2 image-level head", "ibot_head.": "DINOv2 patch-level head",
    "fc_norm.": "pooling norm of a classification head", "attn_pool.": "attention-pooling head",
    "decoder": "MAE decoder", "text.": "text tower", "lm_head.": "masked-image-modelling head",
}
#: single tensors used only in pretraining
UNUSED_KEYS = {
    "masked_embed": "mask embedding of masked-image modelling (iBOT student)",
    "mask_token": "mask embedding of masked-image modelling",
}


@dataclasses.dataclass
class Read:
    """An encoder found in a file: timm-layout tensors, its family and layout, what was left."""

    state: dict
    family: str
    layout: str                 # the "format" word of the log line
    kwargs: dict
    positions: str
    dropped: dict               # source key -> why it is not used
    not_read: tuple             # top-level entries that hold no encoder weights
    spec: EncoderSpec | None = None   # set by layouts whose architecture is not read from a table (RoPE)


def _is_square(n: int) -> bool:
    return n > 0 and int(round(n ** 0.5)) ** 2 == n


def is_mae_table(pos: torch.Tensor) -> bool:
    """A ``[1, 1 + g*g, C]`` table whose class slot is zero and whose rest is the fixed 2-D
    sine-cosine table (MAE's ``get_2d_sincos_pos_embed(..., cls_token=True)``)."""
    n = pos.shape[1] - 1
    if pos.ndim != 3 or not _is_square(n) or pos.shape[-1] % 4 or float(pos[0, 0].abs().max()) != 0.0:
        return False
    return is_sincos(pos[:, 1:])


def is_sincos(table: torch.Tensor) -> bool:
    """A slot-free ``[1, g*g, C]`` table equal to the 2-D sine-cosine table (to float32 rounding)."""
    n = table.shape[1]
    if table.ndim != 3 or not _is_square(n) or table.shape[-1] % 4:
        return False
    g = int(round(n ** 0.5))
    return bool(torch.allclose(table.float(), sincos_pos_embed_2d(g, g, table.shape[-1]), atol=1e-5, rtol=0))


def _group(keys) -> str:
    """``c_head.*, ca_head.*, p_head.*``: the top-level prefixes of ``keys``."""
    tops = sorted({k.split(".")[0] + (".*" if "." in k else "") for k in keys})
    return ", ".join(tops[:6]) + (" ..." if len(tops) > 6 else "")


def summarize_dropped(dropped: dict) -> str:
    """``ignored 47 head tensors (c_head.*, ca_head.*, p_head.*)``: one clause per kind (heads of
    any sort together), a single tensor with its reason."""
    by_kind: dict[str, list[str]] = {}
    for key, why in dropped.items():
        kind = "head" if "head" in why else why
        by_kind.setdefault(kind, []).append(key)
    parts = []
    for kind, keys in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(keys) == 1:
            parts.append(f"{keys[0]} ({dropped[keys[0]]})")
        else:
            parts.append(f"{len(keys)} {kind} tensors ({_group(keys)})")
    return "ignored " + "; ".join(parts) if parts else "ignored nothing"


# ------------------------------------------------------------------------------------- unwrap
def _split(sub: dict) -> tuple[dict, dict]:
    """A network's entries ``{"[module.]backbone.*", "<head>.*"}`` -> the backbone's tensors
    (prefixes removed) and the rest (key -> why unused). Without ``backbone.`` keys the whole
    dict (``module.`` removed) is the encoder."""
    plain = {k.removeprefix("module."): v for k, v in sub.items()}
    if not any(k.startswith("backbone.") for k in plain):
        return plain, {}
    state, rest = {}, {}
    for k, v in plain.items():
        if k.startswith("backbone."):
            state[k[len("backbone."):]] = v
        else:
            rest[k] = next((why for p, why in HEAD_PREFIXES.items() if k.startswith(p)),
                           "not part of the backbone")
    return state, rest


def _drop_unused(state: dict, dropped: dict) -> dict:
    out = {}
    for k, v in state.items():
        why = UNUSED_KEYS.get(k) or next((w for p, w in HEAD_PREFIXES.items() if k.startswith(p)), None)
        if not torch.is_tensor(v):
            dropped[k] = "not a tensor"
        elif why:
            dropped[k] = why
        else:
            out[k] = v
    return out


class AmbiguousFamily(CheckpointError):
    """The content fits more than one family: the override decides."""


def _ambiguous(source: str, candidates: list[str], why: str) -> AmbiguousFamily:
    names = ", ".join(f"{c} ({FAMILIES[c].title})" for c in candidates)
    return AmbiguousFamily(f"{source}: {why}, so the family cannot be told from the content: it is "
                           f"one of {names}. Say which with --family NAME (family= in Python and "
                           f"backbone configs), e.g. --family {candidates[0]}")


def read(raw, source: str, which: str = "teacher", family: str | None = None,
         torchscript: bool = False, hint: str | None = None) -> Read:
    """Find the encoder in ``raw`` (a loaded file) and convert it (see the module docstring).

    ``family`` forces the family (one of :data:`pretrain.families.FAMILIES`); otherwise it is
    decided from the content and ambiguous content raises :class:`AmbiguousFamily`. ``hint``
    names the family of a file whose container says it (a hub ``.safetensors``: timm) where the
    keys do not say otherwise.
    """
    if family is not None and family not in FAMILIES:
        raise CheckpointError(f"unknown --family {family!r} (known: {', '.join(FAMILIES)})")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{source}: unrecognised checkpoint content ({type(raw).__name__})")
    not_read: tuple = ()
    wrapper = "bare"
    if isinstance(raw.get(which), dict):
        # training state: {"student": DDP "module.*", "teacher", "optimizer", "epoch", "args",
        # "<method>_loss"}; the loss entry names the method
        sub, wrapper = raw[which], "train"
        not_read = tuple(sorted(k for k in raw if k != which))
        hint = next((f for key, f in (("flsl_loss", "flsl"), ("ibot_loss", "ibot"), ("dino_loss", "dino"))
                     if key in raw), None)
    elif isinstance(raw.get("state_dict"), dict):
        # iBOT's backbone files {"state_dict"}; OpenCLIP / timm training {"state_dict", "epoch", ...}
        sub, wrapper = raw["state_dict"], "state_dict"
        not_read = tuple(sorted(k for k in raw if k != "state_dict"))
        if "arch" in raw:
            hint = "timm"      # timm's CheckpointSaver records the model name
    elif isinstance(raw.get("model"), dict) or isinstance(raw.get("module"), dict):
        key = "model" if isinstance(raw.get("model"), dict) else "module"   # EVA-02 saves either
        sub, wrapper = raw[key], "model"   # MAE, DeiT / DeiT III, EVA-02 releases
        not_read = tuple(sorted(k for k in raw if k != key))
    else:
        sub = raw
    dropped: dict = {}
    if any(k.removeprefix("module.").startswith("visual.") for k in sub):
        return _clip(sub, source, family, torchscript, not_read)
    if any(k.startswith("params/img/") or k.startswith("img/") for k in sub):
        return _siglip_npz(sub, source, family, not_read)
    state, rest = _split(sub)
    dropped.update(rest)
    if hint == "dino" and any(k.startswith(("ca_head.", "c_head.", "p_head.")) for k in rest):
        hint = "selfpatch"     # SelfPatch saves DINO's training state with its own heads
    if wrapper == "train" and any(k.startswith(("dino_head.", "ibot_head.")) for k in rest):
        hint = "dinov2"        # DINOv2's teacher_checkpoint.pth
    if hint in (None, "dino") and "masked_embed" in state:
        hint = "ibot"          # only the iBOT student has the mask embedding
    if hint == "timm" and ("register_tokens" in state or "mask_token" in state):
        hint = None            # DINOv2's own layout, not timm's
    fam = family or hint or _family_of_bare(state, wrapper, source)
    layout = {"train": f"{fam}-train", "state_dict": f"{fam}-state_dict", "model": f"{fam}-model"}.get(wrapper, fam)
    if fam == "flsl" and wrapper == "train":
        layout = "flsl-authors"
    elif fam == "flsl":
        layout = "flsl-authors-backbone"
    elif fam in ("dino", "ibot", "timm") and wrapper in ("bare", "state_dict", "train"):
        layout = fam       # the names this project always logged for these
    return _convert(state, fam, layout, source, dropped, not_read)


def _family_of_bare(state: dict, wrapper: str, source: str) -> str:
    """The family of an encoder state dict found without a training-state hint (module
    docstring of docs/families.md, "Detection")."""
    keys = set(state)
    pos = state.get("pos_embed")
    if "storage_tokens" in keys or "rope_embed.periods" in keys:
        return "dinov3"
    if "rope.freqs_cos" in keys or ("blocks.0.attn.q_bias" in keys and any(
            k.startswith(("blocks.0.mlp.w12", "blocks.0.mlp.w1.")) for k in keys)):
        return "eva02"
    if "register_tokens" in keys or ("mask_token" in keys and state["mask_token"].ndim == 2
                                     and any(k.endswith("ls1.gamma") for k in keys)):
        return "dinov2"
    if any(re.match(r"blocks\.\d+\.gamma_1$", k) for k in keys):
        return "deit3"
    if pos is None or pos.ndim != 3:
        raise CheckpointError(f"{source}: no ViT encoder found (need patch_embed.proj.weight and a "
                              "[1, N, C] pos_embed)")
    n = int(pos.shape[1])
    slot = _is_square(n - 1) and not _is_square(n)
    has_head = "head.weight" in keys
    timm_only = has_head or "reg_token" in keys or any(k.endswith("ls1.gamma") for k in keys)
    if "cls_token" not in keys:
        if is_sincos(pos):
            return "flsl"
        if not any(k.startswith("norm.") for k in keys):
            return "selfpatch"  # SelfPatch's bare backbone: no class token, no final norm
        return "timm"
    if slot:
        if is_mae_table(pos):
            return "mae"
        if timm_only:
            return "timm"
        if wrapper == "state_dict":
            return "ibot"       # iBOT's extract_backbone_weights.py: {"state_dict": backbone}
        if wrapper == "train":
            return "dino"       # {"teacher": ...}: a DINO-style self-distillation state
        inside = f" inside {{{wrapper!r}: ...}}" if wrapper != "bare" else ""
        raise _ambiguous(source, ["dino", "timm"],
                         f"it holds a class-token ViT with a learned {n}-entry table (class slot) and "
                         f"no classifier head{inside}: DINO / iBOT backbones and timm or DeiT ViTs saved "
                         "without their head are identical in keys and shapes but resample positions "
                         "differently")
    # a class token beside a slot-free table
    if timm_only:
        return "timm"           # timm no_embed_class (FlexiViT style): the class token has no position
    if is_sincos(pos):
        return "flsl"           # the authors' release: DINO's ViT made class-token free
    raise _ambiguous(source, ["flsl", "timm"],
                     f"it holds a class token beside a {n}-entry table without a class slot and no "
                     "head: an FLSL backbone (class token unused) or a timm no_embed_class ViT "
                     "(class token used, without a position)")


def _convert(state: dict, fam: str, layout: str, source: str, dropped: dict, not_read: tuple) -> Read:
    """Rename a family's encoder keys to timm's and attach its run rule."""
    from timm.models.vision_transformer import _convert_dinov2, checkpoint_filter_fn
    kwargs, positions = dict(RUN_RULES[fam][0]), RUN_RULES[fam][1]
    state = dict(state)
    if fam == "dinov2":
        for k in [k for k in state if k.startswith(("dino_head", "ibot_head"))]:
            dropped[k] = HEAD_PREFIXES[k.split(".")[0] + "."]
        if "mask_token" in state:
            dropped["mask_token"] = UNUSED_KEYS["mask_token"]
        if "register_tokens" in state:
            kwargs.update(reg_tokens=int(state["register_tokens"].shape[1]), no_embed_class=True)
            positions = "timm"  # DINOv2's register models: bicubic to size, antialiased (= timm's)
        if any(".mlp.w12." in k for k in state):
            kwargs["mlp"] = "swiglu"
        state = _convert_dinov2(state, None)
    elif fam == "deit3":
        state = checkpoint_filter_fn(state, _shape_twin(state), adapt_layer_scale=True)
    elif fam == "dinov3":
        return _dinov3(state, source, layout, dropped, not_read)
    elif fam == "eva02":
        return _eva02(state, source, layout, dropped, not_read)
    state = _drop_unused(state, dropped)
    if any(k.endswith("ls1.gamma") for k in state):
        kwargs["init_values"] = 1.0   # LayerScale present; the values come from the file
    if "reg_token" in state and "reg_tokens" not in kwargs:
        kwargs.update(reg_tokens=int(state["reg_token"].shape[1]), no_embed_class=True)
    pos = state.get("pos_embed")
    if fam == "timm" and "cls_token" in state and pos is not None and pos.ndim == 3 \
            and not (_is_square(pos.shape[1] - 1) and not _is_square(pos.shape[1])):
        kwargs["no_embed_class"] = True
    return Read(state, fam, layout, kwargs, positions, dropped, not_read)


def _shape_twin(state: dict):
    """What timm's ``checkpoint_filter_fn`` reads from a model, taken from the file itself, so it
    only renames (it resamples kernels and tables whose shapes differ from the model's)."""
    from types import SimpleNamespace as NS
    return NS(patch_embed=NS(proj=NS(weight=state["patch_embed.proj.weight"])),
              pos_embed=state["pos_embed"], no_embed_class=True, num_prefix_tokens=1)


# ------------------------------------------------------------------------------------- DINOv3
_DINOV3_ARCH = {384: "vit_small_patch16_dinov3_qkvb", 768: "vit_base_patch16_dinov3_qkvb",
                1024: "vit_large_patch16_dinov3_qkvb"}


def _dinov3(state: dict, source: str, layout: str, dropped: dict, not_read: tuple) -> Read:
    """DINOv3's hub layout -> timm's ``Eva`` (``rope_type='dinov3'``) through timm's own filter:
    ``storage_tokens`` -> ``reg_token``, ``ls{1,2}.gamma`` -> ``gamma_{1,2}``, ``qkv.bias`` ->
    ``q_bias`` and ``v_bias`` (the key third is masked out by ``bias_mask``). What the filter
    drops is checked to be what timm recomputes: the RoPE periods (base 100) and the mask."""
    from types import SimpleNamespace as NS

    from timm.models.eva import checkpoint_filter_fn as eva_filter
    try:
        width = int(state["patch_embed.proj.weight"].shape[0])
        depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    except (KeyError, ValueError):
        raise CheckpointError(f"{source}: not a DINOv3 ViT (no patch embedding or blocks)") from None
    periods = state.get("rope_embed.periods")
    if periods is None:
        raise CheckpointError(f"{source}: DINOv3 layout without rope_embed.periods")
    d_head = 4 * int(periods.shape[0])
    heads = width // d_head
    want = 100.0 ** (2 * torch.arange(d_head // 4, dtype=torch.float64) / (d_head // 2))
    if not torch.allclose(periods.double(), want, rtol=1e-5, atol=0):
        raise CheckpointError(f"{source}: rope_embed.periods are not DINOv3's base-100 periods (min/max "
                              "period models are not supported)")
    for k in [k for k in state if k.endswith("qkv.bias_mask")]:
        mask = state[k]
        third = mask.shape[0] // 3
        if not (bool((mask[:third] == 1).all()) and bool((mask[third:2 * third] == 0).all())
                and bool((mask[2 * third:] == 1).all())):
            raise CheckpointError(f"{source}: {k} does not mask exactly the key bias")
    if any(".mlp.w1." in k for k in state):
        raise CheckpointError(f"{source}: DINOv3 SwiGLU models (S+, L+, H+, 7B) are not supported yet")
    for k in state:
        if k.endswith(("periods", "bias_mask")):
            dropped[k] = "recomputed (RoPE periods) / applied (key-bias mask)"
        elif k == "mask_token" or k.startswith("local_cls_norm"):
            dropped[k] = UNUSED_KEYS["mask_token"] if k == "mask_token" else "local-crop norm of pretraining"
    twin = NS(get_parameter=lambda name: None, patch_embed=NS(proj=NS(weight=state["patch_embed.proj.weight"])))
    converted = eva_filter(dict(state), twin)
    arch = _DINOV3_ARCH.get(width, "vit_base_patch16_dinov3_qkvb")
    kwargs = {}
    if width not in _DINOV3_ARCH:
        kwargs.update(embed_dim=width, num_heads=heads)
    default_depth = 24 if arch.startswith("vit_large") else 12
    if depth != default_depth:
        kwargs["depth"] = depth
    patch = int(state["patch_embed.proj.weight"].shape[-1])
    if patch != 16:
        kwargs["patch_size"] = patch
    storage = state.get("storage_tokens")
    n_storage = 0 if storage is None else int(storage.shape[1])
    kwargs["num_reg_tokens"] = n_storage   # stated even where the architecture's default (4) agrees
    fc1 = state.get("blocks.0.mlp.fc1.weight")
    if fc1 is not None and int(fc1.shape[0]) != 4 * width:
        kwargs["mlp_ratio"] = _exact_ratio(int(fc1.shape[0]), width)
    spec = EncoderSpec.make(arch, positions="timm", family="dinov3", **kwargs)
    return Read(converted, "dinov3", layout, {}, "timm", dropped, not_read, spec)


# ------------------------------------------------------------------------------------- EVA-02
def eva02_rope_table(grid: int, d_head: int, ref: int = 16, theta: float = 10000.0) -> torch.Tensor:
    """EVA-02's ``VisionRotaryEmbeddingFast`` cosine table ``[grid * grid, d_head]`` (positions
    ``arange(grid) / grid * ref``, frequencies per adjacent pair, rows then columns), to check a
    file's stored buffer against what timm recomputes."""
    dim = d_head // 2
    freqs = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64)[: dim // 2] / dim)
    t = torch.arange(grid, dtype=torch.float64) / grid * ref
    f = torch.repeat_interleave(t[:, None] * freqs[None], 2, dim=-1)          # [grid, dim]
    table = torch.cat([f[:, None, :].expand(grid, grid, dim), f[None, :, :].expand(grid, grid, dim)], dim=-1)
    return table.reshape(grid * grid, d_head).cos()


def _eva02(state: dict, source: str, layout: str, dropped: dict, not_read: tuple) -> Read:
    """EVA-02's MIM layout (``modeling_pretrain.py``) -> timm's ``Eva`` through timm's filter
    (``w12/w1/w2/w3/ffn_ln`` renamed, unfused ``q_bias`` / ``v_bias`` onto the projections), with
    the final ``norm`` kept as the final norm (the filter moves it to ``fc_norm`` for fine-tuning;
    the pretrained network applies it to every token) and the RoPE buffers checked against
    EVA-02's formula before timm recomputes them."""
    from types import SimpleNamespace as NS

    from timm.models.eva import checkpoint_filter_fn as eva_filter
    try:
        kernel, pos = state["patch_embed.proj.weight"], state["pos_embed"]
        depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    except (KeyError, ValueError):
        raise CheckpointError(f"{source}: not an EVA-02 ViT (no patch embedding, table or blocks)") from None
    width, patch = int(kernel.shape[0]), int(kernel.shape[-1])
    grid = int(round((pos.shape[1] - 1) ** 0.5))
    if grid * grid != pos.shape[1] - 1 or "cls_token" not in state:
        raise CheckpointError(f"{source}: EVA-02 keeps a class token and a 1 + N table; pos_embed has "
                              f"{pos.shape[1]} entries")
    heads = width // 64
    cos = state.get("rope.freqs_cos")
    if cos is not None and not torch.allclose(cos.double(), eva02_rope_table(grid, width // heads, ref=grid),
                                              atol=1e-5, rtol=0):
        raise CheckpointError(f"{source}: rope.freqs_cos is not EVA-02's table for its {grid}x{grid} grid")
    for k in state:
        if "rope." in k:
            dropped[k] = "recomputed (RoPE table)"
        elif k in ("mask_token",) or k.startswith("lm_head."):
            dropped[k] = UNUSED_KEYS["mask_token"] if k == "mask_token" else HEAD_PREFIXES["lm_head."]
    twin = NS(patch_embed=NS(proj=NS(weight=kernel)), pos_embed=pos)
    converted = eva_filter(dict(state), twin)
    converted = {("norm." + k[len("fc_norm."):] if k.startswith("fc_norm.") else k): v for k, v in converted.items()}
    converted = {k: v for k, v in converted.items() if k not in ("mask_token",) and not k.startswith("lm_head.")}
    fused = "blocks.0.attn.qkv.weight" in state
    arch = "eva02_small_patch14_224" if fused else "eva02_base_patch14_224"
    hidden = int(state["blocks.0.mlp.w12.weight"].shape[0]) // 2 if fused else int(state["blocks.0.mlp.w1.weight"].shape[0])
    kwargs = dict(embed_dim=width, num_heads=heads, depth=depth, mlp_ratio=_exact_ratio(hidden, width),
                  ref_feat_shape=[grid, grid], img_size=grid * patch, class_token=True)
    if patch != 14:
        kwargs["patch_size"] = patch
    if "blocks.0.gamma_1" in state:
        kwargs["init_values"] = 1.0
    spec = EncoderSpec.make(arch, positions="size", family="eva02", **kwargs)
    return Read(converted, "eva02", layout, {}, "size", dropped, not_read, spec)


# ------------------------------------------------------------------------------------- CLIP
def _clip(sub: dict, source: str, family: str | None, torchscript: bool, not_read: tuple) -> Read:
    from timm.models.vision_transformer import _convert_openai_clip
    sub = {k.removeprefix("module."): v for k, v in sub.items()}
    if family is None:
        if not torchscript:
            raise _ambiguous(source, ["openai-clip", "openclip"],
                             "it holds a CLIP image tower (visual.*) as a state dict: the activation "
                             "(QuickGELU for OpenAI's and OpenCLIP's -quickgelu models, GELU for other "
                             "OpenCLIP models) is not stored in the weights")
        family = "openai-clip"   # OpenAI's TorchScript archives
    if family not in ("openai-clip", "openclip"):
        raise CheckpointError(f"{source}: holds a CLIP image tower (visual.*), not a {family} encoder "
                              "(use --family openai-clip or openclip)")
    dropped = {k: "text tower" for k in sub if not k.startswith("visual.")}
    for k in sub:
        if k.startswith("visual.attn_pool") or k in ("visual.proj",):
            dropped[k] = "image-text projection" if k == "visual.proj" else "attention-pooling head"
    kept = {k: v for k, v in sub.items() if k.startswith("visual.") and k not in dropped}
    if "visual.conv1.bias" in kept:
        raise CheckpointError(f"{source}: visual.conv1 has a bias; CLIP's patch embedding has none")
    state = _convert_openai_clip(kept, None)
    state = {re.sub(r"\.ls_([12])\.gamma$", r".ls\1.gamma", k): v for k, v in state.items()}
    read = _convert(state, family, "openai-clip" if torchscript else f"{family}-visual", source, dropped, not_read)
    return read


# ------------------------------------------------------------------------------------- SigLIP
def _siglip_npz(sub: dict, source: str, family: str | None, not_read: tuple) -> Read:
    """big_vision's ``.npz`` (flattened flax parameters, ``params/img/...`` or ``img/...``) ->
    timm keys. Kernels are ``[in, out]`` (transposed), attention kernels ``[D, heads, d_h]``,
    the patch kernel ``[p, p, 3, D]`` (HWIO). The number of heads is read from the kernels."""
    if family not in (None, "siglip"):
        raise CheckpointError(f"{source}: holds a big_vision image tower, not a {family} encoder")
    prefix = "params/img/" if any(k.startswith("params/img/") for k in sub) else "img/"
    t = {k[len(prefix):]: torch.as_tensor(v) for k, v in sub.items() if k.startswith(prefix)}
    dropped = {k: "text tower / training state" for k in sub if not k.startswith(prefix)}
    dropped.update({prefix + k: "attention-pooling head (MAP)" for k in t if k.startswith("MAPHead_0/")})
    dropped.update({prefix + k: "projection / classification head" for k in t if k.startswith("head/")})

    def lin(w):  # flax Dense kernel [in, out] -> torch [out, in]
        return w.reshape(w.shape[0], -1).T.contiguous() if w.ndim == 2 else w
    try:
        kernel = t["embedding/kernel"]
        width = int(kernel.shape[-1])
        state = {"patch_embed.proj.weight": kernel.permute(3, 2, 0, 1).contiguous(),
                 "patch_embed.proj.bias": t["embedding/bias"], "pos_embed": t["pos_embedding"],
                 "norm.weight": t["Transformer/encoder_norm/scale"],
                 "norm.bias": t["Transformer/encoder_norm/bias"]}
        depth = 1 + max(int(m.group(1)) for k in t if (m := re.match(r"Transformer/encoderblock_(\d+)/", k)))
        heads = None
        for i in range(depth):
            b, o = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
            a = b + "MultiHeadDotProductAttention_0/"
            heads = int(t[a + "query/kernel"].shape[1])
            qkv_w = [t[a + f"{n}/kernel"].reshape(width, width).T for n in ("query", "key", "value")]
            qkv_b = [t[a + f"{n}/bias"].reshape(width) for n in ("query", "key", "value")]
            state.update({
                o + "norm1.weight": t[b + "LayerNorm_0/scale"], o + "norm1.bias": t[b + "LayerNorm_0/bias"],
                o + "attn.qkv.weight": torch.cat(qkv_w).contiguous(), o + "attn.qkv.bias": torch.cat(qkv_b),
                o + "attn.proj.weight": t[a + "out/kernel"].reshape(width, width).T.contiguous(),
                o + "attn.proj.bias": t[a + "out/bias"],
                o + "norm2.weight": t[b + "LayerNorm_1/scale"], o + "norm2.bias": t[b + "LayerNorm_1/bias"],
                o + "mlp.fc1.weight": lin(t[b + "MlpBlock_0/Dense_0/kernel"]),
                o + "mlp.fc1.bias": t[b + "MlpBlock_0/Dense_0/bias"],
                o + "mlp.fc2.weight": lin(t[b + "MlpBlock_0/Dense_1/kernel"]),
                o + "mlp.fc2.bias": t[b + "MlpBlock_0/Dense_1/bias"]})
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{source}: not a big_vision ViT image tower (missing or mis-shaped "
                              f"{err.args[0] if err.args else err})") from None
    read = _convert(state, "siglip", "siglip-big_vision", source, dropped, not_read)
    if heads != width // 64:
        read.kwargs["num_heads"] = heads
    return read


# ------------------------------------------------------------------------------------- shapes
_NAME_BY_WIDTH = {192: "tiny", 384: "small", 768: "base", 1024: "large"}


def infer_spec(state: dict, source: str = "checkpoint", class_token: bool = False,
               positions: str = "dino", family: str = "flsl", **rule) -> EncoderSpec:
    """The timm architecture of ``state`` from tensor shapes (width, depth, patch, MLP width,
    square stored grid of the position table without its class slot when ``class_token`` and
    not ``no_embed_class``), with the family's run rule ``rule`` (spec keywords).

    Heads are never stored in a ViT state dict; every family here uses 64 channels per head
    (DINO/DINOv2/MAE/DeiT/CLIP tables), except where ``rule`` says otherwise (SigLIP's kernels
    give it)."""
    import timm
    try:
        w = state["patch_embed.proj.weight"]
        pos = state["pos_embed"]
    except KeyError as err:
        raise CheckpointError(f"{source}: no ViT encoder found (missing key {err.args[0]!r})") from None
    width, patch = int(w.shape[0]), int(w.shape[-1])
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    if depth == 0:
        raise CheckpointError(f"{source}: no transformer blocks (keys blocks.<i>.*) found")
    slots = int(class_token) if not rule.get("no_embed_class") else 0
    n = pos.shape[1] - slots
    if not _is_square(n):
        raise CheckpointError(f"{source}: pos_embed has {pos.shape[1]} entries: not a square grid "
                              f"{'after its class slot ' if slots else ''}")
    grid = int(round(n ** 0.5))
    if width % 64 and width not in _NAME_BY_WIDTH:
        raise CheckpointError(f"{source}: ViT width {width} is not a multiple of the 64 channels per "
                              "head of the supported families")
    kwargs = dict(rule)
    if width in _NAME_BY_WIDTH:
        arch = f"vit_{_NAME_BY_WIDTH[width]}_patch{patch}_224"
        if not timm.is_model(arch):  # e.g. no tiny/8 in timm: same family, patch size overridden
            arch = f"vit_{_NAME_BY_WIDTH[width]}_patch16_224"
            kwargs["patch_size"] = patch
        default_depth = 24 if width == 1024 else 12
    else:
        arch = "vit_base_patch16_224"
        kwargs.setdefault("num_heads", width // 64)
        kwargs.update(embed_dim=width)
        if patch != 16:
            kwargs["patch_size"] = patch
        default_depth = 12
    if "num_heads" in kwargs and width in _NAME_BY_WIDTH and kwargs["num_heads"] == {192: 3}.get(width, width // 64):
        kwargs.pop("num_heads")
    if depth != default_depth:
        kwargs["depth"] = depth
    if grid * patch != 224:
        kwargs["img_size"] = grid * patch
    fc1 = state.get("blocks.0.mlp.fc1.weight")
    if fc1 is not None and int(fc1.shape[0]) != 4 * width:
        kwargs["mlp_ratio"] = _exact_ratio(int(fc1.shape[0]), width)
    return EncoderSpec.make(arch, positions=positions, family=family, class_token=class_token, **kwargs)


def _exact_ratio(hidden: int, width: int) -> float:
    """A float ``r`` with ``int(width * r) == hidden`` (timm computes the MLP width that way)."""
    r = hidden / width
    while int(width * r) < hidden:
        r = float(torch.nextafter(torch.tensor(r, dtype=torch.float64), torch.tensor(1e9, dtype=torch.float64)))
    return r


__all__ = ["read", "Read", "RUN_RULES", "AmbiguousFamily", "infer_spec", "summarize_dropped",
           "is_sincos", "is_mae_table", "HEAD_PREFIXES"]
