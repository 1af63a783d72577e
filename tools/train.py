#!/usr/bin/env python
"""Train a dense-prediction config (MMDetection or MMSegmentation, from its default_scope).

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                                 [--cfg-options model.backbone.init_cfg.checkpoint=PATH data_root=DIR ...]

Multi-GPU / multi-node: tools/dist_train.sh CONFIG GPUS [args]. --amp switches to fp16 mixed
precision (AmpOptimWrapper) on CUDA machines and is ignored, with a warning, on CPU. --resume
without a path resumes from the latest checkpoint of the work dir. Changing data_root moves every
dataset path of the config under the new root (docs/dense.md). Errors in the data, the config or
the backbone checkpoint are reported as one line "error: ..." (exit status 2).
"""
from __future__ import annotations

import argparse
import sys

from core.cli import ToolParser
from core.errors import cli_main


def parse_args(argv=None):
    from benchmarks.dense.runner import parse_runner_args, runner_flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[runner_flags()])
    p.add_argument("config", help="config file")
    p.add_argument("--amp", action="store_true", help="fp16 mixed precision (CUDA only)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from CKPT, or from the work dir's latest checkpoint without CKPT")
    return parse_runner_args(p, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks.dense.runner import build_runner, load_config, prepare_train, refused_pickles
    cfg = None
    with refused_pickles(lambda: cfg and cfg.get("load_from")):
        cfg = load_config(args.config, args.cfg_options)
        prepare_train(cfg, args.config, args.work_dir, args.launcher, args.amp, args.resume,
                      check_data=not args.no_data_check)
        runner = build_runner(cfg)
        runner.train()
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
