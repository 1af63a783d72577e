"""DAVIS 2017 semi-supervised label propagation (DINO's protocol) with any encoder checkpoint.

    python tools/davis_propagate.py --checkpoint CKPT --data-root ROOT --out OUT \\
        [--config configs/davis/flsl_vits16.py] [--arch vit_small --patch-size 16 \\
        --n-last-frames 7 --neighborhood 12 --topk 5 --temperature 0.1] [--evaluate]

writes ``OUT/<seq>/<frame>.png`` (palette PNGs, the first frame's palette) for every sequence of
the split, printing one progress line per sequence. ``--evaluate`` also scores each sequence
from the label maps in memory and writes ``global_results-<split>.csv``,
``per-sequence_results-<split>.csv`` and ``davis_results.json`` into OUT and records the run in
the results store (``--store``, docs/leaderboard.md). Command-line values
override ``--cfg-options KEY=VALUE`` (any key of the protocol settings), which override the
config, which overrides the defaults (see benchmarks/davis/config.py).
"""
import argparse
import sys

from core.errors import cli_main


def parse_args(argv=None):
    from core.cli import ToolParser, flags, non_negative_int, positive_int
    p = ToolParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                parents=[flags("checkpoint", "data_root", "out", "split", "patch_size",
                                               "short_side", "batch_size", "which", "device", "cfg_options", "family",
                                               "store", required=("data_root", "out"))])
    p.add_argument("--config", help="MMEngine config with the protocol settings (configs/davis/)")
    p.add_argument("--arch", help="expected ViT family, e.g. vit_small (default vit_small)")
    p.add_argument("--n-last-frames", type=non_negative_int, help="recent frames in the context (default 7)")
    p.add_argument("--neighborhood", type=non_negative_int, help="window radius in patches, 0 = none (default 12)")
    p.add_argument("--topk", type=positive_int, help="affinities kept per patch (default 5)")
    p.add_argument("--temperature", type=float, help="affinity temperature (default 0.1)")
    p.add_argument("--sequences", nargs="+", help="only these sequences of the split")
    p.add_argument("--evaluate", action="store_true", help="also score the predictions")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from benchmarks.davis.config import load_settings
    from benchmarks.davis.evaluate import Scorer
    from benchmarks.davis.features import load_extractor
    from benchmarks.davis.io import DavisError, check_output_folder
    from benchmarks.davis.pipeline import propagate_split
    from benchmarks.davis.propagation import PropagationParams

    s = load_settings(args.config, options=args.cfg_options, checkpoint=args.checkpoint, split=args.split, arch=args.arch,
                      patch_size=args.patch_size, n_last_frames=args.n_last_frames,
                      neighborhood=args.neighborhood, topk=args.topk,
                      temperature=args.temperature, short_side=args.short_side,
                      batch_size=args.batch_size, which=args.which, family=args.family)
    if not s["checkpoint"]:
        raise DavisError("no checkpoint: pass --checkpoint or set checkpoint in the config")
    check_output_folder(args.out, args.data_root, [s["checkpoint"]])
    try:
        params = PropagationParams(s["n_last_frames"], s["neighborhood"], s["topk"], s["temperature"])
    except (ValueError, TypeError) as err:
        raise DavisError(f"bad protocol setting: {err}") from None
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":  # TF32 changes the affinities; DINO's numbers are fp32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    extractor = load_extractor(s["checkpoint"], s["arch"], s["patch_size"], s["which"],
                               family=s["family"]).to(device)
    print(f"encoder: {s['checkpoint']} ({extractor.rule} rule, patch {extractor.patch_size}, "
          f"width {extractor.embed_dim}); context 1+{params.n_last_frames}, radius "
          f"{params.neighborhood}, top-{params.topk}, temperature {params.temperature}; frames normalised "
          f"by mean {extractor.mean} std {extractor.std}; {device}")
    scorer = Scorer(args.data_root, s["split"]) if args.evaluate else None
    propagate_split(extractor, args.data_root, args.out, params, split=s["split"],
                    short_side=s["short_side"], multiple=s["multiple"],
                    batch_size=s["batch_size"], device=device, scorer=scorer,
                    sequences=args.sequences, log=lambda m: print(m, flush=True))
    if scorer is not None:
        paths = scorer.results.write(args.out, s["split"])
        print(scorer.results.table(s["split"]))
        print("wrote " + ", ".join(str(p) for p in paths))
        from benchmarks.leaderboard.records import record_davis   # after the files: never loses them
        record_davis(scorer.results.global_scores(), checkpoint=s["checkpoint"], data_root=args.data_root,
                     settings=s, result_file=paths[-1], subset=scorer.results.subset, family=s["family"],
                     config_path=args.config, store=args.store)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
