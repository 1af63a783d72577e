"""Frozen patch features of an encoder: one place for the figures, the probes and the demo.

An image is read as RGB ``[H, W, 3]`` uint8, sized so both sides are whole patches, normalised
with the encoder's own input statistics and run through the frozen encoder; the patch tokens
(never the class, register or storage tokens) come back as a ``[h, w, C]`` map.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.constants import IMAGENET_MEAN, IMAGENET_STD
from core.errors import FLSLError
from core.normalise import normalise


class ImageReadError(FLSLError, ValueError):
    """An image that cannot be decoded; the message names the file."""


def load_image(path: str | Path, short_side: int, patch: int) -> np.ndarray:
    """RGB image ``[H, W, 3]`` uint8 resized (bicubic) so its short side is ``short_side`` pixels,
    then both sides floored to a multiple of ``patch``."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # the bomb is neither
        raise ImageReadError(f"{path}: cannot read image ({err})") from None
    w, h = im.size
    s = short_side / min(w, h)
    nh, nw = max(patch, round(h * s) // patch * patch), max(patch, round(w * s) // patch * patch)
    return np.asarray(im.resize((nw, nh), Image.BICUBIC), dtype=np.uint8)


def to_tensor(image: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[1, 3, H, W]`` float, normalised by ``mean`` / ``std`` (RGB, for
    values in [0, 1]; ImageNet's unless the encoder was trained with others)."""
    return normalise(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), mean, std)[None]


def input_statistics(model: torch.nn.Module) -> tuple[tuple, tuple]:
    """``(mean, std)`` the encoder's family was trained with (docs/families.md)."""
    from pretrain.families import family
    f = family(model.flsl_spec.family)
    return f.mean, f.std


@torch.no_grad()
def patch_features(model: torch.nn.Module, image: np.ndarray, mean=None, std=None) -> torch.Tensor:
    """Post-LayerNorm patch tokens of ``image`` ``[H, W, 3]`` as ``[h, w, C]`` float32
    (h = H / patch, w = W / patch); the image normalised with ``mean`` / ``std``, by default
    those of the encoder's family (a CLIP tower sees CLIP's statistics, not ImageNet's)."""
    from pretrain.encoder import encode, patch_size
    if mean is None or std is None:
        mean, std = input_statistics(model)
    p = patch_size(model)
    h, w = image.shape[0] // p, image.shape[1] // p
    tokens = encode(model.eval(), to_tensor(image, mean, std))      # [1, h*w, C]
    return tokens[0].reshape(h, w, -1).float()


def centre_pad(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad ``[B, 3, H, W]`` (already normalised) so both sides are multiples of ``multiple``,
    ``floor(pad / 2)`` before and the rest after (DINOv2's ``CenterPadding``)."""
    h, w = images.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return images
    return torch.nn.functional.pad(images, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


@torch.no_grad()
def layer_features(model: torch.nn.Module, images: torch.Tensor, indices, norm: bool = True,
                   class_token: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token maps of the blocks ``indices`` (0-based) for normalised images ``[B, 3, H, W]``,
    centre-padded to whole patches: ``(patch [B, L, C, h, w], cls [B, L, C] or None)``.

    ``norm`` passes every selected block output through the encoder's final LayerNorm (DINOv2's
    ``get_intermediate_layers(norm=True)``); ``class_token`` also returns the class token of each
    selected block (an error for an encoder without one). Register tokens are dropped.
    """
    from pretrain.encoder import block_outputs, patch_size
    x = centre_pad(images, patch_size(model))
    h, w = x.shape[-2] // patch_size(model), x.shape[-1] // patch_size(model)
    if class_token and getattr(model, "cls_token", None) is None:
        raise FLSLError("the encoder has no class token, which this protocol reads")
    # the family's own forward (positions, RoPE, finiteness checks) runs in block_outputs; hooks
    # keep each selected block's whole sequence, class and register tokens included
    outs = {}
    hooks = [model.blocks[i].register_forward_hook(lambda _m, _in, out, i=i: outs.__setitem__(i, out))
             for i in sorted(set(int(i) for i in indices))]
    try:
        block_outputs(model, x, [max(int(i) for i in indices)])
    finally:
        for hook in hooks:
            hook.remove()
    prefix = model.num_prefix_tokens
    if norm:
        outs = {i: model.norm(t) for i, t in outs.items()}
    chosen = [outs[int(i)] for i in indices]
    patch = torch.stack([o[:, prefix:] for o in chosen], 1)              # [B, L, h*w, C]
    patch = patch.transpose(2, 3).reshape(*patch.shape[:2], patch.shape[-1], h, w)
    cls = torch.stack([o[:, 0] for o in chosen], 1) if class_token else None
    return patch, cls


__all__ = ["ImageReadError", "load_image", "to_tensor", "patch_features", "centre_pad", "layer_features",
           "input_statistics"]
