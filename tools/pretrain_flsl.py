#!/usr/bin/env python
"""FLSL pretraining entry point (one process; tools/pretrain.sh launches torchrun for several).

    python tools/pretrain_flsl.py [CONFIG] [--work-dir DIR] [--resume PATH | --no-resume]
                                  [--cfg-options key=value ...]

Named pretrain_flsl.py, not pretrain.py: a script's folder comes first on ``sys.path``, so a
script called pretrain.py would hide the ``pretrain`` package from itself. The command itself is
pretrain/run.py.
"""
import sys

from core.errors import cli_main
from pretrain.run import main

if __name__ == "__main__":
    sys.exit(cli_main(main))
