"""Reproducing the paper's tables: which runs make each row, running them through the suite's
own tools, collecting their metrics and writing the tables next to the paper's numbers.

``references``  the paper's numbers (``benchmarks/reproduce/paper_tables.json``) with their sources
``registry``    the recipe of every row: pretraining config, downstream config, checkpoint
``plan``        the exact commands of a table (:class:`core.steps.Step`, run by
                :func:`core.steps.run_steps`) (tools/pretrain.sh, dist_train.sh, dist_test.sh,
                davis_propagate.py, uavdt2coco.py; SLURM for pretraining) and which of them are
                already done; the one place that builds the downstream command lines
``collect``     metrics read back from work dirs (test_metrics.json, MMEngine json logs,
                DAVIS results), in percent under the tables' metric keys
``writer``      Markdown and CSV in the paper's layout, ours / paper / difference; leaderboard

``tools/reproduce.py`` is the command line over these modules.

The demo lives in :mod:`benchmarks.demo`, the figures in :mod:`benchmarks.figures`.
"""


from .errors import ReproduceError

__all__ = ["ReproduceError"]
