"""Checkpoint families: each release's file layout and the network it was trained as, in one place.

A *family* is a network definition and a run rule (class token or not, registers, LayerScale,
activation, norms, position table and its resampling rule, input normalisation); a *layout* is
how one release stores that network in a file (nesting, prefixes, head tensors, pickled
arguments). :mod:`pretrain.families.layouts` turns every supported layout into the key layout of
:func:`pretrain.encoder.build_encoder` (timm's ``VisionTransformer``, using timm's own conversion
functions where they are exact) plus the run rule of its family; docs/families.md lists what was
checked against what.

The family is decided from the file's content, never from its name; a file whose content fits
more than one family is refused with an error naming the candidates and the override
(``--family NAME`` in the tools, ``family=`` in Python and in backbone configs).
"""
from __future__ import annotations

import dataclasses

from core.constants import IMAGENET_MEAN, IMAGENET_STD

#: OpenAI CLIP's input normalisation (clip/clip.py), also OpenCLIP's for CLIP models
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: SigLIP (big_vision ``value_range(-1, 1)``): mean 0.5, std 0.5
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True)
class Family:
    """A network definition: what its files hold and how it runs."""

    name: str                  # the --family value
    title: str                 # in words, for logs and errors
    mean: tuple = IMAGENET_MEAN  # input normalisation the family was trained with (RGB in [0, 1])
    std: tuple = IMAGENET_STD


FAMILIES = {f.name: f for f in (
    Family("flsl", "FLSL (this project's exports and training states, the authors' release)"),
    Family("dino", "DINO ViT (facebookresearch/dino)"),
    Family("ibot", "iBOT ViT (bytedance/ibot; DINO's network)"),
    Family("selfpatch", "SelfPatch ViT (alinlab/SelfPatch: no class token, no final norm)"),
    Family("timm", "timm VisionTransformer (timm's own position resampling)"),
    Family("dinov2", "DINOv2 (facebookresearch/dinov2: patch 14, LayerScale, registers optional)"),
    Family("mae", "MAE encoder (facebookresearch/mae: fixed sin-cos table with a class slot)"),
    Family("deit3", "DeiT III (facebookresearch/deit: LayerScale, class token without position)"),
    Family("openai-clip", "OpenAI CLIP image tower (QuickGELU; also OpenCLIP -quickgelu towers)",
           CLIP_MEAN, CLIP_STD),
    Family("openclip", "OpenCLIP image tower (GELU)", CLIP_MEAN, CLIP_STD),
    Family("dinov3", "DINOv3 (facebookresearch/dinov3: patch 16, RoPE, 4 storage tokens, LayerScale)"),
    Family("eva02", "EVA-02 (baaivision/EVA: RoPE, SwiGLU, absolute table, final norm)", CLIP_MEAN, CLIP_STD),
    Family("siglip", "SigLIP image tower (google-research/big_vision: no class token, tanh GELU)",
           SIGLIP_MEAN, SIGLIP_STD),
)}


def family(name: str) -> Family:
    """The :class:`Family` called ``name`` (ValueError naming the known ones otherwise)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown checkpoint family {name!r} (known: {', '.join(FAMILIES)})") from None


__all__ = ["Family", "FAMILIES", "family", "CLIP_MEAN", "CLIP_STD", "SIGLIP_MEAN", "SIGLIP_STD"]
