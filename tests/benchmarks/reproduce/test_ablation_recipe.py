"""The ablation rows keep the authors' warm-up rule: a fraction 0.1 of the run (their
``--warmup_epochs 0.1``), so a 100-epoch ablation warms up for 10 epochs, as the resolved config
that the pretraining tool reads says."""
from __future__ import annotations

from benchmarks.reproduce.registry import ABLATIONS
from core.cli import flags
from core.config import read_config
from pretrain.config_check import apply_pretrain_options, check_config


def test_every_ablation_warms_up_for_a_tenth_of_its_epochs(repo_root):
    parser = flags("cfg_options")
    assert ABLATIONS
    for run in ABLATIONS.values():
        cfg = read_config(repo_root / run.config)
        assert cfg.optim.warmup_epochs == int(0.1 * cfg.train.epochs)      # the 300-epoch recipe: 30
        apply_pretrain_options(cfg, parser.parse_args(["--cfg-options", *run.options]).cfg_options)
        check_config(cfg, run.config)
        assert (cfg.train.epochs, cfg.optim.warmup_epochs) == (100, 10), run.name
