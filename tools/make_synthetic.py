#!/usr/bin/env python
"""Generate a tiny real-format data set for the dense benchmarks.

    python tools/make_synthetic.py coco OUT [--n-train 24 --n-val 8 --height 128 --width 160 --seed 0]
    python tools/make_synthetic.py ade  OUT [...]

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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("coco", "ade"))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n-train", type=int, default=24)
    p.add_argument("--n-val", type=int, default=8)
    p.add_argument("--height", type=int, default=128, help="image height (pixels)")
    p.add_argument("--width", type=int, default=160, help="image width (pixels)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if min(args.n_train, args.n_val) < 1 or min(args.height, args.width) < 32:
        raise FLSLError("--n-train/--n-val/--height/--width: need at least 1 image per split and "
                        "images of at least 32x32 pixels")
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
