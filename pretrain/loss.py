"""The FLSL objective (docs/method.md section 3): pure functions of tensors, no I/O.

Symbols: B images, N tokens of a student view, M tokens of the teacher view, n selected tokens
per view, C embedding width, K prototypes, T = all selected tokens of all student views.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from core.dist import is_distributed


def attend(queries: torch.Tensor, keys: torch.Tensor, scale: float) -> torch.Tensor:
    """One mean-shift step: ``softmax_j(scale * q . k_j) @ k``.

    queries ``[B, n, C]``, keys (also the values) ``[B, M, C]`` -> ``[B, n, C]``. Runs as a fused
    single-head scaled-dot-product attention (no ``[B, n, M]`` matrix kept for backward on
    kernels that support it).
    """
    out = F.scaled_dot_product_attention(queries.unsqueeze(1), keys.unsqueeze(1), keys.unsqueeze(1),
                                         scale=scale)
    return out.squeeze(1)


def select_tokens(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``src [B, N, C]`` gathered at ``index [B, n]`` (token positions) -> ``[B, n, C]``."""
    return torch.gather(src, 1, index.unsqueeze(-1).expand(-1, -1, src.shape[-1]))


def mask_to_index(mask: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, N]`` with the same count n in every row -> sorted positions ``[B, n]``."""
    counts = mask.sum(1)
    n = int(counts[0])
    if not bool((counts == n).all()):
        raise ValueError(f"token mask must select the same number of tokens in every row, got {counts.tolist()}")
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    return order[:, :n]


def mean_shift(src: torch.Tensor, tgt: torch.Tensor, select: torch.Tensor, scale: float):
    """Mean-shift of the selected source tokens over the target tokens (the trainer's own path).

    Args:
        src: ``[B, N, C]`` token map (queries are taken from it).
        tgt: ``[B, M, C]`` keys and values (``src`` itself for the intra-view step, the teacher's
            tokens for the inter-view mode).
        select: which tokens of ``src`` are queries: positions ``[B, n]`` (integer), or a bool
            mask ``[B, N]`` with the same number n of True per row.
        scale: the attention's multiplier beta (the authors' "temperature").
    Returns:
        ``(selected_src [B, n, C], modes [B, n, C])`` with
        ``modes_i = sum_j softmax_j(scale * x_i . t_j) t_j``.
    """
    index = mask_to_index(select) if select.dtype == torch.bool else select
    x = select_tokens(src, index)
    return x, attend(x, tgt, scale)


class _AllReduceMeanPassGrad(torch.autograd.Function):
    """All-reduce mean in forward; identity in backward (the gradient passes through unchanged,
    and DDP's gradient averaging then gives each token its 1 / global-count share)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x / dist.get_world_size()

    @staticmethod
    def backward(ctx, grad):
        return grad


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over processes (identity without an initialised process group), gradient pass-through."""
    if is_distributed():
        return _AllReduceMeanPassGrad.apply(x)
    return x


class FLSLLoss(nn.Module):
    """``L = upsilon * L_ms + eta * L_km + gamma * L_vmr`` (docs/method.md section 3).

    Args:
        student_temp: tau_s.
        teacher_temps: per-epoch teacher temperatures tau_t (indexed by ``epoch``).
        coefficients: (upsilon, eta, gamma).
        volume_maximization: add the volume-maximisation regulariser (else L_vmr = 0).
        centering: subtract an EMA (0.9) of the teacher logits' batch mean before the softmax.
        center_momentum: EMA momentum of the centre.
    """

    def __init__(self, student_temp: float, teacher_temps: Sequence[float],
                 coefficients: Sequence[float] = (0.03, 1.0, 5.0), volume_maximization: bool = True,
                 centering: bool = False, center_momentum: float = 0.9, out_dim: int | None = None):
        super().__init__()
        self.student_temp = float(student_temp)
        self.teacher_temps = [float(t) for t in teacher_temps]
        self.coefficients = tuple(float(c) for c in coefficients)
        self.volume_maximization = volume_maximization
        self.centering = centering
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim) if out_dim else None)

    def teacher_temp(self, epoch: int) -> float:
        return self.teacher_temps[min(int(epoch), len(self.teacher_temps) - 1)]

    def forward(self, tokens: torch.Tensor, modes: torch.Tensor, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor, epoch: int, ms_coefficient: float | None = None):
        """Args: tokens x ``[T, C]``, modes m ``[T, C]``, student logits h_s(m) ``[T, K]``,
        teacher logits h_t(u) ``[T, K]``; ``ms_coefficient`` overrides upsilon (its schedule).
        Returns ``(total, (ms, kmeans, vmr))``, scalars."""
        upsilon, eta, gamma = self.coefficients
        if ms_coefficient is not None:
            upsilon = float(ms_coefficient)
        k = student_logits.shape[-1]
        ms = 2.0 - 2.0 * F.cosine_similarity(tokens.float(), modes.float(), dim=-1).mean()

        t_logits = teacher_logits.detach().float()
        if self.centering:
            if self.center is None:
                self.center = torch.zeros(1, k, device=t_logits.device)
            t_logits = t_logits - self.center
        q = F.softmax(t_logits / self.teacher_temp(epoch), dim=-1)
        log_p = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)
        kmeans = -(q * log_p).sum(-1).mean()

        if self.volume_maximization:
            p_bar = all_reduce_mean(log_p.exp().mean(0))
            vmr = (p_bar * torch.log(p_bar.clamp_min(1e-30))).sum() + math.log(k)
        else:
            vmr = torch.zeros((), device=ms.device)
        if self.centering:
            self._update_center(teacher_logits.detach().float())
        total = upsilon * ms + eta * kmeans + gamma * vmr
        return total, (ms, kmeans, vmr)

    @torch.no_grad()
    def _update_center(self, teacher_logits: torch.Tensor) -> None:
        batch_center = teacher_logits.mean(0, keepdim=True)
        if is_distributed():
            dist.all_reduce(batch_center)
            batch_center /= dist.get_world_size()
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


__all__ = ["attend", "select_tokens", "mask_to_index", "mean_shift", "all_reduce_mean", "FLSLLoss"]
