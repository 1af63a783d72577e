"""The paper's reference numbers, read from ``benchmarks/reproduce/paper_tables.json``.

The file holds, for every table, its metrics (key + column label) and its rows; each row has a
value and a source per metric. ``null`` values are numbers not available to us ("to fill from
the paper"): they stay empty in every written table, never replaced by a guess.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .errors import ReproduceError

DEFAULT_PATH = Path(__file__).resolve().parent / "paper_tables.json"
MISSING = "to fill from the paper"


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str     # e.g. "bbox_AP"; the key results are collected under
    label: str   # column label of the paper's layout, e.g. "AP box"


@dataclasses.dataclass(frozen=True)
class Reference:
    value: float | None   # percent; None when not available to us
    source: str           # a key of the file's "sources", or MISSING


@dataclasses.dataclass(frozen=True)
class RowRef:
    id: str
    pretraining: str
    backbone: str
    reference: dict       # metric key -> Reference


@dataclasses.dataclass(frozen=True)
class TableRef:
    name: str
    title: str
    metrics: tuple        # of Metric
    rows: tuple           # of RowRef

    def row(self, row_id: str) -> RowRef:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise ReproduceError(f"table {self.name!r} has no row {row_id!r} "
                             f"(rows: {', '.join(r.id for r in self.rows)})")


def _need(obj: dict, key: str, where: str, kind=None):
    if not isinstance(obj, dict) or key not in obj:
        raise ReproduceError(f"{where}: missing key {key!r}")
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise ReproduceError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, "
                             f"got {type(value).__name__}")
    return value


def load_references(path: str | Path = DEFAULT_PATH) -> tuple[dict, dict]:
    """Read and validate the reference file.

    Returns ``(tables, sources)``: ``tables`` maps a table name to :class:`TableRef`,
    ``sources`` maps a source key to its description. Raises :class:`ReproduceError` naming
    the file and the key path of the first problem.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReproduceError(f"{path}: reference file not found") from None
    except json.JSONDecodeError as err:
        raise ReproduceError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    sources = _need(data, "sources", str(path), dict)
    tables = {}
    for name, t in _need(data, "tables", str(path), dict).items():
        where = f"{path}: tables.{name}"
        metrics = tuple(Metric(_need(m, "key", f"{where}.metrics", str), _need(m, "label", f"{where}.metrics", str))
                        for m in _need(t, "metrics", where, list))
        keys = [m.key for m in metrics]
        rows, seen = [], set()
        for i, r in enumerate(_need(t, "rows", where, list)):
            rwhere = f"{where}.rows[{i}]"
            rid = _need(r, "id", rwhere, str)
            if rid in seen:
                raise ReproduceError(f"{rwhere}: duplicate row id {rid!r}")
            seen.add(rid)
            refs = _need(r, "reference", rwhere, dict)
            unknown = sorted(set(refs) - set(keys))
            if unknown:
                raise ReproduceError(f"{rwhere}.reference: unknown metric {unknown[0]!r} (metrics: {', '.join(keys)})")
            parsed = {}
            for k in keys:
                entry = _need(refs, k, f"{rwhere}.reference", dict)
                value = entry.get("value")
                src = _need(entry, "source", f"{rwhere}.reference.{k}", str)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ReproduceError(f"{rwhere}.reference.{k}.value: a number or null, got {value!r}")
                if value is None and src != MISSING:
                    raise ReproduceError(f"{rwhere}.reference.{k}: a null value must have source {MISSING!r}")
                if value is not None and src not in sources:
                    raise ReproduceError(f"{rwhere}.reference.{k}.source: {src!r} is not described under 'sources'")
                parsed[k] = Reference(None if value is None else float(value), src)
            rows.append(RowRef(rid, _need(r, "pretraining", rwhere, str), _need(r, "backbone", rwhere, str), parsed))
        tables[name] = TableRef(name, _need(t, "title", where, str), metrics, tuple(rows))
    return tables, sources


__all__ = ["DEFAULT_PATH", "MISSING", "Metric", "Reference", "RowRef", "TableRef", "load_references"]
