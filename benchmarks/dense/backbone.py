"""The FLSL ViT backbone for MMDetection and MMSegmentation (one implementation, two registries).

The encoder is :func:`pretrain.encoder.build_encoder` built as the network the pretrained checkpoint
was trained as, whatever its family (docs/families.md): class-token free for FLSL and SelfPatch,
with its class token (and registers) for DINO, iBOT, DINOv2, MAE, DeiT III, CLIP, timm files, RoPE
for DINOv3 and EVA-02; prefix tokens take part in attention and are dropped from the outputs, and
the family's position rule serves grids other than the stored one. The selected block outputs
``[B, N, C]`` (patch tokens) become ``[B, C, H/p, W/p]`` maps and go through the multi-scale
adapter (:mod:`benchmarks.dense.adapter`: strides 4/8/16/32 from any patch size) or, for the
authors' segmentation layout, stay at stride ``p``.

Config usage (both frameworks)::

    custom_imports = dict(imports=['benchmarks.dense'], allow_failed_imports=False)
    model = dict(backbone=dict(
        type='FLSLViT', arch='vit_small_patch16_224', out_indices=(3, 5, 7, 11),
        drop_path_rate=0.05, adapter='multiscale',
        init_cfg=dict(type='Pretrained', checkpoint='path/to/encoder.safetensors')))

How the encoder runs (architecture when ``arch`` is omitted, family, class token, registers,
stored grid, position rule ...) is read from the checkpoint named by ``init_cfg`` when the backbone
is built (it decides which parameters exist), unless ``class_token`` is given;
:func:`benchmarks.dense.runner.prepare_train` writes the values it found (:data:`STRUCTURE_KEYS`)
into the config, so the trained detector's saved config records them for testing. Pretrained weights
are loaded strictly by :meth:`FLSLViT.init_weights` (never by MMEngine's non-strict
``PretrainedInit``): every encoder tensor must be present with the right shape, the patch size and
the number of attention heads must be the checkpoint's, else a
:class:`pretrain.checkpoint.CheckpointError` lists the problems. Any format accepted by
:func:`pretrain.checkpoint.load_encoder_weights` works (docs/families.md); ``family=`` settles a
file whose content fits several families.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule

from pretrain.checkpoint import CheckpointError, LoadedEncoder, load_encoder_weights, load_strict
from pretrain.encoder import POSITION_RULES, EncoderSpec, block_outputs, build_encoder, patch_size

from .adapter import MultiScaleAdapter, SingleScaleLayout

ADAPTERS = ("multiscale", "single_scale")


def num_heads_of(spec: EncoderSpec) -> int:
    """Attention heads of the architecture ``spec`` describes (timm's default unless overridden)."""
    kwargs = dict(spec.kwargs)
    if "num_heads" in kwargs:
        return int(kwargs["num_heads"])
    probe = build_encoder(spec, depth=1)  # one block is enough to read the head count
    return int(probe.blocks[0].attn.num_heads)


#: backbone arguments that record how the encoder runs (written into the saved config)
STRUCTURE_KEYS = ("arch", "family", "class_token", "positions", "encoder_kwargs")


def checkpoint_structure(path: str, which: str = "teacher", family: str | None = None) -> dict:
    """How the encoder in ``path`` runs, as FLSLViT arguments: ``arch``, ``family``,
    ``class_token``, ``positions`` and ``encoder_kwargs`` (the rest of its spec: stored grid as
    ``img_size``, registers, LayerScale, activation, norms ...)."""
    spec = load_encoder_weights(path, which=which, family=family).spec
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.kwargs if k != "class_token"}
    kwargs.setdefault("img_size", 224)
    return dict(arch=spec.arch, family=spec.family, class_token=spec.class_token,
                positions=spec.positions, encoder_kwargs=kwargs)


def resolve_structure(backbone: dict) -> dict:
    """``backbone`` (an FLSLViT config dict) with :data:`STRUCTURE_KEYS` filled in from its
    ``init_cfg`` checkpoint when ``class_token`` is not set and the file exists (unchanged
    otherwise). The config's own ``encoder_kwargs`` (e.g. ``drop_path_rate`` is separate) are
    kept where the checkpoint does not set them; a given ``arch`` must agree with the file's
    width and patch size."""
    backbone = dict(backbone)
    init = backbone.get("init_cfg") or {}
    path = init.get("checkpoint") if isinstance(init, dict) else None
    if backbone.get("class_token") is not None or not path or not Path(path).is_file():
        return backbone
    found = checkpoint_structure(path, init.get("which", "teacher"), backbone.get("family"))
    given = backbone.get("arch")
    if given and given != found["arch"]:
        want, got = build_encoder(given, depth=1), build_encoder(EncoderSpec.make(
            found["arch"], **{k: v for k, v in found["encoder_kwargs"].items() if k != "depth"}), depth=1)
        if (want.embed_dim, patch_size(want)) != (got.embed_dim, patch_size(got)):
            raise CheckpointError(f"{path}: holds a ViT of width {got.embed_dim} and patch {patch_size(got)}, "
                                  f"the backbone's arch {given} has width {want.embed_dim} and patch "
                                  f"{patch_size(want)} (omit arch to take the checkpoint's)")
    backbone.update({k: found[k] for k in ("arch", "family", "class_token", "positions")})
    backbone["encoder_kwargs"] = {**dict(backbone.get("encoder_kwargs") or {}), **found["encoder_kwargs"]}
    return backbone


class FLSLViT(BaseModule):
    """ViT encoder + multi-scale adapter. Input ``[B, 3, H, W]`` (pixels, any size: padded on the
    right/bottom to a multiple of the patch size), output a tuple of four ``[B, C, h_i, w_i]`` maps.

    Args:
        arch: timm architecture, e.g. ``vit_small_patch16_224``; ``None`` (default) takes the
            ``init_cfg`` checkpoint's (``vit_small_patch16_224`` without a checkpoint).
        out_indices: four 0-based block indices whose outputs feed the pyramid.
        drop_path_rate: stochastic depth rate of the last block (timm's linear rule).
        frozen_stages: -1 trains everything; 0 freezes the patch and position embeddings; ``k > 0``
            also freezes blocks ``0..k-1``.
        adapter: ``'multiscale'`` (strides 4/8/16/32 from any patch size, docs/dense.md) or
            ``'single_scale'`` (the authors' released segmentation layout: all four maps at the
            patch stride).
        norm: BatchNorm of the adapter: ``'auto'`` (SyncBN in multi-GPU jobs, BN otherwise),
            ``'BN'`` or ``'SyncBN'``.
        encoder_kwargs: extra timm arguments (e.g. ``dict(depth=2)`` for tiny test models;
            ``img_size`` sets the stored position grid).
        train_pos_embed: fine-tune the position embedding (weight decay 0 through the config's
            ``paramwise_cfg``); it is fixed sine-cosine during FLSL pretraining.
        class_token: whether the encoder prepends a class token; ``None`` (default) takes it and
            the rest of the run rule (family, positions, registers, LayerScale ...) from the
            ``init_cfg`` checkpoint (class-token free, DINO rule, when there is none).
        positions: position rule for other grids (:data:`pretrain.encoder.POSITION_RULES`);
            ``None``: with ``class_token``.
        family: checkpoint family (docs/families.md) for a file whose content fits several
            (e.g. ``'dino'`` for a bare DINO backbone); ``None``: decided from the content.
        num_heads: attention heads; ``None`` (default) as trained. The FLSL authors' and
            SelfPatch's COCO configs built ViT-S with 8 heads (384 = 8 x 48) although it was
            trained with 6 x 64: ``num_heads=8`` reproduces that protocol, with a warning.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, which='teacher')`` or None (random
            encoder, with a warning).
    """

    def __init__(self, arch: str | None = None, out_indices: Sequence[int] = (3, 5, 7, 11),
                 drop_path_rate: float = 0.0, frozen_stages: int = -1, adapter: str = "multiscale",
                 norm: str = "auto", encoder_kwargs: dict | None = None, train_pos_embed: bool = True,
                 class_token: bool | None = None, positions: str | None = None,
                 family: str | None = None, num_heads: int | None = None,
                 init_cfg: dict | None = None):
        if init_cfg is not None and (not isinstance(init_cfg, dict) or init_cfg.get("type") != "Pretrained"):
            raise ValueError(f"FLSLViT init_cfg must be dict(type='Pretrained', checkpoint=PATH) or "
                             f"None, got {init_cfg!r}")
        if positions is not None and positions not in POSITION_RULES:
            raise ValueError(f"unknown positions {positions!r}: choose one of {tuple(POSITION_RULES)}")
        super().__init__(init_cfg=init_cfg)
        resolved = resolve_structure(dict(arch=arch, family=family, class_token=class_token,
                                          positions=positions, encoder_kwargs=encoder_kwargs,
                                          init_cfg=init_cfg))
        kwargs = dict(resolved["encoder_kwargs"] or {})
        self.family = resolved.get("family") or "flsl"
        self.arch = resolved.get("arch") or "vit_small_patch16_224"
        spec = EncoderSpec.make(self.arch, positions=resolved["positions"] or "dino", family=self.family,
                                class_token=bool(resolved["class_token"]), **kwargs)
        self.trained_heads = num_heads_of(spec)
        self.num_heads = int(num_heads) if num_heads is not None else self.trained_heads
        if self.num_heads != self.trained_heads:
            spec = EncoderSpec.make(spec.arch, positions=spec.positions, family=spec.family,
                                    **{**dict(spec.kwargs), "num_heads": self.num_heads})
        self.encoder = build_encoder(spec, drop_path_rate=drop_path_rate)
        self.patch_size = patch_size(self.encoder)
        self.embed_dim = int(self.encoder.embed_dim)
        if self.num_heads != self.trained_heads:
            print_log(f"FLSLViT: num_heads={self.num_heads} splits the {self.embed_dim} channels "
                      f"{self.num_heads} x {self.embed_dim // self.num_heads} instead of the "
                      f"{self.trained_heads} x {self.embed_dim // self.trained_heads} the encoder was "
                      "trained with: the FLSL authors' / SelfPatch COCO protocol, NOT the network as "
                      "trained", logger="current", level=logging.WARNING)
        depth = len(self.encoder.blocks)
        self.out_indices = tuple(int(i) for i in out_indices)
        if len(self.out_indices) != 4 or any(not 0 <= i < depth for i in self.out_indices):
            raise ValueError(f"out_indices must be four block indices in [0, {depth - 1}], "
                             f"got {tuple(out_indices)}")
        if adapter == "multiscale":
            self.adapter = MultiScaleAdapter(self.embed_dim, self.patch_size, norm)
        elif adapter == "single_scale":
            self.adapter = SingleScaleLayout(self.patch_size)
        else:
            raise ValueError(f"unknown adapter {adapter!r}: choose one of {ADAPTERS}")
        self.strides = self.adapter.strides
        self.frozen_stages = int(frozen_stages)
        if self.encoder.pos_embed is not None:   # RoPE families (DINOv3) have no table
            self.encoder.pos_embed.requires_grad_(bool(train_pos_embed))
        # Parameters no output depends on (the final LayerNorm, blocks after the last index) are
        # still loaded (strictness) but frozen, so distributed training sees no unused parameter.
        for p in self.encoder.norm.parameters():
            p.requires_grad_(False)
        for blk in self.encoder.blocks[max(self.out_indices) + 1:]:
            blk.requires_grad_(False)
        self._freeze()

    # ------------------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> list[torch.nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.encoder.patch_embed, *self.encoder.blocks[:self.frozen_stages]]

    def _freeze(self) -> None:
        if self.frozen_stages >= 0:
            if self.encoder.pos_embed is not None:
                self.encoder.pos_embed.requires_grad_(False)
            for token in (self.encoder.cls_token, self.encoder.reg_token):
                if token is not None:
                    token.requires_grad_(False)
        for m in self._frozen_modules():
            m.eval()
            m.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self._frozen_modules():
            m.eval()
        return self

    # ------------------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Load the encoder from ``init_cfg['checkpoint']`` strictly; the adapter keeps PyTorch's
        default initialisation. Deliberately does not call timm's ``init_weights`` (it would
        overwrite the sine-cosine position embedding) nor MMEngine's non-strict loader."""
        cfg = dict(self.init_cfg or {})
        checkpoint = cfg.get("checkpoint")
        if checkpoint:
            self.load_pretrained(checkpoint, which=cfg.get("which", "teacher"), family=self.family)
        else:
            print_log("FLSLViT: no pretrained checkpoint (init_cfg.checkpoint is empty): the "
                      "encoder starts from random weights", logger="current", level=logging.WARNING)
        self._is_init = True

    def load_pretrained(self, path: str, which: str = "teacher", family: str | None = None) -> LoadedEncoder:
        """Load encoder weights from ``path`` (any supported family); returns what was read.

        Raises :class:`CheckpointError` on a patch size or head count different from this
        backbone's (unless ``num_heads`` was set on purpose), on a checkpoint that runs differently
        from the encoder built (class token, registers, stored grid, position rule ...: build the
        backbone from the checkpoint through ``init_cfg``), or on missing / unexpected /
        mis-shaped encoder tensors.
        """
        loaded = load_encoder_weights(path, which=which, family=family)
        if loaded.patch_size != self.patch_size:
            raise CheckpointError(f"{path}: patch size {loaded.patch_size} in the checkpoint, but the "
                                  f"backbone {self.arch} has patch size {self.patch_size}")
        own_heads = int(self.encoder.blocks[0].attn.num_heads)
        try:
            ckpt_heads = num_heads_of(loaded.spec)
        except ValueError as err:
            raise CheckpointError(f"{path}: cannot build the checkpoint's architecture: {err}") from None
        if ckpt_heads != own_heads and own_heads == self.trained_heads:
            raise CheckpointError(f"{path}: the checkpoint's architecture ({loaded.spec.arch}) has "
                                  f"{ckpt_heads} attention heads, the backbone {own_heads}; the qkv "
                                  "weights would be split differently: set the backbone's heads to "
                                  "the checkpoint's")
        own, theirs = self.encoder.flsl_spec, loaded.spec
        own_grid = tuple(self.encoder.patch_embed.grid_size)
        pos = loaded.state_dict.get("pos_embed")
        their_tokens = own_grid[0] * own_grid[1] if pos is None else \
            pos.shape[1] - (0 if dict(theirs.kwargs).get("no_embed_class") else int(theirs.class_token))

        def rule(spec):  # how the network runs; sizes (depth, widths) are left to the strict load,
            # which lists every missing or mis-shaped tensor
            sizes = ("num_heads", "img_size", "class_token", "depth", "embed_dim", "mlp_ratio", "patch_size")
            return spec.class_token, spec.positions, {k: v for k, v in spec.kwargs if k not in sizes}
        if rule(own) != rule(theirs) or their_tokens != own_grid[0] * own_grid[1]:
            raise CheckpointError(
                f"{path}: runs as {theirs.describe()} with {their_tokens} stored positions; the backbone "
                f"was built as {own.describe()} with a {own_grid[0]}x{own_grid[1]} grid. Build it from "
                "the checkpoint (init_cfg=dict(type='Pretrained', checkpoint=PATH) without class_token)")
        load_strict(self.encoder, loaded.state_dict, str(path))
        self.encoder.flsl_source = str(path)
        adapter_tensors = len(self.adapter.state_dict())
        print_log(f"FLSLViT: loaded all {len(loaded.state_dict)} encoder tensors from {path} "
                  f"({loaded.spec.arch}, patch {loaded.patch_size}, {own_heads} heads, "
                  f"{loaded.describe()}, stored grid {own_grid[0]}x{own_grid[1]}); not in the "
                  f"checkpoint, initialised from scratch: adapter ({adapter_tensors} tensors), neck and "
                  "heads", logger="current")
        return loaded

    # ------------------------------------------------------------------------------ forward
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[B, 3, H, W]`` -> four maps ``[B, C, h, w]`` at ``self.strides`` (pixels)."""
        b, _, h, w = images.shape
        p = self.patch_size
        pad_h, pad_w = (-h) % p, (-w) % p
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))
        gh, gw = (h + pad_h) // p, (w + pad_w) // p
        # patch tokens only; the feature check (a read back to the host per block) in evaluation
        # only: a fine-tuning step must not wait on it, and the detector's loss shows divergence
        tokens = block_outputs(self.encoder, images, self.out_indices, check_finite=not self.training)
        maps = [t.transpose(1, 2).reshape(b, self.embed_dim, gh, gw) for t in tokens]
        return self.adapter(maps, (h, w))


def register_in_frameworks() -> list[str]:
    """Register :class:`FLSLViT` in every installed framework's ``MODELS`` registry.

    Returns the registries it was added to (``mmdet``, ``mmseg``); a framework that is not
    installed is skipped.
    """
    done = []
    for scope in ("mmdet", "mmseg"):
        try:
            registry = importlib.import_module(f"{scope}.registry")
        except ImportError:
            continue
        registry.MODELS.register_module(name="FLSLViT", module=FLSLViT, force=True)
        done.append(scope)
    return done


REGISTERED_IN = register_in_frameworks()

__all__ = ["FLSLViT", "ADAPTERS", "STRUCTURE_KEYS", "num_heads_of", "checkpoint_structure", "resolve_structure",
           "register_in_frameworks", "REGISTERED_IN"]
