#!/usr/bin/env python
"""Frozen-feature dense probes of an encoder checkpoint (docs/probes.md).

    python tools/probe.py --protocol PROTOCOL --dataset NAME --data-root DIR --checkpoint CKPT --out DIR
                          [--save-predictions] [--cfg-options KEY=VALUE ...] [--which teacher|student]
                          [--device cpu|cuda]
    python tools/probe.py --convert voc-aug --data-root VOC2012 --sbd-root SBD/dataset
    python tools/probe.py --convert cityscapes --data-root CITYSCAPES
    python tools/probe.py --convert nyu-test --data-root NYU --mat nyu_depth_v2_labeled.mat --splits splits.mat

PROTOCOL / NAME (one config each under configs/probes/): linear and linear_ms on ade20k, voc2012,
cityscapes; hummingbird on voc2012, ade20k; depth_lin1 and depth_lin4 on nyu; correspondence
(Probe3D's) and correspondence_dift on spair. Writes OUT/probe_results.json and, with --save-predictions, OUT/pred/<image id>.png, and
records the run in the results store (--store PATH; docs/leaderboard.md).
Features are extracted once into OUT/feature_cache (or cache.root=DIR) and reused by later runs
with the same checkpoint, layers, resolution and data. Under torchrun each rank extracts its
shards of the cache.
"""
from __future__ import annotations

import argparse
import sys

from core.errors import cli_main


def parse_args(argv=None):
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("checkpoint", "data_root", "out", "cfg_options", "which", "device", "family",
                                               "store", required=("data_root",), which="teacher")])
    p.add_argument("--protocol", help="linear, linear_ms, hummingbird, depth_lin1, depth_lin4, correspondence, correspondence_dift")
    p.add_argument("--dataset", help="ade20k, voc2012, cityscapes, nyu, spair")
    p.add_argument("--save-predictions", action="store_true", help="write OUT/pred/<image id>.png")
    p.add_argument("--convert", choices=("voc-aug", "cityscapes", "nyu-test"),
                   help="prepare a release layout instead of probing (see the usage above)")
    p.add_argument("--sbd-root", metavar="DIR", help="SBD's dataset/ folder (cls/*.mat, train.txt, val.txt)")
    p.add_argument("--mat", metavar="FILE", help="nyu_depth_v2_labeled.mat (--convert nyu-test)")
    p.add_argument("--splits", metavar="FILE", help="NYU's splits.mat (--convert nyu-test)")
    args = p.parse_args(argv)
    if args.convert:
        if args.convert == "voc-aug" and not args.sbd_root:
            p.error("--convert voc-aug needs --sbd-root")
        if args.convert == "nyu-test" and not (args.mat and args.splits):
            p.error("--convert nyu-test needs --mat and --splits")
    else:
        missing = [f"--{k.replace('_', '-')}" for k in ("protocol", "dataset", "checkpoint", "out") if not getattr(args, k)]
        if missing:
            p.error(f"the following arguments are required: {', '.join(missing)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*")
    if args.convert == "voc-aug":
        from benchmarks.probes.datasets import convert_voc_aug
        n = convert_voc_aug(args.data_root, args.sbd_root)
        print(f"wrote {n} SegmentationClassAug maps and ImageSets/Segmentation/{{trainaug,aug}}.txt")
        return 0
    if args.convert == "nyu-test":
        from benchmarks.probes.datasets import convert_nyu_test
        print(f"wrote {convert_nyu_test(args.data_root, args.mat, args.splits)} NYU test frames")
        return 0
    if args.convert == "cityscapes":
        from benchmarks.probes.datasets import convert_cityscapes
        print(f"wrote {convert_cityscapes(args.data_root)} labelTrainIds maps")
        return 0
    from benchmarks.probes.run import RESULTS, run_probe
    distributed = _init_distributed()
    try:
        doc = run_probe(args.protocol, args.dataset, args.data_root, args.checkpoint, args.out,
                        save_predictions=args.save_predictions, cfg_options=args.cfg_options,
                        which=args.which, device=args.device, family=args.family)
    finally:
        if distributed:
            import torch.distributed as dist
            dist.destroy_process_group()
    if doc is not None:
        print(f"{args.protocol} on {args.dataset}: " + "  ".join(
            f"{k} {v:.4g}" for k, v in doc["metrics"].items() if isinstance(v, (int, float))))
        print(f"wrote {args.out}/{RESULTS}")
        from pathlib import Path

        from benchmarks.leaderboard.records import record_probe   # after the file: never loses it
        from benchmarks.probes.run import config_path
        record_probe(doc, result_file=Path(args.out) / RESULTS, config_path=config_path(args.protocol, args.dataset),
                     options=args.cfg_options, store=args.store)
    return 0


def _init_distributed() -> bool:
    """A process group when started by torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    import os
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


if __name__ == "__main__":
    sys.exit(cli_main(main))
