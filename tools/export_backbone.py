#!/usr/bin/env python
"""Export the teacher encoder of a training run as .safetensors.

    python tools/export_backbone.py WORK_DIR_OR_CKPT OUT.safetensors [--student]

The file holds timm keys and the architecture in its metadata; load it with
``pretrain.checkpoint.load_pretrained_encoder(OUT)`` or through timm (README: "Exported backbones").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="work dir (uses latest.pth) or a training checkpoint")
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--student", action="store_true", help="export the student instead of the teacher")
    args = p.parse_args(argv)
    from pretrain.checkpoint import CheckpointError, export_encoder, load_pretrained_encoder

    src = Path(args.source)
    if src.is_dir():
        src = src / "latest.pth"
    if not str(args.out).endswith(".safetensors"):
        print("error: OUT must end with .safetensors", file=sys.stderr)
        return 2
    try:
        model, loaded = load_pretrained_encoder(src, which="student" if args.student else "teacher")
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    export_encoder(model, args.out)
    print(f"exported {'student' if args.student else 'teacher'} encoder ({loaded.spec.arch}, "
          f"{dict(loaded.spec.kwargs) or 'default size'}, format {loaded.format}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
