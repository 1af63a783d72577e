#!/usr/bin/env python
"""Leaderboard build speed and page size for a large store.

    python speed/bench_leaderboard.py [--runs 10000] [--checkpoints 400] [--rounds 3]

Generates a store (:func:`synthetic.results.generate_store`: each run one benchmark of one
checkpoint, 1-3 seeds, six benchmarks) in a temporary folder, pins this process to one CPU core
and times ``build_site`` (reading the store, building every page, writing the folder) over
``--rounds`` builds (median; wall clock and the process's CPU time). Prints the largest page of
each kind; benchmark pages hold ``ROWS_PER_PAGE`` rows each, best first, so their size is bounded
whatever the store holds. The target: under 5 s for 10,000 runs, every benchmark page under 1 MB.

The plain reference reads the same runs the way a first version would, one query per run for its
metrics, and is timed beside our single-pass read (:meth:`core.results.Store.runs`); the ratio is
printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.leaderboard.site import ROWS_PER_PAGE, build_site
from core.results import Store
from synthetic.results import generate_store


def plain_read(store: Store) -> list[dict]:
    """Every run with its metrics, one query per run (the reference)."""
    cur = store.con.execute("SELECT * FROM runs ORDER BY id")
    names = [d[0] for d in cur.description]
    runs = []
    for row in cur.fetchall():
        run = dict(zip(names, row))
        for f in ("argv", "inputs", "extra"):
            run[f] = json.loads(run[f]) if run[f] else None
        run["metrics"] = {}
        for metric, seed, value in store.con.execute("SELECT metric, seed, value FROM metrics WHERE run_id = ?",
                                                     (run["id"],)):
            run["metrics"].setdefault(metric, {})[seed] = value
        runs.append(run)
    return runs


def timed(fn, rounds: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--checkpoints", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        path = generate_store(tmp / "results.db", args.runs, n_checkpoints=args.checkpoints)
        print(f"generated {args.runs} runs of {args.checkpoints} checkpoints in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB store); timing on {cores} core(s), {args.rounds} rounds")
        with Store(path, create=False) as store:
            counts = {}

            def build():
                counts.update(build_site(store, tmp / "site"))
            wall, cpu = timed(build, args.rounds)
            print(f"build_site: {wall:.2f} s wall, {cpu:.2f} s CPU (median) for {counts['runs']} runs -> "
                  f"{counts['pages']} pages ({counts['benchmarks']} benchmarks, {counts['checkpoints']} checkpoints); "
                  f"target < 5 s: {'met' if wall < 5 else 'NOT met'}")
            ours = timed(store.runs, args.rounds)
            plain = timed(lambda: plain_read(store), args.rounds)
            assert [r["metrics"] for r in store.runs()] == [r["metrics"] for r in plain_read(store)]
            print(f"reading the store: ours {ours[0]:.3f} s, plain reference (a query per run) {plain[0]:.3f} s; "
                  f"plain / ours (wall): {plain[0] / ours[0]:.1f}x")
        site = tmp / "site"
        for kind, folder in (("index", site), ("benchmark", site / "b"), ("checkpoint", site / "c"),
                             ("provenance", site / "runs")):
            files = [site / "index.html"] if kind == "index" else list(folder.glob("*.html"))
            big = max(files, key=lambda f: f.stat().st_size)
            print(f"largest {kind} page: {big.stat().st_size / 1e6:.3f} MB ({len(files)} pages)"
                  + (f"; {ROWS_PER_PAGE} rows per page, under 1 MB: {big.stat().st_size < 1e6}" if kind == "benchmark" else ""))
        total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        print(f"whole site: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
