"""A generated results store: many runs of many checkpoints on every benchmark kind, for the
leaderboard's tests and its speed benchmark (speed/bench_leaderboard.py).

Numbers are drawn from a fixed seed (reproducible), in the ranges the benchmarks report; names
include characters that must be escaped in HTML.
"""
from __future__ import annotations

import random
from pathlib import Path

from core.results import Store

#: benchmark -> (kind, data set, metrics, (low, high) of the headline)
BENCHMARKS = {
    "coco": ("dense", "data/coco", ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"), (30, 48)),
    "ade20k": ("dense", "data/ade/ADEChallengeData2016", ("mIoU", "mAcc", "aAcc"), (35, 50)),
    "uavdt": ("dense", "data/uavdt_coco", ("AP70", "AP", "AP50", "AP75"), (20, 40)),
    "davis": ("davis", "data/davis (val)", ("JF_mean", "J_mean", "F_mean"), (55, 72)),
    "linear-probe": ("probe", "data/ade", ("mIoU", "pixel_acc"), (20, 45)),
    "patch-grouping": ("probe", "synthetic-coco", ("AUC",), (50, 90)),
}
FAMILIES = (("flsl-export", "vit_small_patch16_224"), ("dino", "vit_small_patch16_224"),
            ("dino", "vit_small_patch8_224"), ("ibot", "vit_small_patch16_224"), ("timm", "vit_base_patch16_224"))


def generate_store(path: str | Path, n_runs: int, n_checkpoints: int | None = None, seed: int = 0,
                   hostile_name: str | None = None) -> Path:
    """Write ``n_runs`` runs into a new store at ``path``: each run one benchmark of one
    checkpoint, 1-3 seeds; a run in 20 under a non-default protocol. ``hostile_name``, when
    given, names the first checkpoint (the escaping test)."""
    rng = random.Random(seed)
    n_ck = n_checkpoints or max(2, n_runs // 25)
    checkpoints = []
    for i in range(n_ck):
        fam, arch = FAMILIES[i % len(FAMILIES)]
        name = hostile_name if (i == 0 and hostile_name) else f"{fam}_{arch.split('_')[1]}_ep{100 + i}.pth"
        checkpoints.append((name, f"{rng.getrandbits(256):064x}", fam, arch, rng.uniform(-5, 5)))
    benches = list(BENCHMARKS)
    with Store(path) as store:
        store.con.execute("PRAGMA synchronous = OFF")   # generated data: no need to survive a power cut
        for i in range(n_runs):
            name, digest, fam, arch, skill = checkpoints[i % n_ck]
            bench = benches[(i // n_ck) % len(benches)]
            kind, dataset, metrics, (lo, hi) = BENCHMARKS[bench]
            seeds = range(rng.randint(1, 3))
            base = (lo + hi) / 2 + skill
            values = {m: {s: round(base - 3 * k + rng.gauss(0, 0.5), 4) for s in seeds}
                      for k, m in enumerate(metrics)}
            odd = i % 20 == 19
            store.add(dict(kind=kind, benchmark=bench, dataset=dataset, checkpoint=name,
                           checkpoint_path=f"checkpoints/{name}", checkpoint_digest=digest, family=fam,
                           architecture=arch, protocol="8-head split" if odd else "default",
                           protocol_default=not odd, protocol_note="backbone split into 8 attention heads (trained with 6)" if odd else "",
                           command=f"tools/test.py configs/{bench}/x.py {name} --cfg-options seed={i}",
                           argv=["tools/test.py", f"configs/{bench}/x.py", name], config_path=f"configs/{bench}/x.py",
                           config_digest=f"{rng.getrandbits(256):064x}", inputs={f"checkpoints/{name}": digest},
                           commit_id="0" * 40, machine="generated", gpu="1 x NVIDIA H200",
                           started="2026-01-01T00:00:00+00:00", finished="2026-01-01T01:00:00+00:00",
                           source=f"work_dirs/{bench}/{i}/test_metrics.json"), values)
    return Path(path)


__all__ = ["generate_store", "BENCHMARKS"]
