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
import os
import pickle
import sys

from core.errors import cli_main


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="config file")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    p.add_argument("--amp", action="store_true", help="fp16 mixed precision (CUDA only)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from CKPT, or from the work dir's latest checkpoint without CKPT")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                   help="override config keys, e.g. data_root=DIR model.backbone.init_cfg.checkpoint=F")
    p.add_argument("--no-data-check", action="store_true",
                   help="skip the up-front checks of the data and backbone checkpoint files")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks.dense.runner import build_runner, load_config, prepare_train
    cfg = None
    try:
        cfg = load_config(args.config, args.cfg_options)
        prepare_train(cfg, args.config, args.work_dir, args.launcher, args.amp, args.resume,
                      check_data=not args.no_data_check)
        runner = build_runner(cfg)
        runner.train()
    except pickle.UnpicklingError as err:  # a checkpoint holding classes outside the allow-list
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {(cfg and cfg.get('load_from')) or 'checkpoint'}: refused by torch.load(weights_only=True): "
              f"{first}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
