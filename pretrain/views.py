"""Multi-crop views and token-sampling masks (docs/method.md section 2).

Every random choice here draws from torch's global generator, which the data set seeds per
(seed, epoch, image index) inside ``torch.random.fork_rng``: the views of an image are a pure
function of those three numbers, whatever the worker count, so training resumes exactly.

Work per image, in order: the teacher crop's parameters are drawn from the image's size (the
header; nothing is decoded yet); a JPEG is then decoded at the smallest DCT scale (1/2, 1/4,
1/8, Pillow's ``draft``) that still leaves the crop at least twice the view size on both sides;
the crops are cut before resizing, and the bicubic antialiased resizes run in torch's uint8
kernel (Pillow's filter: within one level of Pillow's result, 3-5x faster); the photometric
chain runs on uint8 arrays (:mod:`pretrain.photometric`) and normalisation writes straight into
float tensors. With ``photometric_on_device`` the views stay uint8 and carry their photometric
parameters; :func:`photometric_on_device` applies the chain to a collated batch on the training
device.
"""
from __future__ import annotations

import dataclasses
import logging
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from . import photometric

_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row side, column side): 0 = top/left, 1 = bottom/right


def token_sampling_mask(grid: int, window: int, random_in_window: bool = False,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask ``[grid * grid]`` (row-major) selecting one token per ``window x window``
    cell of the largest window-divisible square, placed at a uniformly chosen corner.

    The selected token is the cell's first (top-left) one, or a uniformly random one when
    ``random_in_window``. Global 224/16 views (grid 14, window 3) select 16 of 196 tokens; local
    96/16 views (grid 6, window 2) select 9 of 36.
    """
    cells = grid // window
    if cells < 1:
        raise ValueError(f"token grid {grid} is smaller than the sampling window {window}")
    side = cells * window
    corner = _CORNERS[int(torch.randint(4, (1,), generator=generator))]
    top = corner[0] * (grid - side)
    left = corner[1] * (grid - side)
    rows = top + window * torch.arange(cells).repeat_interleave(cells)
    cols = left + window * torch.arange(cells).repeat(cells)
    if random_in_window:
        offset = torch.randint(window * window, (cells * cells,), generator=generator)
        rows = rows + offset // window
        cols = cols + offset % window
    mask = torch.zeros(grid * grid, dtype=torch.bool)
    mask[rows * grid + cols] = True
    return mask


class ImageDecodeError(Exception):
    """The image's pixel data could not be decoded (truncated or corrupt file)."""


@dataclasses.dataclass
class ViewConfig:
    global_size: int = 224
    local_size: int = 96
    n_local: int = 2
    teacher_scale: tuple = (0.8, 1.0)
    global_scale: tuple = (0.5, 1.0)
    local_scale: tuple = (0.05, 0.4)
    patch_size: int = 16
    global_window: int = 3
    local_window: int = 2
    random_sampling: bool = False
    #: return uint8 views + photometric parameters; the trainer runs the chain on its device
    photometric_on_device: bool = False


CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)   # RandomResizedCrop's default aspect-ratio range


def crop_params(img: Image.Image | torch.Tensor, scale) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` drawn by torchvision's ``RandomResizedCrop`` (reads only
    the size of ``img``: a PIL image's header or a tensor's shape)."""
    return T.RandomResizedCrop.get_params(img, list(scale), list(CROP_RATIO))


#: a JPEG is decoded at a reduced DCT scale only if the crop, at that scale, is still this many
#: times the view's size: the bicubic resize that follows then shrinks at least 2x and hides the
#: reduced decode's weak anti-aliasing (measured in tests/pretrain/test_views_equivalence.py)
DRAFT_MARGIN = 2


def decode_for_crop(img: Image.Image, box: tuple[int, int, int, int], size: int):
    """Decode ``img`` for a crop ``box = (left, top, right, bottom)`` that will be resized to
    ``size x size``: an undecoded JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
    keeps the crop at least ``DRAFT_MARGIN * size`` pixels on both sides. Returns ``(RGB image,
    box in its pixel coordinates, scale)`` (scale 1: full resolution, box unchanged). Raises
    :class:`ImageDecodeError` for unreadable pixel data."""
    left, top, right, bottom = box
    scale = 1
    if img.format == "JPEG" and min(right - left, bottom - top) >= 2 * DRAFT_MARGIN * size:
        width = img.width
        need = DRAFT_MARGIN * size
        request = (math.ceil(img.width * need / (right - left)), math.ceil(img.height * need / (bottom - top)))
        drafted = img.draft("RGB", request)
        if drafted is not None:
            scale = round(width / drafted[1][2])
    try:
        img.load()
    except (OSError, ValueError, SyntaxError) as err:   # truncated or corrupt pixel data
        raise ImageDecodeError(str(err)) from None
    if img.mode != "RGB":
        img = img.convert("RGB") if img.mode not in WIDE_MODES else _wide_to_rgb(img)
    if scale > 1:
        box = tuple(v / scale for v in box)
    return img, box, scale


#: Pillow modes of more than 8 bits per pixel, which ``convert("RGB")`` clips at 255 (a 16-bit
#: PNG becomes nearly white, a float TIFF in [0, 1] nearly black)
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_WARNED: set = set()
log = logging.getLogger("flsl")


def _wide_to_rgb(img: Image.Image) -> Image.Image:
    """A 16-bit image scaled to 8 bits (value / 257: 65535 -> 255); a 32-bit integer or float
    image scaled from its own range [min, max] to [0, 255]. Warned about once per file: the
    training data is not what a reader of the file would assume."""
    a = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        how = "scaled from 16 to 8 bits"
        a = a / 257.0
    else:
        lo, hi = (float(a.min()), float(a.max())) if a.size and np.isfinite(a).all() else (0.0, 0.0)
        how = f"scaled from its range [{lo:g}, {hi:g}] to 8 bits"
        a = (np.nan_to_num(a) - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    name = getattr(img, "filename", "") or "an image"
    if name not in _WARNED:
        _WARNED.add(name)
        log.warning("warning: %s: %s image (mode %s) %s for training; convert the data set to 8-bit "
                    "images to silence this", name, "16-bit" if img.mode.startswith("I;16") else
                    "32-bit", img.mode, how)
    grey = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    return grey.convert("RGB")


def _resized_crop_pil(img: Image.Image, box, size: int) -> Image.Image:
    """Pillow's bicubic resize of a fractional ``box`` (a reduced-scale JPEG decode)."""
    return img.resize((size, size), Image.BICUBIC, box=box)


def _resized_crop(image: torch.Tensor, box, size: int) -> torch.Tensor:
    """``[1, 3, H, W]`` uint8 (any strides) -> ``[1, 3, size, size]`` uint8: the integer ``box``
    cut out, then resized bicubic with antialiasing by torch's uint8 kernel, which runs Pillow's
    separable fixed-point filter (the two agree to within one level)."""
    left, top, right, bottom = box
    return F.interpolate(image[:, :, top:bottom, left:right], size=(size, size), mode="bicubic",
                         antialias=True)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> ``[1, 3, H, W]`` uint8 with channels-last strides, which torch's
    resize keeps (its output is then an ``[H, W, 3]`` array without a copy)."""
    return torch.from_numpy(np.array(img)).unsqueeze(0).permute(0, 3, 1, 2)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())


def _box(params) -> tuple[int, int, int, int]:
    top, left, height, width = params
    return left, top, left + width, top + height


class MultiCropViews:
    """PIL image (opened lazily or decoded) -> dict of views and token indices.

    Output: ``teacher [3, G, G]`` (view 0), ``global [3, G, G]`` (view 1, a crop of view 0),
    ``locals [L, 3, l, l]`` (crops of view 0), ``global_index [n_g]`` and ``local_index [L, n_l]``
    (row-major positions of the sampled tokens). Views are ImageNet-normalised float32, or, with
    ``photometric_on_device``, un-augmented uint8 plus ``photometric`` (the packed parameters of
    views 0, 1, 2.. in that order, see :func:`pretrain.photometric.pack`).
    """

    def __init__(self, cfg: ViewConfig):
        self.cfg = cfg
        self.global_grid = cfg.global_size // cfg.patch_size
        self.local_grid = cfg.local_size // cfg.patch_size
        self._worker_setup = False

    def _index(self, grid: int, window: int) -> torch.Tensor:
        return token_sampling_mask(grid, window, self.cfg.random_sampling).nonzero().squeeze(1)

    def crops(self, img: Image.Image) -> list[np.ndarray]:
        """The un-augmented views ``[H, W, 3]`` uint8: teacher, global, locals."""
        cfg = self.cfg
        teacher_box = _box(crop_params(img, cfg.teacher_scale))
        img, box, scale = decode_for_crop(img, teacher_box, cfg.global_size)
        if scale == 1:
            crop = _to_tensor(img.crop(box))
            base = _resized_crop(crop, (0, 0, crop.shape[3], crop.shape[2]), cfg.global_size)
        else:
            base = _to_tensor(_resized_crop_pil(img, box, cfg.global_size))
        base_hwc = _hwc(base)
        views = [base_hwc, _hwc(_resized_crop(base, _box(crop_params(base, cfg.global_scale)),
                                              cfg.global_size))]
        views += [_hwc(_resized_crop(base, _box(crop_params(base, cfg.local_scale)), cfg.local_size))
                  for _ in range(cfg.n_local)]
        return views

    def __call__(self, img: Image.Image) -> dict:
        if not self._worker_setup:
            # OpenCV's own thread pool would oversubscribe the cores the loader workers share
            if torch.utils.data.get_worker_info() is not None:
                cv2.setNumThreads(1)
            self._worker_setup = True
        cfg = self.cfg
        arrays = self.crops(img)
        out = {
            "global_index": self._index(self.global_grid, cfg.global_window),
            "local_index": torch.stack([self._index(self.local_grid, cfg.local_window)
                                        for _ in range(cfg.n_local)]) if cfg.n_local else
            torch.zeros(0, (self.local_grid // cfg.local_window) ** 2, dtype=torch.int64),
        }
        params = [photometric.sample_params() for _ in arrays]
        if cfg.photometric_on_device:
            views = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
            out["photometric"] = photometric.pack(params)
        else:
            views = [photometric.to_normalized(photometric.apply(a, p)) for a, p in zip(arrays, params)]
        out["teacher"], out["global"] = views[0], views[1]
        out["locals"] = torch.stack(views[2:]) if cfg.n_local else \
            torch.zeros(0, 3, cfg.local_size, cfg.local_size, dtype=views[0].dtype)
        return out


def photometric_on_device(batch: dict, device: torch.device | str):
    """The photometric chain and normalisation of a collated uint8 batch (views made with
    ``photometric_on_device``) on ``device``. Returns float32 ``(teacher [B, 3, G, G],
    global [B, 3, G, G], locals [B, L, 3, l, l])``."""
    nb = torch.device(device).type == "cuda"
    params = batch["photometric"]                                  # each [B, 2 + L, ...]

    def pick(view):                                                # one view's (or the locals') rows
        if isinstance(view, slice):
            return {k: v[:, view].flatten(0, 1) for k, v in params.items()}
        return {k: v[:, view] for k, v in params.items()}

    teacher = photometric.apply_batch(batch["teacher"].to(device, non_blocking=nb), pick(0))
    glob = photometric.apply_batch(batch["global"].to(device, non_blocking=nb), pick(1))
    locs = batch["locals"]
    b, n_local = locs.shape[:2]
    if n_local:
        flat = photometric.apply_batch(locs.flatten(0, 1).to(device, non_blocking=nb), pick(slice(2, None)))
        locs = flat.view(b, n_local, *flat.shape[1:])
    else:
        locs = locs.to(device).float()
    return teacher, glob, locs
