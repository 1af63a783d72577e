"""The linear probe's loss on CPU, value and gradient in one pass (``seg_ce.c``).

The loss is the mean over all ``B*H*W`` pixels of the cross-entropy of the ``[B, K, h, w]``
logits bilinearly upsampled to the ``[B, H, W]`` labels (ignored pixels count 0), exactly the
eager expression in :func:`benchmarks.probes.linear.seg_loss`. PyTorch materialises the
``[B, K, H, W]`` upsampled logits and walks them six times (ADE20K: 150 classes at 512x512), so
on CPU the loss of a probe step cost more than the ViT forward the feature cache saves; the
kernel keeps each pixel's logits in registers. It matches the eager expression to float rounding
(tests/benchmarks/probes/test_fused_ce.py) and is used only where that is shown: float32 CPU
logits, finite, integer labels in 0..255. Everything else (CUDA, where the eager expression runs
at memory speed; NaN logits, which must come out NaN as in PyTorch) takes the eager path.
"""
from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import torch

from core import native

SOURCE = Path(__file__).with_name("seg_ce.c")


@lru_cache(maxsize=None)
def _kernel():
    lib = native.load(SOURCE)
    if lib is None:
        return None
    fn = lib.seg_ce_image
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.POINTER(ctypes.c_double),
                                                                ctypes.POINTER(ctypes.c_int64)]
    return fn


@lru_cache(maxsize=None)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="seg-ce")


def available() -> bool:
    return _kernel() is not None


def applies(logits: torch.Tensor, labels: torch.Tensor, ignore: int) -> bool:
    """Whether the kernel computes this loss (else the caller runs the eager expression)."""
    return (logits.device.type == "cpu" and labels.device.type == "cpu" and logits.dtype == torch.float32
            and logits.dim() == 4 and labels.dim() == 3 and labels.shape[0] == logits.shape[0]
            and not labels.dtype.is_floating_point and 0 <= ignore <= 255 and logits.shape[1] <= 256
            and available() and bool(torch.isfinite(logits).all()))


def _labels_u8(labels: torch.Tensor) -> torch.Tensor:
    if labels.dtype == torch.uint8:
        return labels.contiguous()
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > 255:
        bad = lo if lo < 0 else hi
        raise ValueError(f"label {bad} is neither a class index nor the ignore index")
    return labels.to(torch.uint8).contiguous()


def _loss_and_grad(logits: torch.Tensor, labels: torch.Tensor, ignore: int) -> tuple[float, torch.Tensor]:
    """Mean loss (float64 sum / B*H*W) and its gradient ``[B, K, h, w]`` (a channels-last view)."""
    fn = _kernel()
    b, k, h, w = logits.shape
    H, W = labels.shape[-2:]
    z = logits.detach().permute(0, 2, 3, 1).contiguous()
    lab = _labels_u8(labels)
    grad = torch.empty_like(z)
    scale = 1.0 / (b * H * W)

    def one(i: int) -> float:
        loss, bad = ctypes.c_double(), ctypes.c_int64()
        status = fn(z[i].data_ptr(), lab[i].data_ptr(), grad[i].data_ptr(), h, w, k, H, W, ignore, scale,
                     ctypes.byref(loss), ctypes.byref(bad))
        if status == 1:
            y, x = divmod(bad.value, W)
            raise ValueError(f"label {int(lab[i, y, x])} at pixel (y={y}, x={x}) of batch item {i} is neither "
                             f"below the {k} classes nor the ignore index {ignore}")
        if status != 0:
            raise MemoryError("seg_ce: out of memory for the row buffers")
        return loss.value

    pool = _pool(max(1, torch.get_num_threads()))
    total = sum(pool.map(one, range(b)))
    return total * scale, grad.permute(0, 3, 1, 2)


class _SegCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels, ignore):
        loss, grad = _loss_and_grad(logits, labels, ignore)
        ctx.save_for_backward(grad)
        return logits.new_tensor(loss)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * grad_out, None, None


def seg_ce(logits: torch.Tensor, labels: torch.Tensor, ignore: int = 255) -> torch.Tensor:
    """Mean upsampled cross-entropy (see the module docstring); call where :func:`applies`."""
    return _SegCE.apply(logits, labels, int(ignore))


__all__ = ["seg_ce", "applies", "available", "SOURCE"]
