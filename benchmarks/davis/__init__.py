"""DAVIS 2017 semi-supervised video object segmentation by label propagation (docs/davis.md).

Modules: :mod:`.io` (official layout, palette PNGs), :mod:`.features` (frames and encoders of
any supported checkpoint), :mod:`.propagation` (label propagation on local windows),
:mod:`.pipeline` (a split end to end, PNG output), :mod:`.metrics` and :mod:`.bitmaps`
(J, F and statistics compatible with davis2017-evaluation), :mod:`.evaluate` (scoring PNG
folders or in-memory predictions), :mod:`.config` (protocol settings from MMEngine configs).
The plain literal procedures these are checked and timed against live in
:mod:`speed.reference.davis`.
"""
