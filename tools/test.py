#!/usr/bin/env python
"""Evaluate a trained dense-prediction checkpoint: COCO bbox / segm AP (pycocotools through
MMDetection's CocoMetric) or mIoU (MMSegmentation's IoUMetric), from the config's default_scope.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options data_root=DIR ...]

CHECKPOINT is a file written by tools/train.py (MMEngine). It is read with
torch.load(weights_only=True) plus an allow-list of the classes MMEngine stores
(benchmarks/dense/mm_checkpoint.py); files needing anything else are refused. The metrics are printed
and written to WORK_DIR/test_metrics.json, then recorded in the results store (--store PATH, else
$FLSL_RESULTS, else work_dirs/results.db; docs/leaderboard.md). Multi-GPU: tools/dist_test.sh CONFIG CHECKPOINT GPUS.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import cli_main


def parse_args(argv=None):
    from benchmarks.dense.runner import parse_runner_args, runner_flags
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[runner_flags(), flags("store")])
    p.add_argument("config", help="config file")
    p.add_argument("checkpoint", help="checkpoint written by tools/train.py")
    return parse_runner_args(p, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks.dense.runner import (build_runner, load_config, load_for_test, prepare_test,
                                         refused_pickles, summarize, write_metrics)
    with refused_pickles(lambda: args.checkpoint):
        cfg = load_config(args.config, args.cfg_options)
        prepare_test(cfg, args.config, args.checkpoint, args.work_dir, args.launcher,
                     check_data=not args.no_data_check)
        runner = build_runner(cfg)
        load_for_test(runner, args.checkpoint)  # strict: a partial match is refused, naming the keys
        metrics = runner.test()
    from mmengine.dist import is_main_process
    if is_main_process():
        for line in summarize(metrics):
            print(line)
        write_metrics(metrics, Path(cfg.work_dir) / "test_metrics.json")
        from benchmarks.leaderboard.records import record_dense_test   # after the file: never loses it
        record_dense_test(metrics, config_path=args.config, cfg=cfg, checkpoint=args.checkpoint,
                          metrics_path=Path(cfg.work_dir) / "test_metrics.json", store=args.store)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
