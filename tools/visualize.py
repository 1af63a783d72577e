#!/usr/bin/env python
"""k-means cluster maps of an encoder's patch features and mean-shift attention maps of chosen
patches, saved as PNG files.

    python tools/visualize.py --checkpoint CKPT IMAGE [IMAGE ...] [--out DIR] [--k 8]
                              [--patches ROW,COL ...] [--short-side 224] [--scale BETA] [--seed 0]
                              [--compare CKPT2 ...] [--labels NAME NAME2 ...]

CKPT: any encoder checkpoint the suite reads (our export or training state, the authors' FLSL
release, DINO, iBOT, timm). Each image is resized so its short side is --short-side pixels (both sides
floored to a multiple of the patch size); for each one the tool writes, under --out:
  <name>_clusters.png          k-means (cosine) of the post-LayerNorm patch features, over the image
  <name>_attn_<row>_<col>.png  softmax(beta * z_q . z_j) of the query patch (row, col) over all
                               patches; beta defaults to the objective's 0.1 / sqrt(C)
  <name>_summary.png           the titled figure: image with the query patches numbered, cluster
                               map, attention map of each query; patches drawn as blocks, a colour
                               bar and a cluster legend
--patches takes patch indices ROW,COL or fractions Y,X (e.g. 0.5,0.5); default: the centre and
three points around it. --compare draws more encoders (same patch size) as further rows of the
summary (e.g. FLSL beside its random initialisation), named by --labels (default: the file
names); their cluster and attention PNGs are then prefixed with the label.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path



def parse_args(argv=None):
    from core.cli import ToolParser, flags, positive_int
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("checkpoint", "out", "short_side", "seed", "which", "family",
                                               required=("checkpoint",), out="work_dirs/figures",
                                               short_side=224, seed=0, which="teacher")])
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--k", type=positive_int, default=8, help="number of k-means clusters (default 8)")
    p.add_argument("--patches", nargs="+", default=None, metavar="ROW,COL", help="query patches")
    p.add_argument("--scale", type=float, default=None, help="attention scale beta (default 0.1/sqrt(C))")
    p.add_argument("--compare", nargs="+", default=[], metavar="CKPT",
                   help="more encoders, drawn as further rows of the summary figure")
    p.add_argument("--labels", nargs="+", default=None, metavar="NAME",
                   help="row names: one per encoder (CKPT first, then --compare)")
    args = p.parse_args(argv)
    if args.labels is not None and len(args.labels) != 1 + len(args.compare):
        p.error(f"--labels: {len(args.labels)} names for {1 + len(args.compare)} encoders")
    if args.short_side < 16:
        p.error("--short-side must be at least 16 pixels")
    return args


def main(argv=None) -> int:
    """Errors (a checkpoint, an image, a patch) are FLSLErrors: cli_main prints one line, exit 2."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*")
    from benchmarks.features import load_image
    from benchmarks.figures.maps import parse_patches, render_figures
    from pretrain.checkpoint import load_pretrained_encoder
    from pretrain.encoder import patch_size

    from core.files import check_output_path
    check_output_path(args.out, [args.checkpoint, *args.compare, *args.images])
    models = []
    for ckpt in [args.checkpoint, *args.compare]:
        model, loaded = load_pretrained_encoder(ckpt, which=args.which, family=args.family)
        print(f"encoder {loaded.spec.arch} (format {loaded.format}, patch {patch_size(model)}) from {ckpt}")
        models.append(model)
    p = patch_size(models[0])
    labels = args.labels or [Path(c).stem for c in [args.checkpoint, *args.compare]]
    for path in args.images:
        image = load_image(path, args.short_side, p)
        grid = (image.shape[0] // p, image.shape[1] // p)
        patches = parse_patches(args.patches, grid) if args.patches else None
        figs = render_figures(models, image, args.out, Path(path).stem, k=args.k, patches=patches,
                              scale=args.scale, seed=args.seed, labels=labels)
        print(f"{path}: {image.shape[1]}x{image.shape[0]} px, {grid[0]}x{grid[1]} patches -> "
              f"{figs.summary} (+ {figs.clusters.name}, {len(figs.attention)} attention maps)")
    return 0


if __name__ == "__main__":
    from core.errors import cli_main
    sys.exit(cli_main(main))
