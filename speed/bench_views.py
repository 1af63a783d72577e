#!/usr/bin/env python
"""Multi-crop data pipeline speed: the project's views against the authors' transform.

    python speed/bench_views.py [--images 48] [--rounds 7] [--size 500x375]

Writes ImageNet-like JPEGs (generated scenes with sensor-like noise, quality 90, 500x375 by
default; about 90 KB each) to a temporary folder and times, in one process on one thread
(torch and OpenCV), the whole per-image work of a data-loader worker: decoding the file and
making 1 teacher + 1 global 224 px + 2 local 96 px views with their token indices.

* project: ``pretrain.views.MultiCropViews(ViewConfig())`` on the lazily opened file;
* project, photometric on device: the same with ``photometric_on_device=True`` (the loader's
  part only: uint8 views and parameters; the chain then runs batched on the GPU);
* authors: ``speed.reference.flsl_views.AuthorsViews`` (the release's ``DataAugmentationFLSL``
  restated) on ImageFolder's loader output, as released (also normalising the 4 un-augmented
  crops), and without that step, for comparison.

Variants alternate round by round (each round: every image once per variant) so that a change
of the machine's load hits all of them; the figures are medians over rounds. Prints images/s
per variant from wall-clock time and from the process's CPU time (``time.process_time``: on a
machine shared with other jobs it counts only this process's work), and the ratios project /
authors of both.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from synthetic.images import random_scene
from pretrain.views import MultiCropViews, ViewConfig
from speed.reference.flsl_views import AuthorsViews, load_rgb


def write_jpegs(folder: Path, n: int, width: int, height: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img, _ = random_scene(rng, height, width, int(rng.integers(2, 6)))
        img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    torch.manual_seed(0)
    project = MultiCropViews(ViewConfig())
    on_device = MultiCropViews(ViewConfig(photometric_on_device=True))
    authors, authors_trim = AuthorsViews(), AuthorsViews(unaugmented=False)
    variants = {
        "project": lambda path: project(Image.open(path)),
        "project, photometric on device (loader part)": lambda path: on_device(Image.open(path)),
        "authors (as released)": lambda path: authors(load_rgb(path)),
        "authors, without the un-augmented copies": lambda path: authors_trim(load_rgb(path)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images, width, height)
        kb = sum(q.stat().st_size for q in paths) / len(paths) / 1024
        print(f"{len(paths)} JPEGs of {width}x{height} ({kb:.0f} KB on average); 1 process, 1 thread; "
              f"{args.rounds} rounds, variants alternating; load average {os.getloadavg()[0]:.2f}", flush=True)
        for fn in variants.values():   # warm-up
            for q in paths[:4]:
                fn(q)
        wall = {name: [] for name in variants}
        cpu = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                t0, c0 = time.perf_counter(), time.process_time()
                for q in paths:
                    fn(q)
                wall[name].append(len(paths) / (time.perf_counter() - t0))
                cpu[name].append(len(paths) / (time.process_time() - c0))
    print(f"\n{'images/s (median of rounds)':46s}{'wall':>8s}{'ratio':>8s}{'CPU':>8s}{'ratio':>8s}")
    med_w = {name: statistics.median(r) for name, r in wall.items()}
    med_c = {name: statistics.median(r) for name, r in cpu.items()}
    ref_w, ref_c = med_w["authors (as released)"], med_c["authors (as released)"]
    for name in variants:
        print(f"{name:46s}{med_w[name]:8.1f}{med_w[name] / ref_w:7.2f}x{med_c[name]:8.1f}{med_c[name] / ref_c:7.2f}x")
    for label, rates, med in (("wall", wall, med_w), ("CPU", cpu, med_c)):
        ratios = [a / b for a, b in zip(rates["project"], rates["authors (as released)"])]
        print(f"project / authors ({label} time): {med['project'] / med['authors (as released)']:.2f}x "
              f"(per-round {min(ratios):.2f}-{max(ratios):.2f}); against the authors without the "
              f"un-augmented copies: {med['project'] / med['authors, without the un-augmented copies']:.2f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
