"""DAVIS propagation and evaluation speed: this suite against plain literal procedures, and
the propagation against its own floor, the encoder's forward pass.

    .venv/bin/python speed/bench_davis.py [--sections compare,floor,process] [--depth 2]
        [--floor-depth 12] [--sequences 4] [--threads N] [--runs 5]

On a generated 480p DAVIS-layout set (synthetic/davis.py) with a random ViT-S/16
(``--depth`` blocks; the encoder is the same for both sides), one run times, side by side:

* propagation: :func:`benchmarks.davis.pipeline.propagate_sequence` (batched encoder, local
  windows, sparse top-k) against :func:`speed.reference.davis.reference_propagate` (DINO's
  script step by step: batch-1 encoder, dense affinity per context frame, neighbourhood mask
  from Python loops, dense top-k); frames/s with and without the encoder forward, and whether
  every output label map is identical;
* evaluation: :func:`benchmarks.davis.metrics.sequence_scores` + :class:`DavisResults` against
  per-object, per-frame loops with OpenCV dilation (the official procedure), on the same label
  maps held in memory; scored frames/s and whether all numbers are identical. Reading the PNGs
  back (``evaluate_folder``) is timed separately, for information.

Propagation runs once per side after a short warm-up, the two sides alternating sequence by
sequence so that changes of machine load hit both; evaluation is the best of 3 runs per side.

``floor`` section: with the full ViT-S/16 (``--floor-depth`` blocks), the whole run of
:func:`benchmarks.davis.pipeline.propagate_split` (decoding, encoder, propagation, label maps,
PNG files written) against the encoder's forward pass alone on the same frames in the same
batches (decoded beforehand), sequence by sequence alternately: the ratio is how far the run is
from the encoder's floor. On a machine busy with other jobs the wall-clock ratio is unreliable
(the run's extra threads take a larger share of the cores): the CPU-time ratio is printed too,
meaningful with ``--threads 1``.

``process`` section: the evaluation as whole processes, as a user runs it:
``python tools/davis_eval.py`` against ``python -m speed.reference.davis_eval`` (the official
evaluator restated, with its imports), on a 480p set of 6 sequences of 13 frames (66 scored
frames; predictions: the annotations shifted by (3, 5) pixels, void as background), ``--runs``
runs each, alternating, after one untimed run each with bytecode caching on (as a user's second
run); medians, and whether both wrote the same CSV files. The floor beside them: a process that
only starts the interpreter and imports numpy.

On a shared machine pass ``--threads 1`` and compare only figures of one run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


import numpy as np
import torch

from benchmarks.davis.evaluate import evaluate_folder
from benchmarks.davis.features import FeatureExtractor
from benchmarks.davis.io import (VOID, n_objects, read_annotations, read_index_png, read_palette,
                                 sequence_files, write_index_png)
from benchmarks.davis.metrics import DavisResults, sequence_scores
from benchmarks.davis.pipeline import _read_frames, propagate_sequence, propagate_split
from benchmarks.davis.propagation import PropagationParams
from speed.reference.davis import reference_global, reference_propagate, reference_scores
from synthetic.davis import write_davis
from pretrain.encoder import build_encoder


class Timed:
    """Wraps a feature extractor and adds up the time spent in it (seconds)."""

    def __init__(self, inner):
        self.inner, self.patch_size, self.seconds = inner, inner.patch_size, 0.0

    def __call__(self, x):
        t0 = time.perf_counter()
        out = self.inner(x)
        self.seconds += time.perf_counter() - t0
        return out


def bench_propagation(extractor, files, params, batch_size):
    fast_enc, ref_enc = Timed(extractor), Timed(extractor)
    fast, ref, stats, t_fast, t_ref, n_frames = {}, {}, {}, 0.0, 0.0, 0
    for f in files:  # interleaved, so that machine load hits both sides alike
        t0 = time.perf_counter()
        fast[f.name] = [m for _, m in propagate_sequence(fast_enc, f, params, batch_size=batch_size)]
        t_fast += time.perf_counter() - t0
        t0 = time.perf_counter()
        ref[f.name] = reference_propagate(ref_enc, f, params, stats=stats)
        t_ref += time.perf_counter() - t0
        n_frames += len(f.frames) - 1  # frames propagated (frame 0 is given)
    diff = sum(int((a != b).sum()) for s in fast for a, b in zip(fast[s][1:], ref[s][1:]))
    # margins were recorded in the same order as the propagated frames
    margins = iter(stats.get("margins", []))
    worst = 0.0
    for s in fast:
        for a, b in zip(fast[s][1:], ref[s][1:]):
            m = next(margins)
            if (a != b).any():
                worst = max(worst, float(m[a != b].max()))
    return dict(frames=n_frames, fast=t_fast, ref=t_ref, fast_enc=fast_enc.seconds,
                ref_enc=ref_enc.seconds, ref_mask=stats.get("mask_seconds", 0.0),
                pixels=sum(m.size for s in fast for m in fast[s][1:]), pixels_differing=diff,
                worst_margin=worst), fast


def _best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_evaluation(files, predictions, repeat=3):
    data = []
    for f in files:
        gt = read_annotations(f)
        pred = np.stack(predictions[f.name])
        data.append((f.name, gt[1:-1], pred[1:-1], n_objects(gt[0])))
    n_frames = sum(g.shape[0] for _, g, _, _ in data)

    def fast():
        res = DavisResults()
        for name, g, p, k in data:
            res.add(name, *sequence_scores(g, p, k))
        return res.global_scores(), res.per_object()

    def ref():
        return reference_global([(name, *reference_scores(g, p, k)) for name, g, p, k in data])

    fast(), ref()  # warm-up
    t_fast, (fast_g, fast_o) = _best_of(fast, repeat)
    t_ref, (ref_g, ref_o) = _best_of(ref, repeat)
    same = len(fast_o) == len(ref_o) and all(fast_g[c] == ref_g[c] for c in ref_g) and all(
        fast_o[n]["J-Mean"] == ref_o[n][0] and fast_o[n]["F-Mean"] == ref_o[n][1] for n in ref_o)
    return dict(frames=n_frames, objects=len(ref_o), fast=t_fast, ref=t_ref, identical=same,
                jf=fast_g["J&F-Mean"])


ROOT = Path(__file__).resolve().parents[1]


def bench_floor(extractor, data, params, batch_size, out: Path):
    """Whole-run seconds of :func:`propagate_split` per sequence against the encoder's forward
    pass alone on the same frames and batches (frames decoded beforehand): wall-clock and the
    process's CPU time (all threads)."""
    r = dict(frames=0, whole=0.0, floor=0.0, whole_cpu=0.0, floor_cpu=0.0)
    for name in data.sequences:   # alternating, sequence by sequence
        files = sequence_files(data.root, name)
        batches = [_read_frames(files.frames[i:i + batch_size], 480, 64)[0]
                   for i in range(0, len(files.frames), batch_size)]
        t0, c0 = time.perf_counter(), time.process_time()
        for x in batches:
            extractor(x)
        r["floor"] += time.perf_counter() - t0
        r["floor_cpu"] += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        propagate_split(extractor, data.root, out, params, data.split, batch_size=batch_size,
                        sequences=[name], log=None)
        r["whole"] += time.perf_counter() - t0
        r["whole_cpu"] += time.process_time() - c0
        r["frames"] += len(files.frames)
    return r


def shifted_predictions(root: Path, out: Path, shift=(3, 5)) -> None:
    """Predictions for the evaluation: each annotation with void as background, shifted."""
    for seq in sorted((root / "Annotations" / "480p").iterdir()):
        pal = read_palette(next(seq.glob("*.png")))
        for path in sorted(seq.glob("*.png")):
            m = read_index_png(path)
            m = np.roll(np.where(m == VOID, 0, m), shift, axis=(0, 1))
            write_index_png(out / seq.name / path.name, m, pal)


def bench_process(root: Path, results: Path, runs: int):
    """Median wall seconds of the two evaluation processes, alternating, and whether their CSV
    files are identical."""
    ours, ref = results.parent / "ours", results.parent / "reference"
    for d in (ours, ref):
        shutil.copytree(results, d)
    commands = {
        "suite": [sys.executable, str(ROOT / "tools" / "davis_eval.py"), "--data-root", str(root),
                  "--results", str(ours), "--quiet"],
        "reference": [sys.executable, "-m", "speed.reference.davis_eval", "--data-root", str(root),
                      "--results", str(ref)],
        # the floor of any numpy tool: the interpreter starting and importing numpy
        "floor": [sys.executable, "-c", "import numpy"],
    }
    # Both sides as a user runs them the second time: bytecode cached (here in a folder of
    # their own, whatever PYTHONDONTWRITEBYTECODE says), after one untimed run each.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(results.parent / "pycache")
    for cmd in commands.values():
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
    times = {k: [] for k in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - t0)
    same = all((ours / f).read_text() == (ref / f).read_text()
               for f in ("global_results-val.csv", "per-sequence_results-val.csv"))
    return {k: statistics.median(v) for k, v in times.items()}, times, same


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default="compare,floor,process",
                   help="comma-separated: compare (suite vs DINO / official procedures), floor "
                        "(whole run vs encoder forward), process (evaluation as whole processes)")
    p.add_argument("--depth", type=int, default=2, help="blocks of the random ViT-S/16 (compare; default 2)")
    p.add_argument("--floor-depth", type=int, default=12, help="blocks of the random ViT-S/16 (floor; default 12)")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4, help="frames per encoder forward (fast path)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--runs", type=int, default=5, help="process runs per side (process)")
    args = p.parse_args(argv)
    sections = set(args.sections.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    params = PropagationParams()
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if sections & {"compare", "floor"}:
            data = write_davis(tmp / "davis", n_sequences=args.sequences, hd=True, seed=args.seed)
            files = [sequence_files(data.root, s) for s in data.sequences]
            print(f"data: {len(files)} sequences, {sum(data.n_frames.values())} frames of "
                  f"{data.size[1]}x{data.size[0]}")
        if "compare" in sections:
            compare(args, data, files, params, tmp)
        if "floor" in sections:
            extractor = FeatureExtractor(build_encoder("vit_small_patch16_224", depth=args.floor_depth), "flsl")
            warm = sequence_files(data.root, data.sequences[0])
            warm.frames, warm.annotations = warm.frames[:args.batch_size + 1], warm.annotations[:1]
            list(propagate_sequence(extractor, warm, params, batch_size=args.batch_size))  # warm-up
            r = bench_floor(extractor, data, params, args.batch_size, tmp / "floor")
            print(f"\nwhole run against the encoder floor (random ViT-S/16, depth {args.floor_depth}, "
                  f"batches of {args.batch_size}, {r['frames']} frames of 854x480):")
            print(f"  encoder forward only  {r['floor']:8.2f} s  {r['frames'] / r['floor']:6.2f} frames/s")
            print(f"  whole run             {r['whole']:8.2f} s  {r['frames'] / r['whole']:6.2f} frames/s"
                  f"  (decode, encoder, propagation, label maps, PNG files)")
            print(f"  whole run / floor: {r['whole'] / r['floor']:.3f} (wall clock); CPU time "
                  f"{r['whole_cpu']:.1f} s / {r['floor_cpu']:.1f} s = {r['whole_cpu'] / r['floor_cpu']:.3f} "
                  "(the work added to the encoder's; with several torch threads it includes their spinning)")
        if "process" in sections:
            ev = write_davis(tmp / "davis66", n_sequences=6, frames=(13, 13), hd=True, seed=args.seed + 3)
            shifted_predictions(ev.root, tmp / "pred" / "results")
            med, times, same = bench_process(ev.root, tmp / "pred" / "results", args.runs)
            print(f"\nevaluation as whole processes ({sum(ev.n_frames.values()) - 2 * len(ev.sequences)} "
                  f"scored frames of 854x480, {args.runs} runs each, alternating; medians):")
            print(f"  python -m speed.reference.davis_eval  {med['reference']:.3f} s "
                  f"(runs {min(times['reference']):.3f}-{max(times['reference']):.3f})")
            print(f"  python tools/davis_eval.py            {med['suite']:.3f} s "
                  f"(runs {min(times['suite']):.3f}-{max(times['suite']):.3f})")
            print(f"  python -c 'import numpy' (floor)     {med['floor']:.3f} s "
                  f"(runs {min(times['floor']):.3f}-{max(times['floor']):.3f})")
            print(f"  ratio reference / suite: {med['reference'] / med['suite']:.1f}x; suite / floor: "
                  f"{med['suite'] / med['floor']:.2f}x; CSV files identical: {same}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


def compare(args, data, files, params, tmp: Path) -> None:
    """The suite against DINO's script and the official scorer, written literally."""
    model = build_encoder("vit_small_patch16_224", depth=args.depth)
    extractor = FeatureExtractor(model, "flsl")
    print(f"compare: encoder random ViT-S/16, depth {args.depth}")
    warm = sequence_files(data.root, data.sequences[0])
    warm.frames, warm.annotations = warm.frames[:3], warm.annotations[:1]
    bench_propagation(extractor, [warm], params, args.batch_size)  # warm-up, not timed
    prop, preds = bench_propagation(extractor, files, params, args.batch_size)
    ev = bench_evaluation(files, preds)

    out = tmp / "results"
    for f in files:
        pal = read_palette(f.annotations[0])
        for path, m in zip(f.frames, preds[f.name]):
            write_index_png(out / f.name / f"{path.stem}.png", m, pal)
    t0 = time.perf_counter()
    evaluate_folder(data.root, out, data.split)
    t_io = time.perf_counter() - t0

    n = prop["frames"]
    ref_ex, fast_ex = prop["ref"] - prop["ref_enc"], prop["fast"] - prop["fast_enc"]
    rows = [
        ("propagation, end to end", n / prop["ref"], n / prop["fast"]),
        ("propagation, encoder excluded", n / ref_ex, n / fast_ex),
        ("  same, without DINO's mask loop", n / (ref_ex - prop["ref_mask"]), n / fast_ex),
        ("encoder forward only", n / prop["ref_enc"], n / prop["fast_enc"]),
        ("evaluation (J, F, statistics)", ev["frames"] / ev["ref"], ev["frames"] / ev["fast"]),
    ]
    print(f"\n{'frames/s':<34}{'reference':>11}{'suite':>11}{'ratio':>9}")
    for name, r, f in rows:
        print(f"{name:<34}{r:>11.2f}{f:>11.2f}{f / r:>8.1f}x")
    print(f"\nreference neighbourhood mask (Python loops, once per sequence): "
          f"{prop['ref_mask'] / len(files):.1f} s per sequence")
    same = prop["pixels_differing"] == 0
    print(f"propagated frames: {n}; output label maps identical: {same} "
          f"({prop['pixels_differing']} of {prop['pixels']} pixels differ"
          + (f"; there the reference's normalised scores of its two best labels differ by at "
             f"most {prop['worst_margin']:.1e}: float32 near-ties)" if not same else ")"))
    print(f"scored frames: {ev['frames']} ({ev['objects']} objects); all numbers identical: "
          f"{ev['identical']} (J&F-Mean {ev['jf']:.3f})")
    print(f"evaluation from PNG files (evaluate_folder, decoding included): "
          f"{ev['frames'] / t_io:.1f} frames/s")


if __name__ == "__main__":
    sys.exit(main())
