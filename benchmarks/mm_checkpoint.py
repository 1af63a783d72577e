"""Reading MMEngine checkpoints under ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True`` by default: only tensors, plain containers and
explicitly allowed classes are rebuilt, so a checkpoint cannot run code. MMEngine 0.10.7 still
calls plain ``torch.load`` and its checkpoints hold a few non-tensor objects: the message hub's
``HistoryBuffer`` logs (which keep numpy arrays) and numpy scalars / dtypes in the metadata.
Rather than falling back to full unpickling, :func:`allow_mmengine_checkpoints` adds exactly those
classes to torch's allow-list. Anything else in a file (a foreign checkpoint with custom classes)
is still refused by torch with an error naming the class.
"""
from __future__ import annotations

import importlib

import numpy as np
import torch


def _numpy_globals() -> list:
    """numpy callables that pickled arrays, scalars and dtypes reference (names differ between
    numpy 1.x ``numpy.core`` and 2.x ``numpy._core``)."""
    found = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        found += [getattr(mod, name) for name in ("_reconstruct", "scalar") if hasattr(mod, name)]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def mmengine_safe_globals() -> list:
    """The classes MMEngine (0.10.x) stores in a checkpoint besides tensors and containers."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Allow those classes in every later ``torch.load(weights_only=True)`` of this process."""
    torch.serialization.add_safe_globals(mmengine_safe_globals())


__all__ = ["mmengine_safe_globals", "allow_mmengine_checkpoints"]
