"""DAVIS propagation and evaluation speed: this suite against plain literal procedures.

    .venv/bin/python benchmarks/bench_davis.py [--depth 2] [--sequences 4] [--threads N]

On a generated 480p DAVIS-layout set (benchmarks/synthetic/davis.py) with a random ViT-S/16
(``--depth`` blocks; the encoder is the same for both sides), one run times, side by side:

* propagation: :func:`benchmarks.davis.pipeline.propagate_sequence` (batched encoder, local
  windows, sparse top-k) against :func:`benchmarks.davis.reference.reference_propagate` (DINO's
  script step by step: batch-1 encoder, dense affinity per context frame, neighbourhood mask
  from Python loops, dense top-k); frames/s with and without the encoder forward, and whether
  every output label map is identical;
* evaluation: :func:`benchmarks.davis.metrics.sequence_scores` + :class:`DavisResults` against
  per-object, per-frame loops with OpenCV dilation (the official procedure), on the same label
  maps held in memory; scored frames/s and whether all numbers are identical. Reading the PNGs
  back (``evaluate_folder``) is timed separately, for information.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.davis.evaluate import evaluate_folder  # noqa: E402
from benchmarks.davis.features import FeatureExtractor  # noqa: E402
from benchmarks.davis.io import n_objects, read_annotations, read_palette, sequence_files, write_index_png  # noqa: E402
from benchmarks.davis.metrics import DavisResults, sequence_scores  # noqa: E402
from benchmarks.davis.pipeline import propagate_sequence  # noqa: E402
from benchmarks.davis.propagation import PropagationParams  # noqa: E402
from benchmarks.davis.reference import reference_global, reference_propagate, reference_scores  # noqa: E402
from benchmarks.synthetic.davis import write_davis  # noqa: E402
from pretrain.encoder import build_encoder  # noqa: E402


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
    fast, ref, t_fast, t_ref = {}, {}, 0.0, 0.0
    n_frames = 0
    for f in files:
        t0 = time.perf_counter()
        fast[f.name] = [m for _, m in propagate_sequence(fast_enc, f, params, batch_size=batch_size)]
        t_fast += time.perf_counter() - t0
        t0 = time.perf_counter()
        ref[f.name] = reference_propagate(ref_enc, f, params)
        t_ref += time.perf_counter() - t0
        n_frames += len(f.frames) - 1  # frames propagated (frame 0 is given)
    same = all(len(fast[s]) == len(ref[s]) and all(np.array_equal(a, b) for a, b in zip(fast[s], ref[s]))
               for s in fast)
    n_diff = sum(int((a != b).sum()) for s in fast for a, b in zip(fast[s], ref[s]))
    return dict(frames=n_frames, fast=t_fast, ref=t_ref, fast_enc=fast_enc.seconds,
                ref_enc=ref_enc.seconds, identical=same, pixels_differing=n_diff), fast


def bench_evaluation(files, predictions):
    data = []
    for f in files:
        gt = read_annotations(f)
        pred = np.stack(predictions[f.name])
        data.append((f.name, gt[1:-1], pred[1:-1], n_objects(gt[0])))
    n_frames = sum(g.shape[0] for _, g, _, _ in data)
    t0 = time.perf_counter()
    res = DavisResults()
    for name, g, p, k in data:
        res.add(name, *sequence_scores(g, p, k))
    fast_g, fast_o = res.global_scores(), res.per_object()
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_seq = [(name, *reference_scores(g, p, k)) for name, g, p, k in data]
    ref_g, ref_o = reference_global(per_seq)
    t_ref = time.perf_counter() - t0
    same = all(fast_g[c] == ref_g[c] for c in ref_g) and all(
        fast_o[n]["J-Mean"] == ref_o[n][0] and fast_o[n]["F-Mean"] == ref_o[n][1] for n in ref_o)
    same = same and len(fast_o) == len(ref_o)
    return dict(frames=n_frames, objects=len(ref_o), fast=t_fast, ref=t_ref, identical=same,
                jf=fast_g["J&F-Mean"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=2, help="blocks of the random ViT-S/16 (default 2)")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4, help="frames per encoder forward (fast path)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    params = PropagationParams()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_davis(Path(tmp) / "davis", n_sequences=args.sequences, hd=True, seed=args.seed)
        files = [sequence_files(data.root, s) for s in data.sequences]
        model = build_encoder("vit_small_patch16_224", depth=args.depth)
        extractor = FeatureExtractor(model, "flsl")
        print(f"data: {len(files)} sequences, {sum(data.n_frames.values())} frames of "
              f"{data.size[1]}x{data.size[0]}; encoder: random ViT-S/16, depth {args.depth}; "
              f"torch threads {torch.get_num_threads()}")

        prop, preds = bench_propagation(extractor, files, params, args.batch_size)
        ev = bench_evaluation(files, preds)

        out = Path(tmp) / "results"
        for f in files:
            pal = read_palette(f.annotations[0])
            for path, m in zip(f.frames, preds[f.name]):
                write_index_png(out / f.name / f"{path.stem}.png", m, pal)
        t0 = time.perf_counter()
        evaluate_folder(data.root, out, data.split)
        t_io = time.perf_counter() - t0

    n = prop["frames"]
    rows = [
        ("propagation, end to end", n / prop["ref"], n / prop["fast"]),
        ("propagation, encoder excluded", n / (prop["ref"] - prop["ref_enc"]),
         n / (prop["fast"] - prop["fast_enc"])),
        ("encoder forward only", n / prop["ref_enc"], n / prop["fast_enc"]),
        ("evaluation (J, F, statistics)", ev["frames"] / ev["ref"], ev["frames"] / ev["fast"]),
    ]
    print(f"\n{'frames/s':<32}{'reference':>12}{'suite':>12}{'ratio':>9}")
    for name, r, f in rows:
        print(f"{name:<32}{r:>12.2f}{f:>12.2f}{f / r:>8.1f}x")
    print(f"\npropagated frames: {n}; output label maps identical: {prop['identical']} "
          f"({prop['pixels_differing']} pixels differ)")
    print(f"scored frames: {ev['frames']} ({ev['objects']} objects); all numbers identical: "
          f"{ev['identical']} (J&F-Mean {ev['jf']:.3f})")
    print(f"evaluation from PNG files (evaluate_folder, decoding included): "
          f"{ev['frames'] / t_io:.1f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
