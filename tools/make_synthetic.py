#!/usr/bin/env python
"""Generate a tiny real-format data set for the dense benchmarks.

    python tools/make_synthetic.py coco --out OUT [--n-train 24 --n-val 8 --height 128 --width 160 --seed 0]
    python tools/make_synthetic.py ade  --out OUT [...]

coco: COCO-format instance segmentation (OUT/{train,val}/*.jpg, OUT/annotations/instances_*.json,
3 shape categories). ade: ADE20K layout (OUT/images/{training,validation}, OUT/annotations/...).
Point a config at it with --cfg-options data_root=OUT (see docs/dense.md).
"""
from __future__ import annotations

import argparse
import sys

from core.errors import FLSLError, cli_main
from core.files import check_output_path


def main(argv=None) -> int:
    from core.cli import ToolParser, flags, positive_int
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("out", "seed", required=("out",), seed=0)])
    p.add_argument("kind", choices=("coco", "ade"))
    p.add_argument("--n-train", type=positive_int, default=24, help="training images (default 24)")
    p.add_argument("--n-val", type=positive_int, default=8, help="validation images (default 8)")
    p.add_argument("--height", type=positive_int, default=128, help="image height, pixels (default 128)")
    p.add_argument("--width", type=positive_int, default=160, help="image width, pixels (default 160)")
    args = p.parse_args(argv)
    if min(args.height, args.width) < 32:
        raise FLSLError("--height/--width: images of at least 32x32 pixels")
    check_output_path(args.out)
    if args.kind == "coco":
        from synthetic.coco import write_coco as write
    else:
        from synthetic.ade import write_ade as write
    root = write(args.out, n_train=args.n_train, n_val=args.n_val, height=args.height,
                 width=args.width, seed=args.seed)
    print(f"wrote {args.kind} synthetic set ({args.n_train} train / {args.n_val} val images of "
          f"{args.height}x{args.width}) to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
