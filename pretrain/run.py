"""The FLSL pretraining command (one process; tools/pretrain.sh launches torchrun for several):
configuration read and checked, generated data prepared where the config asks for it, the
work folder checked, then the trainer.

    python tools/pretrain_flsl.py [CONFIG] [--work-dir DIR] [--resume PATH | --no-resume]
                             [--cfg-options key=value ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path


DEFAULT_CONFIG = "configs/pretrain/flsl_tiny_synthetic.py"


def parse_args(argv=None):
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("work_dir", "cfg_options")])
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", help="training checkpoint to resume from (default: WORK_DIR/latest.pth if present)")
    g.add_argument("--no-resume", action="store_true", help="start from scratch even if WORK_DIR has a checkpoint")
    # tools/launch.sh (shared with dist_train.sh) passes MMEngine's launcher flag; torchrun's
    # environment variables are what the trainer reads, so "pytorch" and "none" behave alike.
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*")
    from core.config import read_config
    from core.files import check_output_path
    from pretrain.config_check import apply_pretrain_options, check_config
    from pretrain.data import prepare_data_root
    from pretrain.trainer import Trainer

    cfg_path = Path(args.config)
    cfg = read_config(cfg_path)
    apply_pretrain_options(cfg, args.cfg_options)
    check_config(cfg, str(cfg_path))
    work_dir = check_output_path(args.work_dir or Path("work_dirs") / cfg_path.stem, [cfg.data.root],
                                 option="--work-dir")
    try:
        prepare_data_root(cfg.data, int(os.environ.get("RANK", "0")), say=lambda m: print(m, flush=True))
        resume = None if args.no_resume else (args.resume or "auto")
        trainer = Trainer(cfg, work_dir, resume=resume)
        out = trainer.train()
    except KeyboardInterrupt:
        print("interrupted; resume with the same command (the last checkpoint is kept)", file=sys.stderr)
        return 130
    if out is not None:
        print(f"done: teacher encoder exported to {out}")
    return 0


__all__ = ["DEFAULT_CONFIG", "parse_args", "main"]
