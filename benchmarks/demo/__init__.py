"""The end-to-end demo (``tools/demo.sh``): FLSL pretraining on generated images against the
same encoder at its initialisation, on every downstream protocol at a CPU budget.

``run``     the stages, run through the one step runner (:mod:`core.steps`)
``claims``  means, spreads, 95% intervals and the verdicts the summary may state
"""
