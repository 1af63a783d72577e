#!/usr/bin/env python
"""Export the teacher encoder of a training run as .safetensors.

    python tools/export_backbone.py WORK_DIR_OR_CKPT --out OUT.safetensors [--which student]

The file holds timm keys and the architecture in its metadata; load it with
``pretrain.checkpoint.load_pretrained_encoder(OUT)`` or through timm (README: "Exported backbones").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import cli_main
from core.files import check_output_path


def main(argv=None) -> int:
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("out", "which", "family", required=("out",), which="teacher")])
    p.add_argument("source", help="work dir (uses latest.pth) or a training checkpoint")
    args = p.parse_args(argv)
    from pretrain.checkpoint import CheckpointError, export_encoder, load_pretrained_encoder

    src = Path(args.source)
    if src.is_dir():
        src = src / "latest.pth"
    if not str(args.out).endswith(".safetensors"):
        raise CheckpointError(f"{args.out} (--out): must end with .safetensors")
    check_output_path(args.out, [src])
    model, loaded = load_pretrained_encoder(src, which=args.which, family=args.family)
    export_encoder(model, args.out)
    print(f"exported {args.which} encoder ({loaded.spec.arch}, "
          f"{dict(loaded.spec.kwargs) or 'default size'}, format {loaded.format}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
