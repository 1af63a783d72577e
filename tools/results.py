#!/usr/bin/env python
"""List, filter, export and import what the results store holds.

    python tools/results.py list   [--store PATH] [--benchmark B] [--dataset D] [--checkpoint NAME|DIGEST] [--kind K]
    python tools/results.py export --format csv|json --out FILE [filters]     (one line per run, metric and seed)
    python tools/results.py import PATH... [--checkpoint NAME]                (result files, or folders to search)

The store is ``--store PATH``, else ``$FLSL_RESULTS``, else work_dirs/results.db under the
repository. ``import`` reads the result files this suite writes (test_metrics.json,
davis_results.json, global_results-<split>.csv, probe_results.json, the demo's results.json);
importing a file twice adds nothing. docs/leaderboard.md describes the store.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from core.cli import ToolParser, flags
from core.errors import FLSLError, cli_main

COLUMNS = ("run", "kind", "benchmark", "dataset", "protocol", "protocol_default", "checkpoint", "checkpoint_digest",
           "family", "architecture", "metric", "seed", "value", "command", "config_digest", "commit_id", "machine",
           "gpu", "started", "finished", "source")


def _filters(p) -> None:
    p.add_argument("--benchmark", help="only this benchmark (coco, ade20k, uavdt, davis, ...)")
    p.add_argument("--dataset", help="only this data set")
    p.add_argument("--kind", help="only runs of this kind (dense, davis, probe, demo)")
    p.add_argument("--protocol", help="only this protocol")
    p.add_argument("--checkpoint", help="only this checkpoint (file name, or a prefix of its SHA-256)")


def parse_args(argv=None):
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="one line per run", parents=[flags("store")])
    _filters(ls)
    ex = sub.add_parser("export", help="write CSV or JSON", parents=[flags("store", "out", required=("out",))])
    ex.add_argument("--format", choices=("csv", "json"), required=True)
    _filters(ex)
    im = sub.add_parser("import", help="import earlier result files", parents=[flags("store")])
    im.add_argument("paths", nargs="+", help="result files, or folders searched for them")
    im.add_argument("--checkpoint", help="encoder name for files that do not name one (test_metrics.json, DAVIS)")
    return p.parse_args(argv)


def _runs(args):
    from core.results import Store
    with Store(args.store, create=False) as store:
        return store.runs(benchmark=args.benchmark, dataset=args.dataset, checkpoint=args.checkpoint,
                          kind=args.kind, protocol=args.protocol), store.path


def _flat(runs):
    for r in runs:
        for metric in sorted(r["metrics"]):
            for seed, value in sorted(r["metrics"][metric].items()):
                yield {**{c: r.get(c) for c in COLUMNS}, "run": r["id"], "metric": metric, "seed": seed, "value": value}


def list_runs(args) -> None:
    from core.results import spread
    runs, path = _runs(args)
    print(f"{len(runs)} runs in {path}")
    for r in runs:
        parts = []
        for m in sorted(r["metrics"]):
            mean, sd, n = spread(r["metrics"][m].values())
            parts.append(f"{m} {mean:.2f}" + (f"±{sd:.2f}" if sd is not None else "") + (f" (n={n})" if n > 1 else ""))
        flag = "" if r["protocol_default"] else " [non-default]"
        print(f"#{r['id']:<5} {r['benchmark']:<14} {r['dataset'][:28]:<28} {r['checkpoint'][:28]:<28} "
              f"{r['protocol']}{flag}  " + ", ".join(parts))


def export(args) -> None:
    from core.files import check_output_path, write_text_atomic
    from core.results import store_path
    check_output_path(args.out, [store_path(args.store)])
    runs, _ = _runs(args)
    rows = list(_flat(runs))
    if args.format == "json":
        text = json.dumps(rows, indent=1, default=str) + "\n"
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    write_text_atomic(text, args.out)
    print(f"wrote {args.out}: {len(rows)} values of {len(runs)} runs")


def import_paths(args) -> None:
    from benchmarks.leaderboard.records import find_importable, import_file
    files = []
    for p in map(Path, args.paths):
        if p.is_dir():
            found = find_importable(p)
            if not found:
                raise FLSLError(f"{p}: no result file found under it")
            files += found
        else:
            files.append(p)
    ids = []
    for f in files:
        got = import_file(f, args.store, checkpoint=args.checkpoint)
        print(f"{f}: run(s) {', '.join(map(str, got))}")
        ids += got
    print(f"{len(files)} files, {len(set(ids))} runs stored")


def main(argv=None) -> int:
    args = parse_args(argv)
    {"list": list_runs, "export": export, "import": import_paths}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
