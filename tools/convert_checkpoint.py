#!/usr/bin/env python
"""Convert a ViT checkpoint of any supported family to this project's encoder export (.safetensors).

    python tools/convert_checkpoint.py SRC --out DST.safetensors [--which student] [--patch-size 16]
                                       [--family NAME] [--trust-pickle]

What is read and written, and why nothing in SRC is unpickled: pretrain/convert.py.
"""
import sys

from core.errors import cli_main
from pretrain.convert import main

if __name__ == "__main__":
    sys.exit(cli_main(main))
