"""Time the vectorised UAVDT ground-truth parser against a plain per-line parser.

    python speed/bench_uavdt_parse.py [--lines 300000] [--repeat 3]

Both parse and validate the same generated ``_gt_whole.txt`` (the size of a long UAVDT
sequence is about 30k lines; the whole release about 800k); the results must be equal.
Prints the best time of each and the ratio.
"""
from pathlib import Path


import argparse
import tempfile
import time

import numpy as np

from benchmarks.uavdt.convert import CATEGORIES, parse_gt_file


def plain_parse(path, frames, check_category=True):
    """Reference: one line at a time, the same checks, the same output."""
    frame_set = set(int(f) for f in frames)
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(",")
            if len(parts) != 9:
                raise ValueError(f"{path}:{lineno}: column count")
            vals = [float(p) for p in parts]
            if not all(np.isfinite(vals)):
                raise ValueError(f"{path}:{lineno}: not finite")
            if vals[0] != round(vals[0]) or int(vals[0]) not in frame_set:
                raise ValueError(f"{path}:{lineno}: frame")
            if vals[4] <= 0 or vals[5] <= 0:
                raise ValueError(f"{path}:{lineno}: size")
            if check_category and int(vals[8]) not in CATEGORIES:
                raise ValueError(f"{path}:{lineno}: category")
            rows.append(vals)
    return np.array(rows, dtype=np.float64).reshape(-1, 9)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=300_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n = args.lines
    frames = np.arange(1, 2001)
    rows = np.stack([rng.integers(1, 2001, n), rng.integers(1, 500, n), rng.integers(0, 1000, n),
                     rng.integers(0, 500, n), rng.integers(1, 80, n), rng.integers(1, 80, n),
                     rng.integers(1, 4, n), rng.integers(1, 4, n), rng.integers(1, 4, n)], 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "M0000_gt_whole.txt"
        path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows.tolist()))
        timings = {}
        outputs = {}
        for name, fn in (("vectorised", parse_gt_file), ("plain", plain_parse)):
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                outputs[name] = fn(path, frames, True)
                best = min(best, time.perf_counter() - t0)
            timings[name] = best
    assert np.array_equal(outputs["vectorised"], outputs["plain"]), "parsers disagree"
    print(f"{n} lines: vectorised {timings['vectorised']:.3f} s, plain {timings['plain']:.3f} s, "
          f"plain / vectorised = {timings['plain'] / timings['vectorised']:.2f}x")


if __name__ == "__main__":
    main()
