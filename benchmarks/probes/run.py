"""One probe run: config, encoder, protocol, results file and predictions (one function call).

    from benchmarks.probes.run import run_probe
    doc = run_probe("linear", "ade20k", data_root, checkpoint, out, cfg_options={"train.iters": 100})

writes ``OUT/probe_results.json`` (metrics, per-seed values where the protocol trains, every
protocol setting, checkpoint and data digests, the feature caches used) and, with
``save_predictions``, ``OUT/pred/<image id>.png``: palette PNGs of class indices (the data set's
training label space: ADE20K 0..149 after ``reduce_zero_label``), or 16-bit PNGs of depth in
millimetres. A run that fails leaves an earlier complete one untouched.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from core.config import apply_options, read_config
from core.errors import ConfigError
from core.files import atomic_path, check_output_path, make_dirs, write_json_atomic

RESULTS = "probe_results.json"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "probes"
#: protocol name -> its module in this package (each has ``run(cfg, enc, root, cache_root, log, save_pred)``)
PROTOCOLS = {"linear": "linear", "linear_ms": "linear", "hummingbird": "hummingbird",
             "depth_lin1": "depth", "depth_lin4": "depth", "correspondence": "correspondence",
             "correspondence_dift": "correspondence"}


def config_path(protocol: str, dataset: str) -> Path:
    """``configs/probes/<protocol>_<dataset>.py``; an unknown pair is a :class:`ConfigError` listing
    the known ones."""
    path = CONFIG_DIR / f"{protocol}_{dataset}.py"
    if protocol not in PROTOCOLS or not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.py"))
        raise ConfigError(f"--protocol {protocol} --dataset {dataset}: no config {path.name} "
                          f"(known: {', '.join(known)})")
    return path


def palette() -> bytes:
    """PASCAL VOC's colour map (bit-interleaved), 256 RGB entries."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return bytes(out)


def prediction_writer(folder: Path):
    """``write(image id, array)``: uint8 -> palette PNG, float depth (metres) -> 16-bit PNG in mm."""
    from PIL import Image
    pal = palette()

    def write(image_id: str, array: np.ndarray) -> None:
        path = folder / f"{image_id}.png"
        if array.dtype == np.uint8:
            im = Image.fromarray(array)
            im.putpalette(pal)                  # an 8-bit grey image becomes a palette image
        else:
            im = Image.fromarray(np.clip(np.round(array * 1000.0), 0, 65535).astype(np.uint16))
        with atomic_path(path) as tmp:
            im.save(tmp, format="PNG")
    return write


def run_probe(protocol: str, dataset: str, data_root: str | os.PathLike, checkpoint: str | os.PathLike,
              out: str | os.PathLike, save_predictions: bool = False, cfg_options: dict | None = None,
              which: str = "teacher", device: str | None = None, log=print, family: str | None = None) -> dict:
    """Run one protocol on one data set for one checkpoint (``family`` where its content fits
    several); returns the results document."""
    import importlib

    from benchmarks.probes.extract import load_encoder
    path = config_path(protocol, dataset)
    cfg = read_config(path)
    apply_options(cfg, cfg_options)
    out = check_output_path(out, inputs=(data_root, checkpoint))
    root = Path(data_root)
    if not root.is_dir():
        raise ConfigError(f"{root} (--data-root): not a folder")
    cache_root = Path(cfg.cache.root) if cfg.cache.root else out / "feature_cache"
    enc = load_encoder(checkpoint, which=which, device=device, family=family)
    log(f"probe {protocol} on {dataset}: {enc.loaded.spec.arch} ({enc.loaded.describe()}) from {checkpoint}; "
        f"input mean {enc.mean} std {enc.std}")
    module = importlib.import_module(f"benchmarks.probes.{PROTOCOLS[protocol]}")
    from core import dist
    lead = dist.rank() == 0                 # under torchrun only rank 0 writes into OUT
    make_dirs(out)
    partial = out / ".pred.partial"
    if lead and partial.exists():
        shutil.rmtree(partial)
    writer = prediction_writer(make_dirs(partial)) if save_predictions and lead else None
    result = module.run(cfg, enc, root, cache_root, log=log, save_pred=writer)
    if result is None:          # a rank other than 0 under torchrun: its shards are written
        return None
    doc = {"protocol": protocol, "dataset": dataset, "config": path.name,
           "settings": cfg.to_dict(), "checkpoint": {"path": str(checkpoint), "sha256": enc.digest,
                                                    "format": enc.loaded.format, "arch": enc.loaded.spec.arch,
                                                    "which": which, "mean": list(enc.mean), "std": list(enc.std)},
           "data": {"root": str(root), **{f"{k}_sha256": v["key_data"] for k, v in _data_keys(result).items()}},
           **result}
    if save_predictions:
        final = out / "pred"
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    write_json_atomic(doc, out / RESULTS, indent=1)
    return doc


def _data_keys(result: dict) -> dict:
    """``{cache name: {"key_data": data digest}}`` of the caches a protocol used."""
    import json
    out = {}
    for name, c in result.get("caches", {}).items():
        key = json.loads((Path(c["folder"]) / "key.json").read_text())
        out[name] = {"key_data": key.get("data_sha256")}
    return out


__all__ = ["RESULTS", "PROTOCOLS", "config_path", "run_probe", "palette", "prediction_writer"]
