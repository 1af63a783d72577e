"""Score DAVIS 2017 semi-supervised predictions (davis2017-evaluation compatible).

    python tools/davis_eval.py --data-root ROOT --results OUT [--split val]

reads ``OUT/<seq>/<frame>.png`` for every sequence of ``ROOT/ImageSets/2017/<split>.txt``, writes
``OUT/global_results-<split>.csv`` and ``OUT/per-sequence_results-<split>.csv`` (the official
columns and 3-decimal format) and ``OUT/davis_results.json`` (full precision), and prints the
global table.
"""
import argparse
import sys

from core.errors import cli_main


def main(argv=None) -> int:
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                parents=[flags("data_root", "split", required=("data_root",), split="val")])
    p.add_argument("--results", required=True, help="folder with <seq>/<frame>.png predictions "
                   "(the scores are written beside them)")
    p.add_argument("--quiet", action="store_true", help="no per-sequence lines")
    args = p.parse_args(argv)

    from benchmarks.davis.evaluate import evaluate_folder
    from benchmarks.davis.io import check_output_folder
    check_output_folder(args.results, args.data_root, option="--results")
    results = evaluate_folder(args.data_root, args.results, args.split,
                              log=None if args.quiet else (lambda m: print(m, flush=True)))
    paths = results.write(args.results, args.split)
    print(results.table(args.split))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
