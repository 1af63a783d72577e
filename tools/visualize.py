#!/usr/bin/env python
"""k-means cluster maps of an encoder's patch features and mean-shift attention maps of chosen
patches, saved as PNG files.

    python tools/visualize.py CKPT IMAGE [IMAGE ...] [--out DIR] [--k 8] [--patches ROW,COL ...]
                              [--size 224] [--scale BETA] [--seed 0]

CKPT: any encoder checkpoint the suite reads (our export or training state, the authors' FLSL
release, DINO, iBOT, timm). Each image is resized so its short side is --size pixels (both sides
floored to a multiple of the patch size); for each one the tool writes, under --out:
  <name>_clusters.png          k-means (cosine) of the post-LayerNorm patch features, over the image
  <name>_attn_<row>_<col>.png  softmax(beta * z_q . z_j) of the query patch (row, col) over all
                               patches; beta defaults to the objective's 0.1 / sqrt(C)
  <name>_summary.png           image | clusters | attention maps, side by side
--patches takes patch indices ROW,COL or fractions Y,X (e.g. 0.5,0.5); default: the centre and
three points around it.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="encoder checkpoint (any supported format)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", default="work_dirs/figures", help="output folder (default work_dirs/figures)")
    p.add_argument("--k", type=int, default=8, help="number of k-means clusters (default 8)")
    p.add_argument("--patches", nargs="+", default=None, metavar="ROW,COL", help="query patches")
    p.add_argument("--size", type=int, default=224, help="short side of the network input, pixels")
    p.add_argument("--scale", type=float, default=None, help="attention scale beta (default 0.1/sqrt(C))")
    p.add_argument("--seed", type=int, default=0, help="k-means seed")
    p.add_argument("--which", choices=("teacher", "student"), default="teacher",
                   help="encoder of a training checkpoint holding both")
    args = p.parse_args(argv)
    if args.k < 1:
        p.error("--k must be at least 1")
    if args.size < 16:
        p.error("--size must be at least 16 pixels")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*")
    from benchmarks.reproduce.figures import FigureError, load_image, parse_patches, render_figures
    from pretrain.checkpoint import CheckpointError, load_pretrained_encoder
    from pretrain.encoder import patch_size

    try:
        model, loaded = load_pretrained_encoder(args.checkpoint, which=args.which)
        p = patch_size(model)
        print(f"encoder {loaded.spec.arch} (format {loaded.format}, patch {p}) from {args.checkpoint}")
        for path in args.images:
            image = load_image(path, args.size, p)
            grid = (image.shape[0] // p, image.shape[1] // p)
            patches = parse_patches(args.patches, grid) if args.patches else None
            figs = render_figures(model, image, args.out, Path(path).stem, k=args.k, patches=patches,
                                  scale=args.scale, seed=args.seed)
            print(f"{path}: {image.shape[1]}x{image.shape[0]} px, {grid[0]}x{grid[1]} patches -> "
                  f"{figs.summary} (+ {figs.clusters.name}, {len(figs.attention)} attention maps)")
    except (CheckpointError, FigureError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
