#!/usr/bin/env python
"""Reproduce a table of the FLSL paper: run (or resume) the missing runs with the suite's own
tools, collect their metrics and write the table next to the paper's numbers.

    python tools/reproduce.py TABLE [--gpus 8] [--data-root data] [--checkpoint PATH]
                              [--cfg-options data.KEY=PATH checkpoint.ROW=PATH ...]
                              [--work-root work_dirs/reproduce] [--rows ROW ...] [--slurm PARTITION]
                              [--dry-run | --collect-only]
    python tools/reproduce.py leaderboard [--work-root work_dirs/reproduce]
    python tools/reproduce.py list

TABLE: coco, uavdt, davis, ade20k, ablations. --data-root DIR expects DIR/imagenet/train,
DIR/coco/, DIR/uavdt/, DIR/ade/ADEChallengeData2016/, DIR/davis/; --cfg-options data.KEY=PATH
moves one of them (keys imagenet, coco, uavdt, ade20k, davis). --checkpoint PATH replaces our FLSL
pretraining by that backbone file in every FLSL row; --cfg-options checkpoint.ROW=PATH replaces one
row's backbone (`list` names the rows). --dry-run prints the
exact commands (finished ones as comments). The table goes to WORK/tables/TABLE.{md,csv}.
See docs/reproduce.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import cli_main

from benchmarks.reproduce.registry import TABLES


def parse_args(argv=None):
    from core.cli import ToolParser, flags, positive_int
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("data_root", "checkpoint", "cfg_options")])
    p.add_argument("table", choices=[*TABLES, "leaderboard", "list", "probes"],
                   help="table to reproduce, or a sub-command (probes: benchmarks/probes/table.py)")
    p.add_argument("--gpus", type=positive_int, default=8, help="GPUs per job (default 8, the authors' setting)")
    p.add_argument("--work-root", default="work_dirs/reproduce", help="where every run goes")
    p.add_argument("--rows", nargs="+", default=[], metavar="ROW", help="only these rows")
    p.add_argument("--slurm", metavar="PARTITION", help="pretrain through tools/slurm_pretrain.sh on PARTITION")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    g.add_argument("--collect-only", action="store_true", help="only collect finished results and write the table")
    p.add_argument("--python", default=".venv/bin/python", help="interpreter for the python tools (DAVIS)")
    return p.parse_args(argv)


def split_options(options: dict, rows) -> tuple[dict, dict]:
    """``--cfg-options`` of a table run: ``data.KEY=PATH`` (a data set's folder) and
    ``checkpoint.ROW=PATH`` (a row's backbone); anything else is refused, with the nearest key."""
    import difflib

    from benchmarks.reproduce import ReproduceError
    from benchmarks.reproduce.plan import DATA_LAYOUT
    known = [f"data.{k}" for k in DATA_LAYOUT] + [f"checkpoint.{r}" for r in rows]
    data, checkpoints = {}, {}
    for key, value in options.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else " (known: data.KEY, checkpoint.ROW)"
            raise ReproduceError(f"{key}: unknown key in --cfg-options{hint}")
        group, _, name = key.partition(".")
        (data if group == "data" else checkpoints)[name] = str(value)
    return data, checkpoints


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table == "probes":    # the frozen-feature probe table (docs/probes.md)
        from benchmarks.probes.table import run_table
        return run_table(args)
    from benchmarks.reproduce.collect import collect, find_results
    from benchmarks.reproduce.plan import Options, checkpoint_overrides, data_roots, plan, row_dir
    from core.steps import REPO, repo_relative, run_steps
    from benchmarks.reproduce.references import load_references
    from benchmarks.reproduce.registry import table as get_table
    from benchmarks.reproduce.writer import leaderboard, write_table
    from core.files import write_text_atomic

    work_root = repo_relative(args.work_root)
    root = REPO / work_root      # repository-relative or absolute: both join
    try:
        if args.table == "list":
            for name in TABLES:
                t = get_table(name)
                print(f"{name}: {t.ref.title}")
                for row, r in t.recipes.items():
                    src = r.release or f"pretraining {r.pretraining.name}"
                    print(f"  {row:<22} {r.benchmark:<7} {r.config}  [{src}]")
            return 0
        if args.table == "leaderboard":
            entries = find_results(root)
            md, cs = leaderboard(entries, root)
            write_text_atomic(md, root / "leaderboard.md")
            write_text_atomic(cs, root / "leaderboard.csv")
            print(md)
            print(f"wrote {work_root / 'leaderboard.md'} and {work_root / 'leaderboard.csv'} ({len(entries)} runs)")
            return 0
        table = get_table(args.table)
        moved, row_checkpoints = split_options(args.cfg_options, table.recipes)
        opts = Options(work_root=work_root, gpus=args.gpus, data_roots=data_roots(args.data_root, moved),
                       checkpoints=checkpoint_overrides(args.checkpoint, row_checkpoints),
                       slurm_partition=args.slurm,
                       python=args.python, rows=tuple(args.rows))
        steps = plan(table, opts)
        if args.dry_run:
            print(f"# table {table.name}: {len(steps)} step(s), {sum(not s.done for s in steps)} to run; "
                  f"run from {REPO.name}/ (the repository root)")
            run_steps(steps, dry_run=True)
            return 0
        if args.collect_only:
            for step in steps:  # results are tabulated as found, but never silently
                if step.has_result and step.stale_reasons:
                    print(f"warning: {step.output}: stale result ({'; '.join(step.stale_reasons)})",
                          file=sys.stderr)
        else:
            run_steps(steps)
        results = {}
        for row in table.recipes:
            if opts.rows and row not in opts.rows:
                continue
            got = collect(table.recipes[row].benchmark, REPO / row_dir(opts, table.name, row))
            if got:
                results[row] = got
        _, sources = load_references()
        out = Path(work_root) / "tables"
        md, cs = write_table(table, results, REPO / out, sources)
        print(md.read_text())
        print(f"wrote {out / md.name} and {out / cs.name}")
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
