#!/usr/bin/env python
"""Frozen-feature probe speed, three ratios in one run (docs/probes.md).

    python speed/bench_probes.py [--images 32] [--size 224] [--arch vit_small_patch16_224]
                                 [--memory 200000] [--queries 4096] [--rounds 3]

1. Extraction (``benchmarks.probes.extract.extract``: read + resize every generated JPEG, the
   encoder's forward, fp16 shards written and hashed) against the encoder's forward floor: the
   same forward on the same images already decoded, resized and normalised in memory.
2. One linear-probe epoch (DINOv2's BN + 1x1 head, full-resolution loss, AdamW step; batch 16;
   ADE20K-like labels) reading the features from the cache against the same epoch recomputing
   them with the encoder; and the cached epoch with PyTorch's loss expression instead of the
   fused CPU loss (benchmarks/probes/fused_ce.py). ``--size 512`` is the ADE20K protocol's crop.
3. Hummingbird exact search (``exact_search``: torch, chunked) against faiss-cpu's
   ``IndexFlatIP`` on the same memory bank and queries (k = 30), after checking that both
   return the same neighbours.

Figures are medians over rounds, wall clock and this process's CPU time.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _time(a, b, rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median ``(wall, CPU)`` seconds of ``a`` and of ``b``, run alternately round by round so that
    a change of the shared machine's load hits both."""
    times = {a: ([], []), b: ([], [])}
    for _ in range(rounds):
        for fn in (a, b):
            w, c = time.perf_counter(), time.process_time()
            fn()
            times[fn][0].append(time.perf_counter() - w)
            times[fn][1].append(time.process_time() - c)
    return tuple((statistics.median(times[f][0]), statistics.median(times[f][1])) for f in (a, b))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--arch", default="vit_small_patch16_224")
    p.add_argument("--memory", type=int, default=200_000, help="memory bank rows")
    p.add_argument("--queries", type=int, default=4096)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--parts", default="123", help="which comparisons to run (default all three)")
    args = p.parse_args(argv)
    from benchmarks.features import layer_features
    from benchmarks.probes import linear as L
    from benchmarks.probes import transforms as T
    from benchmarks.probes.datasets import read_rgb
    from benchmarks.probes.extract import Encoder, extract
    from pretrain.encoder import build_encoder
    from synthetic.ade import write_ade

    torch.manual_seed(0)
    # extraction runs torch ops in a reader thread; the first such call changes the process's
    # OpenMP state, after which the same forward ran 2-3x faster on a loaded 2-core machine:
    # make that call before timing either side so both run in the same state
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: torch.ones(1 << 16) * 2).result()
    print(f"torch threads {torch.get_num_threads()}; {args.arch}, {args.images} images at {args.size}px")
    model = build_encoder(args.arch, class_token=True).eval().requires_grad_(False)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    enc = Encoder(model, None, mean, std, "bench", "bench", torch.device("cpu"))
    last = [len(model.blocks) - 1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = write_ade(tmp / "ade", n_train=args.images, n_val=1, height=375, width=500)
        paths = sorted((root / "images" / "training").glob("*.jpg"))

        def render(k):
            img = T.resize(read_rgb(paths[k]), (args.size, args.size))
            return T.normalise(img, mean, std), {}

        batch = 8
        ready = [torch.stack([render(k)[0] for k in range(s, min(s + batch, len(paths)))]) for s in range(0, len(paths), batch)]

        def floor():
            for x in ready:
                layer_features(model, x, last)

        runs = iter(range(10**6))

        def extraction():
            extract(enc, tmp / f"cache{next(runs)}", {"bench": 1}, len(paths), render, last, norm=True, batch=batch,
                    shard_size=64, desc=None)

        floor()                                                        # warm-up
        (f_wall, f_cpu), (e_wall, e_cpu) = _time(floor, extraction, args.rounds) if "1" in args.parts else ((1, 1), (0, 0))
        if "1" in args.parts:
            print(f"1. extraction {e_wall:.2f} s wall ({e_cpu:.2f} s CPU) vs forward floor {f_wall:.2f} s "
                  f"({f_cpu:.2f} s CPU): extraction / floor = {e_wall / f_wall:.3f} wall, {e_cpu / f_cpu:.3f} CPU")

        # 2. a linear-probe epoch: cached features vs recomputed ones
        def label(k):       # ADE20K-like: 150 classes in blobs, a tenth of the pixels ignored
            rng = np.random.default_rng(k)
            coarse = rng.integers(0, 150, (args.size // 32 + 1, args.size // 32 + 1), dtype=np.uint8)
            lab = np.kron(coarse, np.ones((32, 32), np.uint8))[:args.size, :args.size].copy()
            lab[rng.random(lab.shape) < 0.1] = 255
            return lab

        store = extract(enc, tmp / "cache_epoch", {"bench": 2}, len(paths),
                        lambda k: (render(k)[0], {"label": label(k)}), last,
                        norm=True, batch=batch, shard_size=64, desc=None)
        c = store.take("feat", [0]).shape[2]
        head = L.LinearHead(c, 150)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
        order = np.random.default_rng(0).permutation(len(paths))

        def step(feat, labels, fused=True):
            loss = L.seg_loss(head(L.stack_layers(feat)), labels, fused=fused)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def epoch_cached():
            for s in range(0, len(order), 16):
                idx = order[s:s + 16].tolist()
                step(torch.from_numpy(store.take("feat", idx)).float(), torch.from_numpy(store.take("label", idx)).long())

        def epoch_recomputed():
            for s in range(0, len(order), 16):
                idx = order[s:s + 16].tolist()
                x = torch.stack([render(k)[0] for k in idx])
                feat, _ = layer_features(model, x, last)
                step(feat, torch.from_numpy(store.take("label", idx)))

        def epoch_cached_eager_loss():
            for s in range(0, len(order), 16):
                idx = order[s:s + 16].tolist()
                step(torch.from_numpy(store.take("feat", idx)).float(), torch.from_numpy(store.take("label", idx)).long(),
                     fused=False)

        if "2" not in args.parts:
            return 0 if "3" not in args.parts else _search(args)
        epoch_cached()
        (c_wall, c_cpu), (r_wall, r_cpu) = _time(epoch_cached, epoch_recomputed, args.rounds)
        print(f"2. probe epoch from the cache {c_wall:.3f} s ({c_cpu:.3f} s CPU) vs recomputing features "
              f"{r_wall:.2f} s ({r_cpu:.2f} s CPU): speed-up {r_wall / c_wall:.1f}x wall, {r_cpu / c_cpu:.1f}x CPU")
        from benchmarks.probes import fused_ce
        if fused_ce.available():
            (k_wall, _), (e_wall, _) = _time(epoch_cached, epoch_cached_eager_loss, args.rounds)
            print(f"   the same cached epoch with PyTorch's loss expression (interpolate + cross_entropy) "
                  f"{e_wall:.3f} s: the fused loss makes the epoch {e_wall / k_wall:.1f}x faster")
        else:
            print("   (no C compiler: the epoch ran PyTorch's loss expression)")

    return _search(args) if "3" in args.parts else 0


def _search(args) -> int:
    from benchmarks.probes import hummingbird as H
    # 3. exact search vs faiss IndexFlatIP
    g = torch.Generator().manual_seed(0)
    memory = F.normalize(torch.randn(args.memory, args.dim, generator=g), dim=1)
    queries = torch.randn(args.queries, args.dim, generator=g)
    ours_i = H.exact_search(queries, memory, 30)[1]
    ref_i = H.faiss_search(queries, memory, 30)[1]
    same = float((ours_i == ref_i).float().mean())
    (o_wall, o_cpu), (r_wall, r_cpu) = _time(lambda: H.exact_search(queries, memory, 30),
                                             lambda: H.faiss_search(queries, memory, 30), args.rounds)
    print(f"3. exact search {o_wall:.2f} s ({o_cpu:.2f} s CPU) vs faiss IndexFlatIP {r_wall:.2f} s "
          f"({r_cpu:.2f} s CPU) on {args.memory} x {args.dim} memory, {args.queries} queries, k=30; "
          f"same neighbours {100 * same:.2f}%: faiss / ours = {r_wall / o_wall:.2f} wall, {r_cpu / o_cpu:.2f} CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
