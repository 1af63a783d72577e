"""Figures of what an encoder learned (``tools/visualize.py``) and of a run's results: cluster
and mean-shift attention maps, pretraining curves, the results chart (:mod:`.maps`)."""
