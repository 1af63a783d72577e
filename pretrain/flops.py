"""Model FLOPs of a training step and the devices' peak throughput, for model FLOP utilisation
(MFU = achieved model FLOP/s / the device's dense peak for the training precision).

The FLOPs are counted, not estimated: torch's ``FlopCounterMode`` runs the student forward on
all student views, the teacher's targets and the backward pass for one image on fake tensors
(shapes only: nothing is computed), with freshly built networks (the training networks are not
touched).
Matrix products, convolutions and attention are counted (2 per multiply-add); element-wise work
is not, as is usual for MFU. Attention's backward pass counts as torch counts a fused kernel's:
2.5x its forward (the attention scores are recomputed), so the total is ~0.8% above the 3x-forward
convention for ViT-S/16.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

#: dense (no sparsity) peak FLOP/s per device by precision, from the vendors' data sheets; the
#: first key contained in ``torch.cuda.get_device_name()`` wins (more specific names first)
PEAK_FLOPS = (
    ("H100 PCIe", {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12}),
    ("H100 NVL", {"bf16": 835e12, "fp16": 835e12, "fp32": 60e12}),
    ("H100", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}),      # SXM
    ("H200", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}),
    ("GH200", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}),
    ("B200", {"bf16": 2250e12, "fp16": 2250e12, "fp32": 80e12}),
    ("A100", {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12}),
    ("A10G", {"bf16": 70e12, "fp16": 70e12, "fp32": 31.2e12}),
    ("A10", {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12}),
    ("L40S", {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12}),
    ("L4", {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12}),
    ("V100", {"fp16": 125e12, "fp32": 15.7e12}),
)

def _cpu_attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


#: torch's counter knows the GPU attention kernels only; the CPU's fused kernel (the one the count
#: below runs through, on CPU tensors) gets the same formulas
_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}

_PRECISION = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32", torch.float32: "fp32"}


def peak_flops(device: torch.device | str, amp_dtype: torch.dtype | None) -> float | None:
    """Dense peak FLOP/s of ``device`` for training in ``amp_dtype`` (``None``: fp32), or
    ``None`` where unknown (CPUs, devices not in :data:`PEAK_FLOPS`)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_FLOPS:
        if key in name:
            return peaks.get(_PRECISION[amp_dtype])
    return None


def train_step_flops(make_net: Callable[[], torch.nn.Module], global_size: int, local_size: int,
                     n_local: int, n_global_tokens: int, n_local_tokens: int) -> float:
    """Model FLOPs of one training step per image: student forward on the global view and the
    ``n_local`` local views with their sampled tokens, the teacher's targets on view 0, and the
    backward pass of everything the loss depends on. ``make_net()`` builds a fresh network like
    the trainer's (:class:`pretrain.model.FLSLNet`, on the CPU); it runs on fake tensors."""
    student, teacher = make_net(), make_net()
    teacher.requires_grad_(False)
    with FakeTensorMode(allow_non_fake_inputs=True), \
            FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as counter:
        glob = torch.empty(1, 3, global_size, global_size)
        locs = torch.empty(1, n_local, 3, local_size, local_size)
        teacher_view = torch.empty(1, 3, global_size, global_size)
        gi = torch.zeros(1, n_global_tokens, dtype=torch.int64)
        li = torch.zeros(1, n_local, n_local_tokens, dtype=torch.int64)
        x_g, x_l, tokens, modes, logits = student(glob, locs, gi, li, 0.01)
        targets = teacher.teacher_targets(teacher_view, x_g, x_l, 0.01)
        # every output the loss uses, so that the backward pass covers the same products
        (tokens.sum() + modes.sum() + logits.float().sum() + 0 * targets.sum()).backward()
    return float(counter.get_total_flops())


__all__ = ["PEAK_FLOPS", "peak_flops", "train_step_flops"]
