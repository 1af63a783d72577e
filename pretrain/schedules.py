"""Per-iteration and per-epoch schedules (numpy arrays, one value per step)."""
from __future__ import annotations

import numpy as np


def cosine_schedule(base: float, final: float, epochs: int, iters_per_epoch: int,
                    warmup_epochs: float = 0, start_warmup: float = 0.0) -> np.ndarray:
    """Linear warm-up from ``start_warmup`` to ``base`` over ``warmup_epochs``, then a half cosine
    from ``base`` to ``final``. Returns ``[epochs * iters_per_epoch]`` float64."""
    total = epochs * iters_per_epoch
    warm = min(int(round(warmup_epochs * iters_per_epoch)), total)
    warmup = np.linspace(start_warmup, base, warm, endpoint=False) if warm else np.zeros(0)
    steps = np.arange(total - warm)
    denom = max(len(steps), 1)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / denom))
    return np.concatenate([warmup, cosine])


def linear_warmup_constant(start: float, final: float, warmup_epochs: int, epochs: int) -> np.ndarray:
    """Per-epoch values: linear from ``start`` to ``final`` over ``warmup_epochs``, then ``final``.
    Returns ``[epochs]`` (the teacher-temperature schedule)."""
    warm = np.linspace(start, final, warmup_epochs) if warmup_epochs > 0 else np.zeros(0)
    return np.concatenate([warm, np.full(max(epochs - warmup_epochs, 0), final)])[:epochs]
