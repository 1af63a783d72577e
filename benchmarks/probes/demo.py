"""The probes at the demo's budget: generated stand-ins of every data set and one ``tools/probe.py``
command per protocol, small enough for a CPU.

    from benchmarks.probes.demo import commands, data_roots, make_data
    make_data(work / "data" / "probes", "quick")                # the stand-ins, once
    roots = data_roots(work / "data" / "probes")                # {dataset: folder}
    for label, argv, output in commands(python, checkpoint, roots, work / "runs" / arm / "probes", "quick"):
        ...  # one step each (output: the run's probe_results.json)

or, in this process, :func:`run_all` (one call, returns ``{protocol/dataset: metrics}``).
"""
from __future__ import annotations

from pathlib import Path

#: (protocol, dataset, --cfg-options) per budget: the reference protocols, shrunk in size only
_SEG = ("train.short_side=64", "train.crop_size=(64,64)", "test.short_side=64", "test.crop_size=(64,64)",
        "test.stride=(43,43)", "train.warmup_iters=5")
RUNS = {
    "quick": (
        ("linear", "ade20k", (*_SEG, "train.iters=10", "train.batch_size=4", "train.views=2", "train.seeds=[0,1]")),
        ("hummingbird", "voc2012", ("hbird.input_size=64", "hbird.memory_size=0")),
        ("depth_lin1", "nyu", ("train.iters=4", "train.warmup_iters=2", "train.crop_size=(128,160)")),
        ("correspondence", "spair", ("corr.image_size=128",)),
    ),
    "default": (
        ("linear", "ade20k", (*_SEG, "train.iters=300", "train.batch_size=8", "train.views=4", "train.seeds=[0,1,2]")),
        ("linear_ms", "voc2012", (*_SEG, "train.iters=300", "train.batch_size=8", "train.views=4", "test.ratios=[1.0,1.5]")),
        ("hummingbird", "voc2012", ("hbird.input_size=64", "hbird.memory_size=0")),
        ("hummingbird", "ade20k", ("hbird.input_size=64", "hbird.memory_size=0")),
        ("depth_lin4", "nyu", ("train.iters=100", "train.warmup_iters=20", "train.crop_size=(224,288)", "train.views=4")),
        ("correspondence", "spair", ("corr.image_size=128",)),
    ),
}


#: the number the demo's table shows for each protocol, in percent and higher-is-better like the
#: rest of that table: (key in the results' metrics, key in each per-seed entry or None where the
#: protocol trains nothing, factor to percent, label)
HEADLINE = {
    "linear": ("mIoU", "mIoU", 1.0, "mIoU"),
    "linear_ms": ("mIoU", "mIoU", 1.0, "mIoU"),
    "hummingbird": ("mIoU", None, 1.0, "mIoU"),
    "depth_lin1": ("delta1", "a1", 100.0, "δ1"),
    "depth_lin4": ("delta1", "a1", 100.0, "δ1"),
    "correspondence": ("PCK@0.1", None, 1.0, "PCK@0.1"),
}


def headline_values(out_root: str | Path, budget: str = "quick") -> dict:
    """``{"protocol/dataset": [percent, ...]}`` of the budget's runs under ``out_root``: one value
    per probe seed where the protocol trains, else the run's one number. A missing run raises
    FileNotFoundError naming its results file."""
    import json
    out = {}
    for protocol, dataset, _ in RUNS[budget]:
        path = Path(out_root) / f"{protocol}_{dataset}" / "probe_results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no probe result")
        doc = json.loads(path.read_text())
        key, seed_key, factor, _ = HEADLINE[protocol]
        values = [r[seed_key] for r in doc["per_seed"]] if seed_key else [doc["metrics"][key]]
        out[f"{protocol}/{dataset}"] = [factor * float(v) for v in values]
    return out


def data_roots(root: str | Path) -> dict:
    """``{dataset: data root}`` of the stand-ins :func:`make_data` writes under ``root`` (known
    before they exist, for planning steps)."""
    root = Path(root)
    return {"ade20k": root / "ade", "voc2012": root / "voc" / "VOC2012", "nyu": root / "nyu", "spair": root / "spair"}


def make_data(root: str | Path, budget: str = "quick") -> dict:
    """Generate (or reuse) the stand-ins under ``root`` in their release layouts, converted as a
    user would (VOC's aug split from the SBD files); returns ``{dataset: data root}``."""
    from benchmarks.probes.datasets import convert_voc_aug
    from synthetic.ade import write_ade
    from synthetic.probes import write_nyu, write_spair, write_voc
    root = Path(root)
    n = 4 if budget == "quick" else 16
    voc, sbd = write_voc(root / "voc", n_train=n, n_val=max(2, n // 2))
    if not (voc / "ImageSets" / "Segmentation" / "aug.txt").is_file():
        convert_voc_aug(voc, sbd)
    return {"ade20k": write_ade(root / "ade", n_train=n, n_val=max(2, n // 2), height=64, width=80),
            "voc2012": voc, "nyu": write_nyu(root / "nyu", n_train=max(2, n // 2), n_test=2),
            "spair": write_spair(root / "spair", n_pairs_per_category=max(2, n // 4))}


def commands(python: str, checkpoint: str | Path, roots: dict, out_root: str | Path, budget: str = "quick") -> list:
    """``[(label, argv, output file)]``: one ``tools/probe.py`` run per protocol of the budget, the
    features cached under ``out_root/feature_cache``."""
    out_root = Path(out_root)
    out = []
    for protocol, dataset, options in RUNS[budget]:
        run_dir = out_root / f"{protocol}_{dataset}"
        argv = [python, "tools/probe.py", "--protocol", protocol, "--dataset", dataset, "--data-root",
                str(roots[dataset]), "--checkpoint", str(checkpoint), "--out", str(run_dir),
                "--cfg-options", f"cache.root={out_root / 'feature_cache'}", *options]
        out.append((f"probe {protocol} on {dataset}", argv, run_dir / "probe_results.json"))
    return out


def run_all(checkpoint: str | Path, data_root: str | Path, out_root: str | Path, budget: str = "quick",
            log=print) -> dict:
    """Every probe of the budget in this process: ``{"protocol/dataset": metrics}``."""
    from benchmarks.probes.run import run_probe
    from mmengine.config import DictAction
    roots = make_data(data_root, budget)
    out_root = Path(out_root)
    results = {}
    for protocol, dataset, options in RUNS[budget]:
        parsed = {}
        for opt in (f"cache.root={out_root / 'feature_cache'}", *options):
            key, value = opt.split("=", 1)
            parsed[key] = DictAction._parse_iterable(value)
        doc = run_probe(protocol, dataset, roots[dataset], checkpoint, out_root / f"{protocol}_{dataset}",
                        cfg_options=parsed, log=log)
        results[f"{protocol}/{dataset}"] = doc["metrics"]
    return results


__all__ = ["RUNS", "HEADLINE", "headline_values", "data_roots", "make_data", "commands", "run_all"]
