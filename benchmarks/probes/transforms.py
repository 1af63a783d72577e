"""Image and label transforms of the probes' reference pipelines, on numpy arrays.

Each function restates one transform of the reference framework (MMSegmentation 0.27 / mmcv 1.5
for DINOv2's segmentation, the monocular depth toolbox for its depth probe, torchvision for the
Hummingbird benchmark) with an explicit ``numpy.random.Generator``, so that every augmented view
is a pure function of ``(image, label, seed)`` and can be extracted once and cached. Images are
RGB ``[H, W, 3]`` (uint8 unless said), labels ``[H, W]``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- MMSegmentation 0.27
def rescale_size(h: int, w: int, long_edge: float, short_edge: float) -> tuple[int, int]:
    """mmcv ``imrescale`` output ``(H', W')``: one factor ``min(long / max(h, w), short / min(h, w))``,
    sides rounded half up."""
    s = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(h * s + 0.5), int(w * s + 0.5)


def resize(img: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """cv2 resize to ``(H, W)`` (bilinear, or nearest for labels), as mmcv ``imresize``."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def random_crop_box(rng: np.random.Generator, h: int, w: int, crop: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(y1, y2, x1, x2)`` of an mmseg ``RandomCrop`` draw (uniform offset; a side shorter than the
    crop is kept whole)."""
    ch, cw = crop
    oy = int(rng.integers(0, max(h - ch, 0) + 1))
    ox = int(rng.integers(0, max(w - cw, 0) + 1))
    return oy, oy + min(ch, h), ox, ox + min(cw, w)


def seg_crop_box(rng: np.random.Generator, label: np.ndarray, crop: tuple[int, int],
                 cat_max_ratio: float = 0.75, ignore: int = 255) -> tuple[int, int, int, int]:
    """mmseg 0.27 ``RandomCrop`` with ``cat_max_ratio``: a first draw, then up to 10 checks; a crop
    passes when its labelled pixels hold at least two classes and the largest under the ratio;
    a failed check draws again (the last draw is kept)."""
    box = random_crop_box(rng, *label.shape, crop)
    if cat_max_ratio < 1.0:
        for _ in range(10):
            y1, y2, x1, x2 = box
            values, counts = np.unique(label[y1:y2, x1:x2], return_counts=True)
            counts = counts[values != ignore]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            box = random_crop_box(rng, *label.shape, crop)
    return box


def _convert(x: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(rng: np.random.Generator, img: np.ndarray, brightness: int = 32,
                           contrast=(0.5, 1.5), saturation=(0.5, 1.5), hue: int = 18) -> np.ndarray:
    """mmseg ``PhotoMetricDistortion``: brightness shift, contrast before or after (at random) the
    HSV part (saturation scale, hue shift in OpenCV's 0..179 hue units), each applied with
    probability 1/2; uint8 after every step, as the reference."""
    if rng.integers(2):
        img = _convert(img, beta=rng.uniform(-brightness, brightness))
    mode = rng.integers(2)
    if mode == 1 and rng.integers(2):
        img = _convert(img, alpha=rng.uniform(*contrast))
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=rng.uniform(*saturation))
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + int(rng.integers(-hue, hue))) % 180
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mode == 0 and rng.integers(2):
        img = _convert(img, alpha=rng.uniform(*contrast))
    return img


def normalise(img: np.ndarray, mean, std) -> torch.Tensor:
    """``[H, W, 3]`` RGB (0..255) -> ``[3, H, W]`` float32 ``(x / 255 - mean) / std``."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1) / 255.0
    return (x - torch.tensor(mean, dtype=torch.float32)[:, None, None]) / torch.tensor(std, dtype=torch.float32)[:, None, None]


def pad_to(x: torch.Tensor, label: np.ndarray | None, size: tuple[int, int], ignore: int = 255):
    """Pad a normalised image ``[3, h, w]`` (value 0) and its label (``ignore``) bottom / right to
    ``size``, as mmseg's ``Pad`` after ``Normalize``."""
    h, w = x.shape[-2:]
    ph, pw = size[0] - h, size[1] - w
    if ph > 0 or pw > 0:
        x = F.pad(x, (0, max(pw, 0), 0, max(ph, 0)))
        if label is not None:
            label = np.pad(label, ((0, max(ph, 0)), (0, max(pw, 0))), constant_values=ignore)
    return x, label


def seg_train_view(rng: np.random.Generator, img: np.ndarray, label: np.ndarray, short_side: int,
                   ratio_range, crop: tuple[int, int], mean, std, cat_max_ratio: float = 0.75):
    """One training view of DINOv2's linear segmentation (mmseg 0.27 pipeline): random rescale of
    the short side to ``int(short_side * r)``, ``r ~ U(ratio_range)``; crop with ``cat_max_ratio``;
    flip p=1/2; photometric distortion; normalise; pad to the crop. Returns ``(image [3, *crop],
    label [*crop] uint8)``."""
    r = rng.uniform(*ratio_range)
    size = rescale_size(*label.shape, int(99999999 * r), int(short_side * r))
    img, label = resize(img, size), resize(label, size, nearest=True)
    y1, y2, x1, x2 = seg_crop_box(rng, label, crop, cat_max_ratio)
    img, label = img[y1:y2, x1:x2], label[y1:y2, x1:x2]
    if rng.uniform() < 0.5:
        img, label = img[:, ::-1], label[:, ::-1]
    img = photometric_distortion(rng, np.ascontiguousarray(img))
    x, label = pad_to(normalise(img, mean, std), np.ascontiguousarray(label), crop)
    return x, label.astype(np.uint8)


def slide_windows(h: int, w: int, crop: tuple[int, int], stride: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """mmseg ``slide_inference`` windows ``(y1, y2, x1, x2)`` of an ``h x w`` image: per axis
    ``max(n - crop + stride - 1, 0) // stride + 1`` starts, the last ones moved back inside."""
    out = []
    ny = max(h - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    nx = max(w - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    for iy in range(ny):
        for ix in range(nx):
            y2, x2 = min(iy * stride[0] + crop[0], h), min(ix * stride[1] + crop[1], w)
            out.append((max(y2 - crop[0], 0), y2, max(x2 - crop[1], 0), x2))
    return out


# ----------------------------------------------------------------------------- Hummingbird (torchvision)
def resized_crop_params(rng: np.random.Generator, h: int, w: int, scale=(0.5, 2.0),
                        ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision ``RandomResizedCrop.get_params``: ``(top, left, height, width)`` after up to 10
    draws of area ``U(scale) * h * w`` and log-uniform aspect; else the centre crop clamped to
    the ratio range."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def colour_jitter(rng: np.random.Generator, x: torch.Tensor, strength: float = 0.1, p: float = 0.5) -> torch.Tensor:
    """Four independent torchvision colour jitters (brightness, contrast, saturation, hue), each
    applied with probability ``p``; ``x`` ``[3, H, W]`` in [0, 1]."""
    import torchvision.transforms.functional as TF
    if rng.uniform() < p:
        x = TF.adjust_brightness(x, rng.uniform(1 - strength, 1 + strength))
    if rng.uniform() < p:
        x = TF.adjust_contrast(x, rng.uniform(1 - strength, 1 + strength))
    if rng.uniform() < p:
        x = TF.adjust_saturation(x, rng.uniform(1 - strength, 1 + strength))
    if rng.uniform() < p:
        x = TF.adjust_hue(x, rng.uniform(-strength, strength))
    return x


def resize_tensor(x: torch.Tensor, size: tuple[int, int], nearest: bool = False) -> torch.Tensor:
    """torchvision ``Resize`` of ``[C, H, W]``: bilinear with antialias, or nearest (labels)."""
    if nearest:
        return F.interpolate(x[None].float(), size=size, mode="nearest")[0].to(x.dtype)
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def hbird_memory_view(rng: np.random.Generator, img: np.ndarray, label: np.ndarray, size: int, mean, std):
    """A memory (training) view of the Hummingbird benchmark: colour jitters, normalise, then a
    paired random resized crop to ``size x size`` (area scale 0.5..2, aspect 3/4..4/3).
    Returns ``(image [3, size, size], label [size, size] int64)``."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
    x = colour_jitter(rng, x)
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    top, left, ch, cw = resized_crop_params(rng, *label.shape)
    x = resize_tensor(x[:, top:top + ch, left:left + cw], (size, size))
    y = torch.from_numpy(np.ascontiguousarray(label[top:top + ch, left:left + cw]))[None]
    return x, resize_tensor(y, (size, size), nearest=True)[0].long()


def hbird_query_view(img: np.ndarray, label: np.ndarray, size: int, mean, std):
    """A query (validation) view: image and label resized to ``size x size`` (aspect not kept)."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    y = torch.from_numpy(np.ascontiguousarray(label))[None]
    return resize_tensor(x, (size, size)), resize_tensor(y, (size, size), nearest=True)[0].long()


# ----------------------------------------------------------------------------- depth toolbox
NYU_CROP = (slice(45, 472), slice(43, 608))


def rotate(img: np.ndarray, angle: float, nearest: bool = False) -> np.ndarray:
    """mmcv ``imrotate`` about the centre ``((w - 1) / 2, (h - 1) / 2)`` without growing the canvas,
    border 0 (counter-clockwise for a positive ``angle`` in degrees)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) * 0.5, (h - 1) * 0.5), -angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def depth_train_view(rng: np.random.Generator, img: np.ndarray, depth: np.ndarray, crop: tuple[int, int],
                     mean, std, degree: float = 2.5):
    """A training view of DINOv2's depth probe (toolbox pipeline): NYU crop, random rotation
    (p=1/2, +-``degree``), flip (p=1/2), random crop, colour augmentation (p=1/2: gamma 0.9..1.1 on
    0..255 values, brightness 0.75..1.25, per-channel colour 0.9..1.1), normalise.
    ``depth`` in metres. Returns ``(image [3, *crop], depth [*crop] float32)``."""
    img, depth = img[NYU_CROP], depth[NYU_CROP]
    if rng.uniform() < 0.5:
        angle = rng.uniform(-degree, degree)
        img, depth = rotate(np.ascontiguousarray(img), angle), rotate(np.ascontiguousarray(depth), angle, nearest=True)
    if rng.uniform() < 0.5:
        img, depth = img[:, ::-1], depth[:, ::-1]
    y1, y2, x1, x2 = random_crop_box(rng, *depth.shape, crop)
    img, depth = img[y1:y2, x1:x2].astype(np.float32), np.ascontiguousarray(depth[y1:y2, x1:x2], dtype=np.float32)
    if rng.uniform() < 0.5:
        img = img ** rng.uniform(0.9, 1.1)
        img = img * rng.uniform(0.75, 1.25)
        img = np.clip(img * rng.uniform(0.9, 1.1, size=3)[None, None], 0, 255)
    return normalise(img, mean, std), depth


__all__ = ["rescale_size", "resize", "random_crop_box", "seg_crop_box", "photometric_distortion", "normalise",
           "pad_to", "seg_train_view", "slide_windows", "resized_crop_params", "colour_jitter", "resize_tensor",
           "hbird_memory_view", "hbird_query_view", "NYU_CROP", "rotate", "depth_train_view"]
