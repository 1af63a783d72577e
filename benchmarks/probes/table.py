"""The probe table: every probe column for a list of checkpoints, published numbers beside ours.

    python tools/reproduce.py probes --data-root data --cfg-options checkpoint.NAME=PATH ... \
                              [--checkpoint PATH] [--rows COLUMN ...] [--work-root DIR] [--dry-run | --collect-only]

Each (checkpoint, column) is one ``tools/probe.py`` run, a :class:`core.steps.Step` whose output
``WORK/probes/<name>/<column>/probe_results.json`` carries a provenance record (redone when the
checkpoint, the data or the config changes). Data folders under ``--data-root``:
:data:`DATA_LAYOUT` (``data.KEY=PATH`` moves one). Published numbers come from
``references.json`` by checkpoint name (``dinov2_vitb14``, ``dino_vits16``, ...) with their
source; an unknown one stays empty. The DAVIS column shows DINO's published J&F (the paper
tables' reference file) for the names it knows; ours comes from ``tools/reproduce.py davis``.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from core.errors import FLSLError

REFERENCES = Path(__file__).resolve().parent / "references.json"
#: data set -> folder under --data-root (the layouts of benchmarks/probes/datasets.py)
DATA_LAYOUT = {"ade20k": "ade/ADEChallengeData2016", "voc2012": "voc/VOCdevkit/VOC2012",
               "cityscapes": "cityscapes", "nyu": "nyu", "spair": "spair/SPair-71k"}


@dataclasses.dataclass(frozen=True)
class Column:
    id: str
    protocol: str
    dataset: str
    metric: str
    label: str
    options: tuple = ()


COLUMNS = (
    Column("ade_lin", "linear", "ade20k", "mIoU", "ADE20K lin."),
    Column("ade_ms", "linear_ms", "ade20k", "mIoU", "ADE20K +ms"),
    Column("voc_lin", "linear", "voc2012", "mIoU", "VOC lin."),
    Column("voc_ms", "linear_ms", "voc2012", "mIoU", "VOC +ms"),
    Column("city_lin", "linear", "cityscapes", "mIoU", "Cityscapes lin."),
    Column("city_ms", "linear_ms", "cityscapes", "mIoU", "Cityscapes +ms"),
    Column("hb_voc_1e2", "hummingbird", "voc2012", "mIoU", "HB VOC 1024x10^2", ("hbird.memory_size=102400",)),
    Column("hb_voc_1e3", "hummingbird", "voc2012", "mIoU", "HB VOC 1024x10^3", ("hbird.memory_size=1024000",)),
    Column("hb_voc_1e4", "hummingbird", "voc2012", "mIoU", "HB VOC 1024x10^4", ("hbird.memory_size=10240000",)),
    Column("hb_ade_1e4", "hummingbird", "ade20k", "mIoU", "HB ADE20K 1024x10^4", ("hbird.memory_size=10240000",)),
    Column("nyu_lin1", "depth_lin1", "nyu", "RMSE", "NYU lin.1 RMSE"),
    Column("nyu_lin4", "depth_lin4", "nyu", "RMSE", "NYU lin.4 RMSE"),
    Column("spair", "correspondence", "spair", "PCK@0.1", "SPair PCK@0.1"),
)


class ProbeTableError(FLSLError):
    """A probe-table request that cannot run; the message names the key."""


def load_references(path: Path = REFERENCES) -> tuple[dict, dict]:
    """``({checkpoint name: {column: (value, source key)}}, {source key: text})``."""
    doc = json.loads(path.read_text())
    refs = {name: {col: (v[0], v[1]) for col, v in cols.items()} for name, cols in doc["checkpoints"].items()}
    return refs, doc["sources"]


def davis_references() -> dict:
    """DINO's published DAVIS J&F by checkpoint name, from the paper tables' reference file."""
    from benchmarks.reproduce.references import load_references as paper
    tables, _ = paper()
    out = {}
    for row in tables["davis"].rows:
        ref = row.reference.get("JF_mean")
        if ref is not None and ref.value is not None:
            out[row.id] = (ref.value, ref.source)
    return out


def steps(checkpoints: dict, data_root: Path, moved: dict, work_root: Path, columns=COLUMNS,
          python: str = sys.executable) -> list:
    """One :class:`core.steps.Step` per checkpoint and column."""
    from benchmarks.probes.run import config_path
    from core.steps import Step, repo_relative
    out = []
    for name, ckpt in checkpoints.items():
        for col in columns:
            root = Path(moved.get(col.dataset) or Path(data_root) / DATA_LAYOUT[col.dataset])
            run_dir = work_root / "probes" / name / col.id
            argv = [python, "tools/probe.py", "--protocol", col.protocol, "--dataset", col.dataset,
                    "--data-root", str(root), "--checkpoint", str(ckpt), "--out", str(run_dir),
                    "--cfg-options", f"cache.root={work_root / 'probes' / name / 'feature_cache'}", *col.options]
            out.append(Step(kind="probe", label=f"probes/{name}: {col.label}", argv=argv,
                            output=run_dir / "probe_results.json", inputs=(str(ckpt), str(root)),
                            config=str(repo_relative(config_path(col.protocol, col.dataset)))))
    return out


def collect(checkpoints, work_root: Path, columns=COLUMNS) -> dict:
    """``{name: {column: our value}}`` of the finished runs."""
    got = {}
    for name in checkpoints:
        for col in columns:
            path = work_root / "probes" / name / col.id / "probe_results.json"
            if path.is_file():
                got.setdefault(name, {})[col.id] = json.loads(path.read_text())["metrics"].get(col.metric)
    return got


def render(checkpoints, ours: dict, columns=COLUMNS) -> tuple[str, str]:
    """Markdown and CSV: per checkpoint a row of ours, and a row of published numbers (footnoted
    with their source); empty where unknown."""
    refs, sources = load_references()
    davis = davis_references()
    used: list[str] = []

    def cell(v, digits=3):
        return "" if v is None else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")

    head = ["checkpoint", "numbers", *(c.label for c in columns), "DAVIS J&F"]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    csv = [",".join(head)]
    for name in checkpoints:
        mine = [cell(ours.get(name, {}).get(c.id)) for c in columns]
        md.append(f"| {name} | ours | " + " | ".join(mine) + " |  |")
        csv.append(",".join([name, "ours", *mine, ""]))
        pub = []
        for c in [*(c.id for c in columns), "davis"]:
            value, src = (davis.get(name) if c == "davis" else refs.get(name, {}).get(c)) or (None, None)
            if value is None:
                pub.append("")
                continue
            if src not in used:
                used.append(src)
            pub.append(f"{cell(value)} [{used.index(src) + 1}]")
        md.append(f"| {name} | published | " + " | ".join(pub) + " |")
        csv.append(",".join([name, "published", *(p.split(" [")[0] for p in pub)]))
    if used:
        from benchmarks.reproduce.references import load_references as paper
        _, paper_sources = paper()
        md.append("")
        for i, src in enumerate(used, 1):
            md.append(f"[{i}] {sources.get(src) or paper_sources.get(src, src)}")
    return "\n".join(md) + "\n", "\n".join(csv) + "\n"


def run_table(args, log=print) -> int:
    """``tools/reproduce.py probes``: plan, run (or print) the steps, collect and write the table."""
    import difflib

    from core.files import write_text_atomic
    from core.steps import REPO, repo_relative, run_steps
    checkpoints, moved = {}, {}
    for key, value in (args.cfg_options or {}).items():
        group, _, name = key.partition(".")
        if group == "checkpoint" and name:
            checkpoints[name] = str(value)
        elif group == "data" and name in DATA_LAYOUT:
            moved[name] = str(value)
        else:
            close = difflib.get_close_matches(key, [f"data.{k}" for k in DATA_LAYOUT] + ["checkpoint.NAME"], n=1)
            raise ProbeTableError(f"{key}: unknown key in --cfg-options"
                                  + (f" (did you mean {close[0]}?)" if close else " (known: data.KEY, checkpoint.NAME)"))
    if args.checkpoint:
        checkpoints[Path(args.checkpoint).stem] = args.checkpoint
    if not checkpoints:
        raise ProbeTableError("--cfg-options checkpoint.NAME=PATH: no checkpoint to probe (or --checkpoint PATH)")
    columns = [c for c in COLUMNS if not args.rows or c.id in args.rows]
    unknown = sorted(set(args.rows or ()) - {c.id for c in COLUMNS})
    if unknown:
        raise ProbeTableError(f"--rows {unknown[0]}: not a probe column (known: {', '.join(c.id for c in COLUMNS)})")
    work_root = repo_relative(args.work_root)
    plan = steps(checkpoints, Path(args.data_root or "data"), moved, work_root, columns,
                 python=getattr(args, "python", sys.executable))
    if args.dry_run:
        run_steps(plan, dry_run=True, log=log)
        return 0
    if not args.collect_only:
        run_steps(plan, log=log)
    md, csv = render(checkpoints, collect(checkpoints, REPO / work_root, columns), columns)
    out = REPO / work_root / "tables"
    write_text_atomic(md, out / "probes.md")
    write_text_atomic(csv, out / "probes.csv")
    log(md)
    log(f"wrote {work_root / 'tables' / 'probes.md'} and {work_root / 'tables' / 'probes.csv'}")
    return 0


__all__ = ["Column", "COLUMNS", "DATA_LAYOUT", "ProbeTableError", "load_references", "steps", "collect", "render",
           "run_table"]
