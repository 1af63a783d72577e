"""ViT encoders as the network each checkpoint family was trained as.

The FLSL encoder is timm's VisionTransformer without a class token, with a fixed 2-D sine-cosine
position embedding, and the final LayerNorm applied to the token map. The other checkpoint
families (docs/families.md) are the same timm model built with their own settings -- class
token, registers, LayerScale, activation, norms -- or timm's ``Eva`` for the RoPE families
(DINOv3, EVA-02). Class, register and storage tokens take part in attention and are dropped from
every output (:func:`encode`, :func:`block_outputs`: patch tokens only).

Architectures are named by the timm model they are built from (``vit_small_patch16_224``,
``vit_small_patch8_224``, ``vit_base_patch16_224``, ...) plus keyword overrides (``depth``,
``img_size``, ``class_token``...), the family's position rule (:data:`POSITION_RULES`) and the
family. :class:`EncoderSpec` carries them, so an exported checkpoint records exactly what to
build and how it runs.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import timm
import torch

from core.errors import FLSLError
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

#: keyword arguments every FLSL encoder is built with (timm VisionTransformer arguments)
FIXED_TIMM_KWARGS = dict(class_token=False, global_pool="", num_classes=0, fc_norm=False,
                         dynamic_img_size=True)
#: the same for RoPE families built on timm's ``Eva`` (DINOv3): no head, any input size
FIXED_EVA_KWARGS = dict(global_pool="", num_classes=0, use_fc_norm=False, dynamic_img_size=True)


def is_eva(arch: str) -> bool:
    """Whether the timm architecture is an ``Eva`` (RoPE ViTs: DINOv3)."""
    return "dinov3" in arch or arch.startswith("eva")


#: How a position table stored for the trained grid reaches another token grid (same rule in
#: pretraining, the dense backbone, DAVIS, figures and conversion):
POSITION_RULES = {
    # DINO's ``interpolate_pos_encoding``, which iBOT, SelfPatch, DINOv2 (without registers) and the FLSL authors' code (their
    # class-token-free variant, in pretraining and in their detection backbone) all use
    "dino": "bicubic with scale factor (g + 0.1) / n per axis, no antialiasing",
    # timm's own ViT (``dynamic_img_size`` / checkpoint loading): timm.layers.resample_abs_pos_embed
    "timm": "bicubic to the target size, antialiased (timm.layers.resample_abs_pos_embed)",
    # the load-time resize of MAE, DeiT III and EVA-02 fine-tuning (their networks take one size)
    "size": "bicubic to the target size, no antialiasing",
    # big_vision's resample_posemb (scipy.ndimage.zoom, order 1): SigLIP
    "corners": "bilinear to the target size with corners aligned (big_vision's zoom)",
}
DEFAULT_POSITIONS = "dino"


#: spec keywords that are not timm arguments as such, translated when the model is built:
#: ``norm_eps`` (LayerNorm epsilon of every norm) and ``mlp`` (``"swiglu"``: timm's SwiGLUPacked
#: with SiLU, which computes DINOv2's fused SwiGLU)
SPEC_ONLY_KWARGS = ("norm_eps", "mlp")
#: string values a spec keyword may hold (everything else is a number or a list of numbers)
SPEC_STRINGS = {"act_layer": ("gelu", "gelu_tanh", "quick_gelu", "silu"), "mlp": ("swiglu",)}


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What to build: a timm architecture name, keyword overrides, the position rule and the
    checkpoint family whose network it is (JSON-serialisable). ``kwargs`` holds
    ``("class_token", True)`` for class-token families."""

    arch: str = "vit_small_patch16_224"
    kwargs: tuple = ()  # sorted (key, value) pairs, e.g. (("depth", 4), ("img_size", 112))
    positions: str = DEFAULT_POSITIONS  # a key of POSITION_RULES
    family: str = "flsl"  # a key of pretrain.families.FAMILIES (input normalisation, logs)

    def __post_init__(self):
        if self.positions not in POSITION_RULES:
            raise ValueError(f"unknown position rule {self.positions!r} (known: {', '.join(POSITION_RULES)})")

    @classmethod
    def make(cls, arch: str, positions: str = DEFAULT_POSITIONS, family: str = "flsl", **kwargs) -> "EncoderSpec":
        if not kwargs.get("class_token", True):
            kwargs.pop("class_token")  # False is the default: one spelling per architecture
        return cls(arch, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items())),
                   positions, family)

    @property
    def class_token(self) -> bool:
        """Whether the encoder prepends a class token (it never appears in the outputs)."""
        kw = dict(self.kwargs)
        return bool(kw.get("class_token", is_eva(self.arch)))

    @property
    def extra_tokens(self) -> int:
        """Register / storage tokens between the class token and the patches (never in outputs)."""
        kw = dict(self.kwargs)
        return int(kw.get("reg_tokens", kw.get("num_reg_tokens", 0)))

    def timm_kwargs(self, **extra) -> dict:
        fixed = FIXED_EVA_KWARGS if is_eva(self.arch) else FIXED_TIMM_KWARGS
        kwargs = {**fixed, **dict(self.kwargs), **extra}
        return _timm_layers(kwargs)

    @property
    def rope(self) -> bool:
        return is_eva(self.arch)

    def describe(self) -> str:
        """How the encoder runs, in words (for logs and reports)."""
        kw = dict(self.kwargs)
        token = ("class token prepended, dropped from the outputs" if self.class_token
                 else "no class token")
        if self.extra_tokens:
            token += f"; {self.extra_tokens} register tokens, dropped from the outputs"
        if self.class_token and kw.get("no_embed_class"):
            token += "; positions added to the patches only"
        parts = [token]
        if "init_values" in kw:
            parts.append("LayerScale")
        if kw.get("mlp") == "swiglu":
            parts.append("SwiGLU MLP")
        if kw.get("act_layer"):
            parts.append(f"activation {kw['act_layer']}")
        if kw.get("pre_norm"):
            parts.append("norm before the blocks")
        if kw.get("final_norm") is False or kw.get("final_norm") == 0:
            parts.append("no final norm")
        if self.rope:
            parts.append("rotary positions (RoPE) on the patch tokens, any grid")
        else:
            parts.append(f"positions for other grids: {self.positions} rule ({POSITION_RULES[self.positions]})")
        return "; ".join(parts)

    def to_json(self) -> str:
        d = {"arch": self.arch, "kwargs": dict(self.kwargs)}
        if self.class_token or self.positions != DEFAULT_POSITIONS:
            d["positions"] = self.positions  # FLSL specs keep the JSON they always had
        if self.family != "flsl":
            d["family"] = self.family
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EncoderSpec":
        d = json.loads(text)
        return cls.make(d["arch"], positions=d.get("positions", DEFAULT_POSITIONS),
                        family=d.get("family", "flsl"), **d.get("kwargs", {}))


def _timm_layers(kwargs: dict) -> dict:
    """Spec keywords -> timm ``VisionTransformer`` arguments (layer classes for the keywords of
    :data:`SPEC_ONLY_KWARGS`)."""
    import functools

    from timm.layers import SwiGLUPacked
    kwargs = dict(kwargs)
    eps = kwargs.pop("norm_eps", None)
    if eps is not None:
        kwargs["norm_layer"] = functools.partial(nn.LayerNorm, eps=float(eps))
    if kwargs.pop("mlp", None) == "swiglu":
        # DINOv2's SwiGLUFFNFused: w12 -> halves x1, x2 -> silu(x1) * x2 -> w3 (timm's packed layout)
        kwargs["mlp_layer"] = SwiGLUPacked
        kwargs["act_layer"] = "silu"
    for key in ("img_size", "patch_size"):
        if isinstance(kwargs.get(key), (tuple, list)):
            kwargs[key] = tuple(kwargs[key])
    return kwargs


def vit_arguments() -> frozenset[str]:
    """Keyword arguments timm's ``VisionTransformer`` takes: the overrides an :class:`EncoderSpec`
    may carry (checked in configs and in exported files' metadata)."""
    import inspect
    from timm.models.eva import Eva
    names = set(inspect.signature(VisionTransformer.__init__).parameters) | set(inspect.signature(Eva.__init__).parameters)
    return frozenset(names - {"self"}) | set(SPEC_ONLY_KWARGS)


def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE / MoCo v3 layout).

    Returns ``[1, grid_h * grid_w, dim]``: the first half of the channels encodes the column (x)
    index, the second half the row (y) index, each as ``[sin(w * pos), cos(w * pos)]`` with
    ``w_k = 1 / temperature ** (k / (dim / 4))``.
    """
    if dim % 4:
        raise ValueError(f"embedding width {dim} must be divisible by 4 for a 2-D sin-cos embedding")
    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64),
                            torch.arange(grid_w, dtype=torch.float64), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))

    def enc(pos):
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)

    return torch.cat([enc(xs), enc(ys)], dim=1).float()[None]


def resample_positions(pos_embed: torch.Tensor, old_grid: Sequence[int], new_grid: Sequence[int],
                       num_prefix: int, rule: str) -> torch.Tensor:
    """Position embedding for a ``new_grid`` token grid.

    ``pos_embed`` ``[1, P + oh * ow, C]`` (``P = num_prefix`` class slots first, then the table of
    the ``old_grid`` ``(oh, ow)`` row-major); returns ``[1, P + nh * nw, C]``, the input itself when
    the grids are equal. ``rule`` (:data:`POSITION_RULES`): ``"dino"`` resizes the table with
    ``F.interpolate(mode="bicubic", scale_factor=((nh + 0.1) / oh, (nw + 0.1) / ow))`` (no
    antialiasing; source coordinates follow the scale factor, not the sizes), ``"timm"`` calls
    ``timm.layers.resample_abs_pos_embed``. Class slots are kept unchanged.
    """
    oh, ow = (int(v) for v in old_grid)
    nh, nw = (int(v) for v in new_grid)
    if (nh, nw) == (oh, ow):
        return pos_embed
    if rule == "timm":
        return resample_abs_pos_embed(pos_embed, new_size=[nh, nw], old_size=[oh, ow],
                                      num_prefix_tokens=num_prefix)
    dim = pos_embed.shape[-1]
    table = pos_embed[:, num_prefix:].reshape(1, oh, ow, dim).permute(0, 3, 1, 2)
    if rule == "dino":
        # the 0.1 keeps floor(n * factor) at the wanted size despite rounding (DINO's comment)
        table = F.interpolate(table, scale_factor=((nh + 0.1) / oh, (nw + 0.1) / ow), mode="bicubic",
                              align_corners=False)
    elif rule == "size":
        table = F.interpolate(table, size=(nh, nw), mode="bicubic", align_corners=False)
    elif rule == "corners":
        table = F.interpolate(table, size=(nh, nw), mode="bilinear", align_corners=True)
    else:
        raise ValueError(f"unknown position rule {rule!r}")
    if tuple(table.shape[-2:]) != (nh, nw):
        raise RuntimeError(f"position table resized to {tuple(table.shape[-2:])}, expected {(nh, nw)}")
    table = table.permute(0, 2, 3, 1).reshape(1, nh * nw, dim)
    return torch.cat([pos_embed[:, :num_prefix], table], dim=1)


class RuledVisionTransformer(VisionTransformer):
    """timm's ``VisionTransformer`` whose position step follows the family's rule
    (``self.flsl_spec.positions``), so that every forward (``forward_features``,
    ``forward_intermediates``, :func:`block_outputs`) computes the source family's network."""

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``[B, h, w, C]`` (or ``[B, N, C]`` on the stored grid) ->
        ``[B, P + h*w, C]``: ``[cls | registers | patches]`` with the positions of the ``h x w``
        grid added to the patches and, when the table has a class slot (not ``no_embed_class``),
        to the class token. Registers exist only with ``no_embed_class`` (build_encoder) and get
        no position, as in DINOv2."""
        if x.ndim == 4:
            b, h, w, c = x.shape
            x = x.reshape(b, h * w, c)
        else:
            h, w = self.patch_embed.grid_size
        slots = 0 if self.no_embed_class else self.num_prefix_tokens
        pos = resample_positions(self.pos_embed, self.patch_embed.grid_size, (h, w), slots,
                                 self.flsl_spec.positions)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if not prefix:       # FLSL, SelfPatch: the positions added to the patches, nothing else
            x = x + pos
        elif self.no_embed_class:
            x = torch.cat([*prefix, x + pos], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + pos
        return self.pos_drop(x)


def _ruled_eva():
    from timm.models.eva import Eva

    class RuledEva(Eva):
        """timm's ``Eva`` (RoPE on the patch tokens; class and storage tokens unrotated) with the
        family's rule for an absolute table, when it has one."""

        def _pos_embed(self, x):
            if self.pos_embed is None or x.ndim != 4:
                return super()._pos_embed(x)
            b, h, w, c = x.shape
            slots = 0 if self.no_embed_class else self.num_prefix_tokens
            pos = resample_positions(self.pos_embed, self.patch_embed.grid_size, (h, w), slots,
                                     self.flsl_spec.positions)
            x = x.reshape(b, h * w, c)
            prefix = [t.expand(b, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
            x = torch.cat([*prefix, x + pos], dim=1) if self.no_embed_class else torch.cat([*prefix, x], dim=1) + pos
            rope = self.rope.get_embed(shape=(h, w)) if self.rope is not None else None
            return self.pos_drop(x), rope
    return RuledEva


def build_encoder(spec: EncoderSpec | str = "vit_small_patch16_224", drop_path_rate: float = 0.0,
                  **overrides) -> nn.Module:
    """Build the encoder (a timm ``VisionTransformer`` running the spec's position rule).

    ``model.forward_features(x)`` maps images ``[B, 3, H, W]`` (H, W multiples of the patch size)
    to the tokens after the final norm (if the family has one) ``[B, P + (H/p) * (W/p), C]``
    (``P = model.num_prefix_tokens`` class and register tokens first; :func:`encode` drops them).
    The position embedding, stored for the ``img_size / patch`` grid, is resampled for other grids
    by the spec's rule. FLSL encoders (class-token free) get the fixed sine-cosine table, not
    trained; other families keep timm's initialisation until weights are loaded.
    """
    if isinstance(spec, str):
        spec = EncoderSpec.make(spec, **overrides)
    elif overrides:
        spec = EncoderSpec.make(spec.arch, positions=spec.positions, family=spec.family,
                                **{**dict(spec.kwargs), **overrides})
    try:
        model = timm.create_model(spec.arch, pretrained=False,
                                  **spec.timm_kwargs(drop_path_rate=drop_path_rate))
    except RuntimeError as err:  # unknown model name
        raise ValueError(f"unknown encoder architecture {spec.arch!r}: {err}") from None
    if spec.rope:
        model.__class__ = _ruled_eva()
        model.flsl_spec = spec
        return model
    if type(model) is not VisionTransformer or model.pos_embed is None:
        raise ValueError(f"{spec.arch}: only timm VisionTransformers with a learned or fixed "
                         "position table, or RoPE Eva models, are supported")
    if model.reg_token is not None and not model.no_embed_class:
        raise ValueError(f"{spec.arch}: register tokens need no_embed_class=True (registers carry no "
                         "position; a class slot is folded into the class token when converting)")
    model.__class__ = RuledVisionTransformer  # same module, the family's position step
    model.flsl_spec = spec
    if spec.family == "flsl" and not spec.class_token:
        gh, gw = model.patch_embed.grid_size
        with torch.no_grad():
            model.pos_embed.copy_(sincos_pos_embed_2d(gh, gw, model.embed_dim))
        model.pos_embed.requires_grad_(False)
    return model


class FeatureError(FLSLError):
    """An encoder produced NaN or infinite features (a diverged checkpoint, or an overflow)."""


def check_features(x: torch.Tensor, model: nn.Module, layer: str) -> torch.Tensor:
    """``x`` unchanged if every value is finite; else :class:`FeatureError` naming the
    checkpoint the encoder was loaded from (``model.flsl_source``) and ``layer``."""
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).sum().item()
        source = getattr(model, "flsl_source", "the encoder")
        raise FeatureError(f"{source}: {layer} output holds {bad} NaN or infinite value(s) out of "
                           f"{x.numel()} ({x.dtype}; a diverged checkpoint or an overflow: in half "
                           "precision, run in float32)")
    return x


def patch_size(model: nn.Module) -> int:
    """Patch side in pixels."""
    return int(model.patch_embed.patch_size[0])


def encode(model: nn.Module, images: torch.Tensor, check_finite: bool = True) -> torch.Tensor:
    """Patch tokens after the final norm (if the family has one) ``[B, N, C]`` for images
    ``[B, 3, H, W]`` (class and register tokens, if any, took part in the attention and are
    dropped here). Non-finite features raise :class:`FeatureError` naming the first block whose
    output is not finite.

    ``check_finite=False`` is for the training step: the test reads a value back to the host on
    every forward (and breaks a compiled graph); the trainer checks its loss once per log
    interval instead."""
    out = model.forward_features(images)[:, model.num_prefix_tokens:]
    if check_finite and not bool(torch.isfinite(out).all()):
        block_outputs(model, images, range(len(model.blocks)))   # names the first bad block
        check_features(out, model, "final norm")
    return out


def block_outputs(model: nn.Module, images: torch.Tensor, indices: Sequence[int],
                  norm_last: bool = False, check_finite: bool = True) -> list[torch.Tensor]:
    """Outputs of the blocks listed in ``indices`` (0-based) as ``[B, N, C]`` patch-token maps
    (class and register tokens, if any, are in the sequence and dropped from the outputs).
    A non-finite output raises :class:`FeatureError` naming the checkpoint and the block;
    ``check_finite=False`` skips the test (a training step, as in :func:`encode`).

    ``norm_last`` applies the final LayerNorm to the output of the last block (index depth-1).
    """
    x = model.patch_embed(images)
    rope = None
    if model.flsl_spec.rope:   # Eva: positions rotate q and k inside every block
        x, rope = model._pos_embed(x)
    else:
        x = model._pos_embed(x)
        x = model.patch_drop(x)
    x = model.norm_pre(x)
    wanted = set(indices)
    outs = {}
    last = len(model.blocks) - 1
    prefix = model.num_prefix_tokens
    for i, blk in enumerate(model.blocks):
        x = blk(x) if rope is None else blk(x, rope=rope)
        if i in wanted:
            out = (model.norm(x) if (norm_last and i == last) else x)[:, prefix:]
            outs[i] = check_features(out, model, f"block {i}") if check_finite else out
        if i >= max(wanted):
            break
    return [outs[i] for i in indices]


__all__ = ["EncoderSpec", "POSITION_RULES", "DEFAULT_POSITIONS", "resample_positions",
           "RuledVisionTransformer", "build_encoder", "encode", "block_outputs", "patch_size",
           "FeatureError", "check_features",
           "sincos_pos_embed_2d"]
