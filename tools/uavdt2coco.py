"""Convert the UAVDT DET/MOT release to COCO detection files.

    python tools/uavdt2coco.py --data-root UAVDT_ROOT --out DIR [--split-file F] [--every K]

writes ``DIR/uavdt_train.json`` and ``DIR/uavdt_test.json`` (image paths relative to
UAVDT_ROOT). The split comes from ``--split-file`` (JSON ``{"train": [...], "test": [...]}``),
else from the release's ``M_attr/{train,test}`` folders, else from
``benchmarks/uavdt/split.json``. ``--every K`` keeps every K-th frame of the training split only;
the test split is always complete. Each file records the step it was converted with
(``info.every``). Both splits are converted and validated before anything is written, and each
file is written to a temporary name then renamed: no partial json.
"""
import sys
from pathlib import Path

from benchmarks.uavdt.convert import (SPLITS, UAVDTError, check_output_folder, convert, resolve_split,
                                     split_step)
from core.errors import cli_main
from core.files import write_json_atomic


def parse_args(argv=None):
    from core.cli import ToolParser, flags, positive_int
    p = ToolParser(description=__doc__.splitlines()[0],
                                parents=[flags("data_root", "out", required=("data_root", "out"))])
    p.add_argument("--split-file", default=None, help='JSON {"train": [...], "test": [...]}')
    p.add_argument("--every", type=positive_int, default=1,
                   help="keep every K-th frame of the training split (default 1: all); the test "
                        "split is always complete")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _progress(enabled, split):
    if not enabled:
        return None
    from tqdm import tqdm

    def wrap(iterable, total, desc):
        return tqdm(iterable, total=total, desc=f"{split} {desc}", unit="frame", file=sys.stderr)
    return wrap


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not Path(args.data_root).is_dir():
            raise UAVDTError(f"{args.data_root}: UAVDT root folder not found")
        check_output_folder(args.out, args.data_root)
        split, source = resolve_split(args.data_root, args.split_file)
        print(f"split from {source}: {len(split['train'])} train, {len(split['test'])} test "
              "sequences")
        results = {}
        for name in SPLITS:
            step = split_step(name, args.every)
            results[name] = convert(args.data_root, split[name], step,
                                    _progress(not args.no_progress, name))
            print(f"{name}: " + (f"every {step}-th frame" if step > 1 else "every frame"))
        out = Path(args.out)
        for name in SPLITS:
            coco, summary = results[name]
            path = out / f"uavdt_{name}.json"
            write_json_atomic(coco, path)
            print("\n".join(summary.lines(name)))
            print(f"{name}: wrote {path}")
    except OSError as err:
        print(f"error: {err.filename or args.out}: {err.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
