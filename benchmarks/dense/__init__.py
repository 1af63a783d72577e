"""The dense-prediction plugin for MMDetection 3 and MMSegmentation 1.

Importing this package (configs do it with
``custom_imports=dict(imports=['benchmarks.dense'], allow_failed_imports=False)``):

* registers :class:`~benchmarks.dense.backbone.FLSLViT` (encoder + multi-scale adapter) in the
  ``MODELS`` registry of every installed framework;
* lets ``torch.load(weights_only=True)`` read the framework's own training checkpoints, through
  exactly the allow-list of :mod:`benchmarks.dense.mm_checkpoint` (no other pickled class is
  admitted), so resuming and testing work with MMDetection's / MMSegmentation's own
  ``tools/train.py`` and ``tools/test.py`` as well as with ours.

Modules: :mod:`.backbone`, :mod:`.adapter`, :mod:`.mm_checkpoint`, :mod:`.data_check`
(annotation checks before a run), :mod:`.runner` (config loading, data-root moves, runs).
"""
from .backbone import FLSLViT, REGISTERED_IN
from .mm_checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

__all__ = ["FLSLViT", "REGISTERED_IN", "allow_mmengine_checkpoints"]
