"""Tables in the paper's layout (Markdown + CSV): for every metric our number, the paper's and
the difference (ours - paper), side by side; and the leaderboard of every finished run.

Numbers are percent. A missing result prints as ``-`` (Markdown) or an empty cell (CSV); a paper
number not available to us prints as ``n/a`` with a footnote: it is never filled in.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from core.files import write_text_atomic

from .references import MISSING

DASH = "-"


def compare(table, results: dict) -> list[dict]:
    """One dict per row of ``table`` (a :class:`benchmarks.reproduce.registry.Table` or its
    ``ref``): ``id``, ``pretraining``, ``backbone``, ``sources`` and, per metric key,
    ``{"ours", "paper", "diff"}`` (floats or None). ``results`` maps row id -> {key: percent}."""
    ref = getattr(table, "ref", table)
    rows = []
    for r in ref.rows:
        ours = results.get(r.id) or {}
        entry = {"id": r.id, "pretraining": r.pretraining, "backbone": r.backbone,
                 "sources": sorted({x.source for x in r.reference.values() if x.value is not None})}
        for m in ref.metrics:
            o, p = ours.get(m.key), r.reference[m.key].value
            entry[m.key] = {"ours": o, "paper": p, "diff": None if o is None or p is None else o - p}
        rows.append(entry)
    return rows


def _f(value, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def to_markdown(table, rows: list[dict], sources: dict | None = None, note: str = "") -> str:
    """The comparison as a Markdown table with a footnote on sources and missing numbers."""
    ref = getattr(table, "ref", table)
    head = ["pretraining", "backbone"]
    for m in ref.metrics:
        head += [f"{m.label} (ours)", f"{m.label} (paper)", "Δ"]
    lines = [f"### {ref.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    missing = False
    for r in rows:
        cells = [r["pretraining"], r["backbone"]]
        for m in ref.metrics:
            v = r[m.key]
            paper = "n/a" if v["paper"] is None else _f(v["paper"])
            missing |= v["paper"] is None
            cells += [_f(v["ours"]), paper, _f(v["diff"], signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Percent. Δ = ours - paper. `-`: no result yet.")
    if missing:
        lines.append(f"`n/a`: the paper's number is not available here ({MISSING}; "
                     "benchmarks/reproduce/paper_tables.json).")
    used = sorted({s for r in rows for s in r["sources"]})
    if sources and used:
        lines.append("")
        lines.append("Sources of the paper's numbers:")
        for s in used:
            rows_with = ", ".join(r["id"] for r in rows if s in r["sources"])
            lines.append(f"- `{s}` ({rows_with}): {sources.get(s, '')}")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def to_csv(table, rows: list[dict]) -> str:
    """The comparison as CSV: ``row,pretraining,backbone`` then ``<key>,<key>_paper,<key>_diff``
    per metric (full precision; empty where unknown) and the paper's sources."""
    ref = getattr(table, "ref", table)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    header = ["row", "pretraining", "backbone"]
    for m in ref.metrics:
        header += [m.key, f"{m.key}_paper", f"{m.key}_diff"]
    w.writerow(header + ["paper_sources"])
    for r in rows:
        cells = [r["id"], r["pretraining"], r["backbone"]]
        for m in ref.metrics:
            v = r[m.key]
            cells += ["" if v[k] is None else f"{v[k]:.4f}" for k in ("ours", "paper", "diff")]
        w.writerow(cells + [";".join(r["sources"])])
    return out.getvalue()


def write_table(table, results: dict, out_dir: str | Path, sources: dict | None = None,
                note: str = "") -> tuple[Path, Path]:
    """Write ``OUT/<table>.md`` and ``OUT/<table>.csv``; returns both paths."""
    ref = getattr(table, "ref", table)
    out_dir = Path(out_dir)
    rows = compare(table, results)
    md, cs = out_dir / f"{ref.name}.md", out_dir / f"{ref.name}.csv"
    write_text_atomic(to_markdown(table, rows, sources, note), md)
    write_text_atomic(to_csv(table, rows), cs)
    return md, cs


# ------------------------------------------------------------------------------ leaderboard
LEADERBOARD_COLUMNS = {
    "coco": ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"),
    "uavdt": ("AP", "AP50", "AP75", "AP70"),
    "ade20k": ("mIoU",),
    "davis": ("JF_mean", "J_mean", "F_mean"),
}


def leaderboard(entries: list[tuple[str, Path, dict]], root: str | Path) -> tuple[str, str]:
    """Markdown and CSV of every finished run, one section per benchmark, best first (by the
    first column). ``entries``: ``(benchmark, run folder, {key: percent})``."""
    root = Path(root)
    md = ["# Leaderboard", "", f"Every finished run under `{root}` (percent).", ""]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["benchmark", "run", "metric", "value"])
    for bench, cols in LEADERBOARD_COLUMNS.items():
        runs = [(run, m) for b, run, m in entries if b == bench]
        if not runs:
            continue
        runs.sort(key=lambda t: -(t[1].get(cols[0]) if t[1].get(cols[0]) is not None else float("-inf")))
        md += [f"## {bench}", "", "| run | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for run, m in runs:
            name = str(run.relative_to(root)) if run.is_relative_to(root) else str(run)
            md.append(f"| {name} | " + " | ".join(_f(m.get(c)) for c in cols) + " |")
            for c in cols:
                if m.get(c) is not None:
                    w.writerow([bench, name, c, f"{m[c]:.4f}"])
        md.append("")
    if len(md) == 4:
        md.append("No finished run yet.")
    return "\n".join(md) + "\n", out.getvalue()


__all__ = ["compare", "to_markdown", "to_csv", "write_table", "leaderboard", "LEADERBOARD_COLUMNS"]
