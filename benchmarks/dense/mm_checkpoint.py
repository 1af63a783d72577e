"""Reading MMEngine checkpoints under ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True`` by default: only tensors, plain containers and
explicitly allowed globals are rebuilt, so a checkpoint cannot run code. MMEngine 0.10.7 still
calls plain ``torch.load``, and the checkpoints its runner writes hold a few non-tensor objects:

* the message hub's ``HistoryBuffer`` logs, which keep numpy arrays and scalars (``numpy.ndarray``,
  ``numpy.dtype``, ``numpy.core.multiarray._reconstruct`` / ``scalar``);
* inside each buffer, its statistics methods (``min``, ``max``, ``mean``, ``current``), pickled as
  ``getattr(HistoryBuffer, 'min')``.

Rather than falling back to full unpickling, :func:`allow_mmengine_checkpoints` adds exactly those
to torch's allow-list. ``builtins.getattr`` is not allowed as such: the name is bound to
:func:`history_buffer_method`, which only returns a registered statistics method of
``HistoryBuffer`` and refuses anything else. Any other class in a file is still refused by torch
with an error naming it.
"""
from __future__ import annotations

import importlib
import pickle

import numpy as np
import torch


def _numpy_globals() -> list:
    """numpy callables that pickled arrays, scalars and dtypes reference (``numpy.core`` in
    numpy 1.x, ``numpy._core`` in 2.x)."""
    found = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for name in ("_reconstruct", "scalar"):
            if hasattr(mod, name):
                found.append((getattr(mod, name), f"{module}.{name}"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


#: the statistics methods every HistoryBuffer registers for itself (mmengine 0.10.x)
HISTORY_BUFFER_STATISTICS = ("min", "max", "current", "mean")


def history_buffer_method(obj, name: str):
    """Stands in for ``getattr`` while unpickling: only ``HistoryBuffer.<statistics method>``."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"getattr({getattr(obj, '__name__', type(obj).__name__)}, {name!r}) "
                                 "is not allowed in a checkpoint")


def mmengine_safe_globals() -> list:
    """The globals MMEngine (0.10.x) stores in a checkpoint besides tensors and containers."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_method, "builtins.getattr"), *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Allow those globals in every later ``torch.load(weights_only=True)`` of this process."""
    torch.serialization.add_safe_globals(mmengine_safe_globals())


__all__ = ["mmengine_safe_globals", "allow_mmengine_checkpoints", "history_buffer_method"]
