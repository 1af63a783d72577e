"""Metrics read back from the work dirs the suite's tools write, in percent, under the keys of
the tables (``benchmarks/reproduce/paper_tables.json``).

Sources, in order of preference:

dense (COCO, UAVDT, ADE20K)
    ``RUN/test/test_metrics.json`` written by ``tools/test.py`` (MMDetection reports AP as a
    fraction, MMSegmentation mIoU in percent); otherwise the last validation record of the
    newest MMEngine json log ``RUN/<timestamp>/vis_data/scalars.json``.
DAVIS
    ``OUT/davis_results.json`` (``{"global": {"J&F-Mean": ...}}``, fractions) written by
    ``tools/davis_propagate.py --evaluate`` / ``tools/davis_eval.py``; otherwise the official
    ``OUT/global_results-val.csv`` (fractions).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .errors import ReproduceError

#: table metric key -> (raw key, factor to percent), per benchmark
KEYMAPS = {
    "coco": {"bbox_AP": ("coco/bbox_mAP", 100.0), "bbox_AP50": ("coco/bbox_mAP_50", 100.0),
             "bbox_AP75": ("coco/bbox_mAP_75", 100.0), "segm_AP": ("coco/segm_mAP", 100.0),
             "segm_AP50": ("coco/segm_mAP_50", 100.0), "segm_AP75": ("coco/segm_mAP_75", 100.0)},
    "uavdt": {"AP": ("coco/bbox_mAP", 100.0), "AP50": ("coco/bbox_mAP_50", 100.0),
              "AP75": ("coco/bbox_mAP_75", 100.0), "AP70": ("coco/bbox_mAP_70", 100.0),
              "AP_s": ("coco/bbox_mAP_s", 100.0), "AP_m": ("coco/bbox_mAP_m", 100.0),
              "AP_l": ("coco/bbox_mAP_l", 100.0)},
    "ade20k": {"mIoU": ("mIoU", 1.0), "mAcc": ("mAcc", 1.0), "aAcc": ("aAcc", 1.0)},
    "davis": {"JF_mean": ("J&F-Mean", 100.0), "J_mean": ("J-Mean", 100.0), "F_mean": ("F-Mean", 100.0),
              "J_recall": ("J-Recall", 100.0), "F_recall": ("F-Recall", 100.0),
              "J_decay": ("J-Decay", 100.0), "F_decay": ("F-Decay", 100.0)},
}
#: the key a benchmark's result must contain to count as a result at all
HEADLINE = {"coco": "coco/bbox_mAP", "uavdt": "coco/bbox_mAP", "ade20k": "mIoU", "davis": "J&F-Mean"}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReproduceError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def _number(value, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ReproduceError(f"{where}: not a number: {value!r}") from None
    return out


def mmengine_last_val(run_dir: Path, headline: str) -> dict | None:
    """The last record holding ``headline`` in the newest ``RUN/*/vis_data/scalars.json``."""
    logs = sorted(Path(run_dir).glob("*/vis_data/scalars.json"))
    for log in reversed(logs):
        last = None
        for i, line in enumerate(log.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ReproduceError(f"{log}: line {i} is not valid JSON ({err.msg})") from None
            if isinstance(rec, dict) and headline in rec:
                last = rec
        if last is not None:
            return last
    return None


def raw_dense(run_dir: str | Path, benchmark: str) -> tuple[dict, Path] | None:
    """Raw metrics of a dense run and the file they came from, or None when it has none yet."""
    run_dir = Path(run_dir)
    metrics = run_dir / "test" / "test_metrics.json"
    if metrics.is_file():
        data = _read_json(metrics)
        if not isinstance(data, dict) or HEADLINE[benchmark] not in data:
            raise ReproduceError(f"{metrics}: no {HEADLINE[benchmark]!r} entry (is it a {benchmark} result?)")
        return data, metrics
    rec = mmengine_last_val(run_dir, HEADLINE[benchmark])
    if rec is None:
        return None
    return rec, sorted(run_dir.glob("*/vis_data/scalars.json"))[-1]


def raw_davis(out_dir: str | Path) -> tuple[dict, Path] | None:
    """Raw DAVIS global scores (fractions) and their file, or None."""
    out_dir = Path(out_dir)
    js = out_dir / "davis_results.json"
    if js.is_file():
        data = _read_json(js)
        if not isinstance(data, dict) or not isinstance(data.get("global"), dict) \
                or "J&F-Mean" not in data["global"]:
            raise ReproduceError(f"{js}: expected {{\"global\": {{\"J&F-Mean\": ...}}}}")
        return data["global"], js
    csv_path = out_dir / "global_results-val.csv"
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != 1 or "J&F-Mean" not in rows[0]:
            raise ReproduceError(f"{csv_path}: expected a header with J&F-Mean and one row of numbers")
        return dict(rows[0]), csv_path
    return None


def to_table_keys(benchmark: str, raw: dict, where: str = "result") -> dict:
    """Raw metrics -> ``{table key: percent}`` for the keys present (NaN / -1 entries dropped:
    pycocotools writes -1 where a category or size has no ground truth)."""
    if benchmark not in KEYMAPS:
        raise ReproduceError(f"unknown benchmark {benchmark!r}")
    out = {}
    for key, (raw_key, factor) in KEYMAPS[benchmark].items():
        if raw_key in raw:
            value = _number(raw[raw_key], f"{where}: {raw_key}")
            if math.isfinite(value) and value >= 0:
                out[key] = value * factor
    return out


def collect(benchmark: str, run_dir: str | Path) -> dict | None:
    """``{table key: percent}`` of a finished run (DAVIS: ``run_dir`` holds ``davis/``), or None."""
    if benchmark == "davis":
        found = raw_davis(Path(run_dir) / "davis")
    else:
        found = raw_dense(run_dir, benchmark)
    if found is None:
        return None
    raw, src = found
    return to_table_keys(benchmark, raw, str(src))


def classify(raw: dict) -> str | None:
    """The benchmark a raw metrics dict belongs to (for the leaderboard), or None."""
    if "J&F-Mean" in raw:
        return "davis"
    if "coco/bbox_mAP_70" in raw:
        return "uavdt"
    if "coco/bbox_mAP" in raw:
        return "coco"
    if "mIoU" in raw:
        return "ade20k"
    return None


def find_results(work_root: str | Path) -> list[tuple[str, Path, dict]]:
    """Every finished run under ``work_root``: ``(benchmark, run folder, {table key: percent})``.

    A run is a folder with ``test/test_metrics.json`` (dense), a ``davis_results.json`` or an
    official ``global_results-val.csv`` (DAVIS); sorted by path.
    """
    root = Path(work_root)
    found = {}
    for metrics in root.rglob("test_metrics.json"):
        run = metrics.parent.parent if metrics.parent.name == "test" else metrics.parent
        raw = _read_json(metrics)
        bench = classify(raw) if isinstance(raw, dict) else None
        if bench:
            found[run] = (bench, to_table_keys(bench, raw, str(metrics)))
    for name in ("davis_results.json", "global_results-val.csv"):
        for f in root.rglob(name):
            run = f.parent
            if run in found:
                continue
            raw, src = raw_davis(run)
            found[run] = ("davis", to_table_keys("davis", raw, str(src)))
    return sorted(((b, run, m) for run, (b, m) in found.items()), key=lambda t: str(t[1]))


__all__ = ["KEYMAPS", "HEADLINE", "mmengine_last_val", "raw_dense", "raw_davis", "to_table_keys", "collect",
           "classify", "find_results"]
