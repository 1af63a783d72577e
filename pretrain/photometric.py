"""The photometric part of the multi-crop views (docs/method.md section 2), as explicit
parameters and two implementations of the same operations.

The chain, per view: with probability 0.8 colour jitter (brightness, contrast, saturation, hue
factors drawn uniformly from [0.6, 1.4], [0.6, 1.4], [0.8, 1.2], [-0.1, 0.1], applied in a
uniformly random order, as torchvision's ``ColorJitter`` does), grayscale with probability 0.2,
then with probability 0.5 a Gaussian blur applied with probability 0.5, otherwise a blur with
probability 0.1 followed by solarisation (threshold 128) with probability 0.2; blur radii are
uniform in [0.1, 2]. :func:`sample_params` draws one view's choices from torch's global
generator.

The operations are the ones the authors' pipeline runs on PIL images (torchvision's functional
PIL ops, Pillow's ``GaussianBlur`` and ``ImageOps.solarize``), computed on ``[H, W, 3]`` uint8
arrays with lookup tables and OpenCV instead of PIL image round trips:

* brightness, contrast, grayscale, solarisation: exactly Pillow's results (lookup tables built
  with Pillow's float32 blend arithmetic, Pillow's integer luma);
* saturation: Pillow's blend with the per-pixel luma, in the same float32 order (exact but for
  float rounding ties);
* hue: Pillow's 8-bit HSV (hue and saturation truncated to 0..255, hue shifted with uint8
  wrap-around as torchvision does) computed through OpenCV's float HSV conversions: about 1% of
  pixels differ from Pillow's by 1-3 levels, where Pillow's single-precision hue lands on the
  other side of an integer;
* blur: Pillow's approximation of the Gaussian, three passes of an "extended box" (a box of
  fractional radius, Pillow's fixed-point weights) per axis, each pass rounded, edges
  replicated; run as OpenCV float32 filters, so a pixel can differ by a level where Pillow's
  exact integer sum sits next to a rounding tie.

:func:`apply_batch` runs the same chain on a batch of uint8 tensors ``[B, 3, H, W]`` on any
device (float arithmetic emulating the same 8-bit steps, Pillow's HSV precision included), for
jobs that move the photometric work from the data loader to the GPU
(``data.views.photometric_on_device``).
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.normalise import normalise, normalise_affine

JITTER_P = 0.8
BRIGHTNESS = (0.6, 1.4)     # ColorJitter(brightness=0.4)
CONTRAST = (0.6, 1.4)       # ColorJitter(contrast=0.4)
SATURATION = (0.8, 1.2)     # ColorJitter(saturation=0.2)
HUE = (-0.1, 0.1)           # ColorJitter(hue=0.1)
GRAY_P = 0.2
BLUR_BRANCH_P = 0.5         # chance of the "strong blur" branch; otherwise weak blur + solarise
STRONG_BLUR_P = 0.5
WEAK_BLUR_P = 0.1
SOLARIZE_P = 0.2
BLUR_RADIUS = (0.1, 2.0)
SOLARIZE_THRESHOLD = 128
BLUR_PASSES = 3             # Pillow's GaussianBlur: three extended-box passes
#: jitter operations by torchvision's index (the order is a permutation of these)
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


@dataclasses.dataclass(frozen=True)
class PhotometricParams:
    """One view's photometric draw; the defaults are the identity."""

    jitter: bool = False
    order: tuple = (0, 1, 2, 3)          # indices into JITTER_OPS, applied left to right
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    grayscale: bool = False
    blur_radius: float = 0.0             # 0: no blur
    solarize: bool = False

    def factors(self) -> tuple[float, float, float, float]:
        return self.brightness, self.contrast, self.saturation, self.hue


def _uniform(lo: float, hi: float) -> float:
    return float(torch.empty(1).uniform_(lo, hi))


def _chance(p: float) -> bool:
    return float(torch.rand(1)) < p


def sample_params() -> PhotometricParams:
    """One view's choices, from torch's global generator. The jitter factors are drawn even
    when jitter is off (a fixed number of draws per view); their distribution when applied is
    torchvision's."""
    jitter = float(torch.rand(1)) <= JITTER_P     # RandomApply applies unless p < u
    order = tuple(torch.randperm(4).tolist())
    b, c, s, h = _uniform(*BRIGHTNESS), _uniform(*CONTRAST), _uniform(*SATURATION), _uniform(*HUE)
    gray = _chance(GRAY_P)
    radius, solarize = 0.0, False
    if _chance(BLUR_BRANCH_P):
        if float(torch.rand(1)) <= STRONG_BLUR_P:
            radius = _uniform(*BLUR_RADIUS)
    else:
        if float(torch.rand(1)) <= WEAK_BLUR_P:
            radius = _uniform(*BLUR_RADIUS)
        solarize = _chance(SOLARIZE_P)
    return PhotometricParams(jitter, order, b, c, s, h, gray, radius, solarize)


# ----------------------------------------------------------------------------- CPU, uint8 arrays
_RAMP = np.arange(256, dtype=np.float32)
_SOLARIZE_LUT = np.where(_RAMP < SOLARIZE_THRESHOLD, _RAMP, 255 - _RAMP).astype(np.uint8)
_TO_PIL_HSV = np.diag([255.0 / 360.0, 255.0, 1.0]).astype(np.float32)    # OpenCV float HSV -> 0..255
_FROM_PIL_HSV = np.diag([360.0 / 255.0, 1.0 / 255.0, 1.0]).astype(np.float32)


def blend_lut(base: float, factor: float) -> np.ndarray:
    """``[256]`` uint8: Pillow's ``Image.blend(constant base, image, factor)`` per grey level,
    ``base + factor * (x - base)`` in float32, clipped and truncated as Pillow does."""
    out = np.float32(base) + np.float32(factor) * (_RAMP - np.float32(base))
    return np.clip(out, 0, 255).astype(np.uint8)


_LUMA = np.array([[19595, 38470, 7471, 32768]], dtype=np.float32)   # Pillow's L, in 2^-16


def luma_float(x: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[H, W]`` float32 holding Pillow's ``convert("L")`` levels
    (ITU-R 601-2 with Pillow's integer rounding, ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``;
    exact: every product and partial sum is an integer below 2^24)."""
    n = cv2.transform(x.astype(np.float32), _LUMA)
    n *= np.float32(1.0 / 65536.0)
    return np.floor(n, out=n)


def luma(x: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[H, W]`` uint8, Pillow's ``convert("L")``."""
    return luma_float(x).astype(np.uint8)


def adjust_brightness(x: np.ndarray, factor: float) -> np.ndarray:
    return cv2.LUT(x, blend_lut(0.0, factor))


def adjust_contrast(x: np.ndarray, factor: float) -> np.ndarray:
    mean = int(cv2.mean(luma_float(x))[0] + 0.5)   # ImageEnhance.Contrast's rounded luma mean
    return cv2.LUT(x, blend_lut(mean, factor))


def adjust_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    gray = cv2.cvtColor(luma_float(x), cv2.COLOR_GRAY2RGB)
    y = x.astype(np.float32)
    y -= gray
    y *= np.float32(factor)
    y += gray                                                   # gray + factor * (x - gray)
    np.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)                                   # truncation, as Pillow's blend


def adjust_hue(x: np.ndarray, factor: float) -> np.ndarray:
    shift = int(np.int32(factor * 255).astype(np.uint8))      # torchvision: truncate, wrap
    hsv = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2HSV)  # H degrees, S 0..1, V 0..255
    hsv8 = cv2.transform(hsv, _TO_PIL_HSV).astype(np.uint8)     # Pillow's truncated 8-bit H, S
    hsv8 = cv2.LUT(hsv8, _hue_shift_lut(shift))                 # H + shift, uint8 wrap-around
    rgb = cv2.cvtColor(cv2.transform(hsv8.astype(np.float32), _FROM_PIL_HSV), cv2.COLOR_HSV2RGB)
    return cv2.convertScaleAbs(rgb)                             # round to the nearest level


def _hue_shift_lut(shift: int) -> np.ndarray:
    """``[256, 1, 3]`` per-channel table: hue + shift (mod 256), saturation and value kept."""
    ramp = np.arange(256, dtype=np.uint8)
    return np.stack([ramp + np.uint8(shift), ramp, ramp], axis=-1).reshape(256, 1, 3)


def grayscale(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(luma(x), cv2.COLOR_GRAY2RGB)                 # torchvision: L, three times


def box_radius(radius: float, passes: int = BLUR_PASSES) -> float:
    """Pillow's extended-box radius for a Gaussian of standard deviation ``radius`` approximated
    by ``passes`` box passes (Gwosdek et al. 2011), in Pillow's single precision."""
    f32 = np.float32
    sigma2 = f32(radius) * f32(radius) / f32(passes)
    length = f32(math.sqrt(12.0 * float(sigma2) + 1.0))
    whole = f32(math.floor((float(length) - 1.0) / 2.0))
    frac = (f32(2) * whole + f32(1)) * (whole * (whole + f32(1)) - f32(3) * sigma2)
    frac = frac / (f32(6) * (sigma2 - (whole + f32(1)) * (whole + f32(1))))
    return float(whole + frac)


def box_kernel(radius: float, passes: int = BLUR_PASSES) -> np.ndarray:
    """``[2 r0 + 3]`` float32: one of Pillow's box passes for blur ``radius``, its fixed-point
    weights (in units of 2^-24): ``2 r0 + 1`` inner taps of ``2^24 / (2 r + 1)`` and two end taps
    sharing the remainder (``r`` = :func:`box_radius`, ``r0`` its integer part)."""
    r = np.float32(box_radius(radius, passes))
    r0 = int(r)
    inner = int(np.float32(1 << 24) / (r * np.float32(2) + np.float32(1)))
    end = ((1 << 24) - (2 * r0 + 1) * inner) // 2
    k = np.full(2 * r0 + 3, inner, dtype=np.float64)
    k[0] = k[-1] = end
    return (k / (1 << 24)).astype(np.float32)


def gaussian_blur(x: np.ndarray, radius: float) -> np.ndarray:
    """Pillow's ``GaussianBlur(radius)``: three box passes along rows, then three along columns,
    each rounded to whole levels, edges replicated (float32 sums: a result can differ by one
    level where Pillow's exact fixed-point sum sits within ~1e-5 of a rounding tie)."""
    k = box_kernel(radius)
    y = x
    for kernel in (k.reshape(1, -1), k.reshape(-1, 1)):
        for _ in range(BLUR_PASSES):
            y = cv2.filter2D(y, cv2.CV_32F, kernel, delta=0.5, borderType=cv2.BORDER_REPLICATE)
            np.floor(y, out=y)                                  # + 0.5, floor: Pillow's rounding
    return y.astype(np.uint8)


def solarize(x: np.ndarray) -> np.ndarray:
    return cv2.LUT(x, _SOLARIZE_LUT)


_JITTER_FNS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def apply(x: np.ndarray, params: PhotometricParams) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[H, W, 3]`` uint8 (the input is never modified)."""
    if params.jitter:
        factors = params.factors()
        for op in params.order:
            x = _JITTER_FNS[op](x, factors[op])
    if params.grayscale:
        x = grayscale(x)
    if params.blur_radius > 0:
        x = gaussian_blur(x, params.blur_radius)
    if params.solarize:
        x = solarize(x)
    return x


_SCALE, _SHIFT = normalise_affine()


def to_normalized(x: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[3, H, W]`` float32, ``(x / 255 - mean) / std`` (ImageNet),
    written into ``out`` when given."""
    chw = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    if out is None:
        out = torch.empty(chw.shape, dtype=torch.float32)
    out.copy_(chw)
    return out.mul_(_SCALE).add_(_SHIFT)


# ----------------------------------------------------------------------------- batched, any device
def pack(params: list[PhotometricParams]) -> dict[str, torch.Tensor]:
    """A list of per-view draws -> tensors (``[N]`` flags and radii, ``[N, 4]`` order and
    factors), the form the data loader collates and :func:`apply_batch` reads."""
    return {
        "jitter": torch.tensor([p.jitter for p in params]),
        "order": torch.tensor([p.order for p in params], dtype=torch.int64),
        "factors": torch.tensor([p.factors() for p in params], dtype=torch.float32),
        "grayscale": torch.tensor([p.grayscale for p in params]),
        "blur_radius": torch.tensor([p.blur_radius for p in params], dtype=torch.float32),
        "solarize": torch.tensor([p.solarize for p in params]),
    }


def _luma_t(x: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` float holding integers 0..255 -> ``[B, 1, H, W]`` Pillow's integer luma
    (exact in float32: every partial sum is an integer below 2^24)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536)


def _blend_t(base: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return torch.floor((base + factor * (x - base)).clamp_(0, 255))


def _hue_t(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Pillow's 8-bit HSV hue shift (see :func:`adjust_hue`) on ``[B, 3, H, W]`` 0..255 floats."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, minc = x.max(1).values, x.min(1).values
    cr = maxc - minc
    safe = torch.where(cr > 0, cr, torch.ones_like(cr))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(r == maxc, bc - gc, torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    # Pillow: the hue and saturation fractions in single precision, then scaled and truncated
    # in double precision
    h = torch.remainder(h.double() / 6.0 + 1.0, 1.0)
    hue8 = torch.where(cr > 0, torch.floor(h * 255.0), torch.zeros_like(h)).float()
    sat = (cr / torch.where(maxc > 0, maxc, torch.ones_like(maxc))).double()
    sat8 = torch.where(cr > 0, torch.floor(sat * 255.0), torch.zeros_like(sat)).float()
    shift = torch.remainder(torch.trunc(factor * 255), 256).view(-1, 1, 1)
    hue8 = torch.remainder(hue8 + shift, 256)
    sector = torch.floor(hue8 * 6.0 / 255.0)
    f = hue8 * 6.0 / 255.0 - sector
    fs = f * sat8
    p = torch.floor(maxc * (255.0 - sat8) / 255.0 + 0.5)
    q = torch.floor(maxc * (255.0 - fs) / 255.0 + 0.5)
    t = torch.floor(maxc * (255.0 - sat8 + fs) / 255.0 + 0.5)
    v = maxc
    sector = torch.remainder(sector, 6).long()
    # (R, G, B) per sector, colorsys order
    table = torch.stack([torch.stack(c) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return torch.gather(table, 0, sector.unsqueeze(0).unsqueeze(0).expand(1, 3, *sector.shape)).squeeze(0).transpose(0, 1)


def _blur_t(x: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Per-image :func:`gaussian_blur` (zero radius: identity) on ``[B, 3, H, W]`` 0..255 floats;
    ``radius`` ``[B]`` on the CPU."""
    kernels = [box_kernel(r) if r > 0 else np.ones(1, np.float32) for r in radius.tolist()]
    width = max(len(k) for k in kernels)
    weight = torch.zeros(len(kernels), width)
    for i, k in enumerate(kernels):
        pad = (width - len(k)) // 2
        weight[i, pad:pad + len(k)] = torch.from_numpy(k)
    b, c, h, w = x.shape
    weight = weight.to(x.device).repeat_interleave(c, 0)                     # [B*C, K]
    half = width // 2
    y = x.reshape(1, b * c, h, w)
    for shape, pad in (((1, width), (half, half, 0, 0)), ((width, 1), (0, 0, half, half))):
        for _ in range(BLUR_PASSES):
            y = F.conv2d(F.pad(y, pad, mode="replicate"), weight.view(b * c, 1, *shape), groups=b * c)
            y = torch.floor(y + 0.5)
    return y.view(b, c, h, w)


def apply_batch(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B, 3, H, W]`` uint8 views and their packed parameters (:func:`pack`, on any device)
    -> ``[B, 3, H, W]`` float32, photometric chain then ImageNet normalisation.

    Every image takes every branch's computation and keeps its own by ``torch.where``: no host
    synchronisation but the blur kernels' radii (a list of floats per batch).
    """
    dev = x.device
    radius = params["blur_radius"].cpu()
    params = {k: v.to(dev, non_blocking=True) for k, v in params.items()}
    y = x.float()
    jitter, order, factors = params["jitter"], params["order"], params["factors"]
    for position in range(4):
        for op in range(4):
            take = (jitter & (order[:, position] == op)).view(-1, 1, 1, 1)
            f = factors[:, op].view(-1, 1, 1, 1)
            if op == 0:
                out = _blend_t(torch.zeros_like(f), y, f)
            elif op == 1:
                mean = torch.floor(_luma_t(y).mean(dim=(1, 2, 3), keepdim=True) + 0.5)
                out = _blend_t(mean, y, f)
            elif op == 2:
                out = _blend_t(_luma_t(y), y, f)
            else:
                out = _hue_t(y, factors[:, 3])
            y = torch.where(take, out, y)
    y = torch.where(params["grayscale"].view(-1, 1, 1, 1), _luma_t(y).expand_as(y), y)
    if bool((radius > 0).any()):
        blurred = _blur_t(y, radius)
        y = torch.where((params["blur_radius"] > 0).view(-1, 1, 1, 1), blurred, y)
    y = torch.where(params["solarize"].view(-1, 1, 1, 1) & (y >= SOLARIZE_THRESHOLD), 255 - y, y)
    return normalise(y)


__all__ = ["PhotometricParams", "sample_params", "apply", "apply_batch", "pack", "to_normalized",
           "box_kernel", "box_radius", "blend_lut", "luma", "adjust_brightness", "adjust_contrast",
           "adjust_saturation", "adjust_hue", "grayscale", "gaussian_blur", "solarize"]
