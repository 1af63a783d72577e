"""The leaderboard as a static site, built from the results store.

    SITE/index.html              benchmarks, checkpoints, cross-benchmark scatter plots
    SITE/b/<page>[-<k>].html     one page per benchmark and data set: a sortable table (rows:
                                 checkpoint x protocol; columns: metrics as mean +- spread over
                                 seeds, the paper's number beside ours where there is one) and a
                                 bar chart; pages of ROWS_PER_PAGE rows, best first
    SITE/c/<checkpoint>.html     one page per checkpoint: every number it has, and a chart
    SITE/runs/<k>.html           provenance of RUNS_PER_PAGE runs, one anchor ``#run-<id>`` each
    SITE/assets/                 style.css and sort.js (the only script)

Every cell links to the provenance of the run its numbers come from. The site loads nothing from
elsewhere (no font, no CDN; plots are inline SVG drawn here) and a Content-Security-Policy allows
only its own script and style. Every string from the store is HTML-escaped.

A row of a benchmark page is one checkpoint (its SHA-256, else its name) under one protocol; a
cell holds, per seed, the value of the newest run that measured that seed (a re-run replaces its
seed's value, it is not averaged in), then their mean and sample standard deviation.
"""
from __future__ import annotations

import dataclasses
import hashlib
import html
import math
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

from core.files import make_dirs
from core.results import Store

from . import svg

ASSETS = Path(__file__).resolve().parent / "assets"
ROWS_PER_PAGE = 200
RUNS_PER_PAGE = 100
CHECKPOINTS_PER_PAGE = 500
BAR_ROWS = 20
SCATTER_PAIRS = 6

#: metric order and headline (first) of the suite's benchmarks; others: alphabetical
METRIC_ORDER = {
    "coco": ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"),
    "uavdt": ("AP70", "AP", "AP50", "AP75", "AP_s", "AP_m", "AP_l"),
    "ade20k": ("mIoU", "mAcc", "aAcc"),
    "davis": ("JF_mean", "J_mean", "F_mean", "J_recall", "F_recall", "J_decay", "F_decay"),
    "linear-probe": ("mIoU", "pixel_acc"),
    "patch-grouping": ("AUC",),
}
#: metrics where lower is better (sorted ascending for "best first")
LOWER_IS_BETTER = {"J_decay", "F_decay", "RMSE", "rmse", "abs_rel"}

e = html.escape


def _slug(*parts: str) -> str:
    """A file name for a page: readable letters of the name plus a short hash (unique, safe)."""
    text = "/".join(parts)
    readable = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


@dataclasses.dataclass
class Cell:
    values: dict          # seed -> value (newest run per seed)
    runs: dict            # seed -> run id
    mean: float = 0.0
    sd: float | None = None

    def finish(self) -> "Cell":
        vals = [self.values[s] for s in sorted(self.values)]
        n = len(vals)
        self.mean = math.fsum(vals) / n
        self.sd = math.sqrt(math.fsum((v - self.mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
        return self

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def newest_run(self) -> int:
        return max(self.runs.values())


@dataclasses.dataclass
class Row:
    key: str
    checkpoint: str               # name shown (the newest run's)
    ckpt_page: str
    protocol: str
    protocol_default: bool
    protocol_note: str
    family: str | None
    architecture: str | None
    paper_row: str | None
    cells: dict                   # metric -> Cell
    run_ids: list


@dataclasses.dataclass
class Board:
    benchmark: str
    dataset: str
    slug: str
    metrics: list
    rows: list                    # of Row, best first
    paper: dict                   # paper row id -> {metric: value}
    paper_title: str = ""

    @property
    def title(self) -> str:
        return f"{self.benchmark} · {self.dataset}" if self.dataset and self.dataset != self.benchmark else self.benchmark

    def page(self, i: int) -> str:
        return f"b/{self.slug}.html" if i == 0 else f"b/{self.slug}-{i + 1}.html"

    def row_page(self, row_index: int) -> str:
        return self.page(row_index // ROWS_PER_PAGE)


def checkpoint_key(run: dict) -> str:
    return run["checkpoint_digest"] or "name:" + run["checkpoint"]


def run_page(run_id: int) -> str:
    return f"runs/{run_id // RUNS_PER_PAGE}.html"


def run_href(run_id: int, up: str = "../") -> str:
    return f"{up}{run_page(run_id)}#run-{run_id}"


# ----------------------------------------------------------------------------- paper numbers
_SIZES = {"tiny": "T", "small": "S", "base": "B", "large": "L", "huge": "H", "giant": "g"}


def backbone_label(arch: str | None) -> str | None:
    """``vit_small_patch16_224`` -> ``ViT-S/16`` (the paper tables' spelling)."""
    m = re.match(r"vit_([a-z]+)_patch(\d+)", arch or "")
    if not m or m.group(1) not in _SIZES:
        return None
    return f"ViT-{_SIZES[m.group(1)]}/{m.group(2)}"


def load_paper() -> dict:
    """``{table name: (title, {row id: (pretraining, backbone, {metric: value})})}`` from
    benchmarks/reproduce/paper_tables.json (numbers not available to us are left out)."""
    from benchmarks.reproduce.references import load_references
    tables, _ = load_references()
    out = {}
    for name, t in tables.items():
        out[name] = (t.title, {r.id: (r.pretraining, r.backbone,
                                      {k: ref.value for k, ref in r.reference.items() if ref.value is not None})
                               for r in t.rows})
    return out


def match_paper_row(paper_rows: dict, run: dict) -> str | None:
    """The paper row a run measures: the one it names (``paper_row``), else the row whose
    pretraining is the checkpoint's family and whose backbone is its architecture."""
    if run.get("paper_row") in paper_rows:
        return run["paper_row"]
    fam, bb = (run.get("family") or "").lower(), backbone_label(run.get("architecture"))
    if not fam or not bb:
        return None
    for rid, (pretraining, backbone, _) in paper_rows.items():
        if backbone == bb and fam.split("-")[0] == pretraining.lower():
            return rid
    return None


# ----------------------------------------------------------------------------- model
def build_boards(runs: list[dict], paper: dict) -> tuple[list[Board], dict]:
    """Benchmark boards and ``{checkpoint key: {"name", "family", "architecture", "page"}}``."""
    groups: dict = defaultdict(dict)          # (bench, dataset) -> row key -> Row
    checkpoints: dict = {}
    for run in runs:                          # oldest first: newer runs overwrite
        ck = checkpoint_key(run)
        info = checkpoints.setdefault(ck, {"name": run["checkpoint"], "family": None, "architecture": None,
                                           "page": f"c/{_slug(run['checkpoint'], ck)}.html", "digest": run["checkpoint_digest"]})
        info["name"] = run["checkpoint"]
        info["family"] = run["family"] or info["family"]
        info["architecture"] = run["architecture"] or info["architecture"]
        board = groups[(run["benchmark"], run["dataset"])]
        rkey = f"{ck}|{run['protocol']}"
        row = board.get(rkey)
        if row is None:
            row = board[rkey] = Row(rkey, run["checkpoint"], info["page"], run["protocol"], run["protocol_default"],
                                    run["protocol_note"], run["family"], run["architecture"], None, {}, [])
        row.checkpoint = run["checkpoint"]
        row.family = run["family"] or row.family
        row.architecture = run["architecture"] or row.architecture
        row.protocol_default = row.protocol_default and run["protocol_default"]
        row.protocol_note = run["protocol_note"] or row.protocol_note
        row.paper_row = run.get("paper_row") or row.paper_row
        row.run_ids.append(run["id"])
        for metric, per_seed in run["metrics"].items():
            cell = row.cells.get(metric)
            if cell is None:
                cell = row.cells[metric] = Cell({}, {})
            for seed, value in per_seed.items():
                cell.values[seed] = value
                cell.runs[seed] = run["id"]
    boards = []
    for (bench, dataset), rows in sorted(groups.items()):
        metric_set = {m for r in rows.values() for m in r.cells}
        order = METRIC_ORDER.get(bench, ())
        metrics = [m for m in order if m in metric_set] + sorted(metric_set - set(order))
        title, paper_rows = paper.get(bench, ("", {}))
        for r in rows.values():
            for c in r.cells.values():
                c.finish()
            r.paper_row = match_paper_row(paper_rows, {"paper_row": r.paper_row, "family": r.family,
                                                       "architecture": r.architecture})
            r.run_ids = sorted(set(r.run_ids))
        head = metrics[0] if metrics else None
        sign = 1 if head in LOWER_IS_BETTER else -1

        def rank(r, head=head, sign=sign):
            c = r.cells.get(head)
            return (c is None, sign * c.mean if c else 0.0, r.checkpoint, r.protocol)
        ordered = sorted(rows.values(), key=rank)
        used = {r.paper_row for r in ordered if r.paper_row}
        board_paper = {rid: paper_rows[rid][2] for rid in used}
        boards.append(Board(bench, dataset, _slug(bench, dataset), metrics, ordered, board_paper, title))
    return boards, checkpoints


# ----------------------------------------------------------------------------- HTML
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'")


def page(title: str, body: str, up: str = "", script: bool = False) -> str:
    """A whole HTML document; ``up`` is the way back to the site root (``""`` or ``"../"``)."""
    js = f'<script src="{up}assets/sort.js" defer></script>' if script else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<title>{e(title)} · FLSL-bench leaderboard</title>'
            f'<link rel="stylesheet" href="{up}assets/style.css">{js}</head><body>'
            f'<a class="skip" href="#main">Skip to content</a>'
            f'<header><nav aria-label="site"><a href="{up}index.html">Leaderboard</a>'
            f'<a href="{up}index.html#benchmarks">Benchmarks</a><a href="{up}index.html#checkpoints">Checkpoints</a>'
            f'</nav></header><main id="main"><h1>{e(title)}</h1>{body}</main>'
            f'<footer><p class="n">Built from the results store by tools/leaderboard.py; '
            f'numbers in percent unless a metric says otherwise.</p></footer></body></html>\n')


def _cell_html(cell: Cell | None, up: str) -> str:
    if cell is None:
        return '<td class="num" data-v="">–</td>'
    sd = f' <span class="sd">± {fmt(cell.sd)}</span>' if cell.sd is not None else ""
    return (f'<td class="num" data-v="{cell.mean!r}"><a href="{run_href(cell.newest_run, up)}" '
            f'title="provenance of run {cell.newest_run}">{fmt(cell.mean)}</a>{sd}'
            f' <span class="n">n={cell.n}</span></td>')


def _paper_html(value: float | None) -> str:
    if value is None:
        return '<td class="num paper" data-v="">–</td>'
    return f'<td class="num paper" data-v="{value!r}">{fmt(value, 1)}</td>'


def _protocol_html(row: Row) -> str:
    if row.protocol_default:
        return f'<td data-v="{e(row.protocol)}">{e(row.protocol)}</td>'
    note = row.protocol_note or "non-default protocol"
    return (f'<td data-v="{e(row.protocol)}">{e(row.protocol)} <span class="flag" title="{e(note)}" '
            f'aria-label="non-default protocol: {e(note)}">⚑</span></td>')


def board_table(board: Board, rows: list, up: str, caption: str, with_paper: bool = True) -> str:
    """The sortable table of ``rows`` of ``board``."""
    paper_metrics = [m for m in board.metrics if any(m in v for v in board.paper.values())] if with_paper else []
    heads = [("checkpoint", ""), ("protocol", ""), ("family", ""), ("architecture", "")]
    for m in board.metrics:
        heads.append((m, "num"))
        if m in paper_metrics:
            heads.append((f"{m} (paper)", "num"))
    heads.append(("runs", ""))
    th = "".join(f'<th scope="col" class="{cls}"><button type="button" data-col="{i}">{e(h)}</button></th>'
                 for i, (h, cls) in enumerate(heads))
    out = [f'<div class="scroll"><table class="sortable" data-board="{e(board.slug)}" '
           f'data-benchmark="{e(board.benchmark)}" data-dataset="{e(board.dataset)}"><caption>{e(caption)}</caption>'
           f'<thead><tr>{th}</tr></thead><tbody>']
    for r in rows:
        paper = board.paper.get(r.paper_row, {}) if r.paper_row else {}
        cells = [f'<td class="name" data-v="{e(r.checkpoint)}"><a href="{up}{r.ckpt_page}">{e(r.checkpoint)}</a></td>',
                 _protocol_html(r), f'<td data-v="{e(r.family or "")}">{e(r.family or "")}</td>',
                 f'<td data-v="{e(r.architecture or "")}">{e(r.architecture or "")}</td>']
        for m in board.metrics:
            cells.append(_cell_html(r.cells.get(m), up))
            if m in paper_metrics:
                cells.append(_paper_html(paper.get(m)))
        links = " ".join(f'<a href="{run_href(i, up)}">#{i}</a>' for i in r.run_ids[-5:])
        more = f' <span class="n">+{len(r.run_ids) - 5}</span>' if len(r.run_ids) > 5 else ""
        cells.append(f'<td data-v="{len(r.run_ids)}">{links}{more}</td>')
        out.append(f'<tr data-row="{e(r.key)}">{"".join(cells)}</tr>')
    out.append("</tbody></table></div>")
    return "".join(out)


def board_pages(board: Board) -> list[tuple[str, str]]:
    """``[(path, html)]`` of a benchmark's pages."""
    n_pages = max(1, math.ceil(len(board.rows) / ROWS_PER_PAGE))
    head = board.metrics[0] if board.metrics else None
    bars = [(r.checkpoint + ("" if r.protocol == "default" else f" [{r.protocol}]"), r.cells[head].mean,
             r.cells[head].sd, board.paper.get(r.paper_row, {}).get(head) if r.paper_row else None)
            for r in board.rows[:BAR_ROWS] if head in r.cells]
    chart = svg.bar_chart(bars, f"{board.title}: {head} (mean ± standard deviation over seeds)", head or "") if bars else ""
    out = []
    for i in range(n_pages):
        rows = board.rows[i * ROWS_PER_PAGE:(i + 1) * ROWS_PER_PAGE]
        nav = ""
        if n_pages > 1:
            links = [f'<span aria-current="page">{k + 1}</span>' if k == i else
                     f'<a href="../{board.page(k)}">{k + 1}</a>' for k in range(n_pages)]
            nav = f'<nav class="pages" aria-label="pages of this table">Pages: {"".join(links)}</nav>'
        first = i * ROWS_PER_PAGE + 1
        caption = (f"{len(board.rows)} checkpoint × protocol rows, ordered by {head} "
                   f"(best first); rows {first}–{first + len(rows) - 1}. Press a column header to sort this page.")
        parts = [f'<p>Benchmark <b>{e(board.benchmark)}</b>, data set <b>{e(board.dataset or "-")}</b>. '
                 f'Each cell: mean <span class="sd">± standard deviation</span> over seeds '
                 f'(n = seeds), linked to the provenance of its newest run. '
                 f'<span class="flag">⚑</span> marks a non-default protocol.'
                 + (f' Paper numbers: {e(board.paper_title)} (benchmarks/reproduce/paper_tables.json).'
                    if board.paper else "") + "</p>"]
        if chart and i == 0:
            parts.append(f'<figure>{chart}<figcaption>Top {len(bars)} rows by {e(head)}; whiskers: ± one '
                         f'standard deviation over seeds; diamond: the paper\'s number.</figcaption></figure>')
        parts += [nav, board_table(board, rows, "../", caption), nav]
        out.append((board.page(i), page(board.title, "".join(parts), "../", script=True)))
    return out


def checkpoint_page(key: str, info: dict, entries: list) -> str:
    """``entries``: ``[(board, row, row index)]`` of this checkpoint."""
    meta = (f'<dl class="prov"><dt>name</dt><dd>{e(info["name"])}</dd>'
            f'<dt>SHA-256</dt><dd>{e(info["digest"] or "unknown")}</dd>'
            f'<dt>family</dt><dd>{e(info["family"] or "unknown")}</dd>'
            f'<dt>architecture</dt><dd>{e(info["architecture"] or "unknown")}</dd></dl>')
    bars, sections = [], []
    for board, row, idx in entries:
        head = board.metrics[0] if board.metrics else None
        if head in row.cells:
            c = row.cells[head]
            bars.append((f"{board.title}: {head}" + ("" if row.protocol == "default" else f" [{row.protocol}]"),
                         c.mean, c.sd, board.paper.get(row.paper_row, {}).get(head) if row.paper_row else None))
        sections.append(f'<h2><a href="../{board.row_page(idx)}">{e(board.title)}</a> '
                        f'<span class="n">rank {idx + 1} of {len(board.rows)}</span></h2>'
                        + board_table(board, [row], "../", f"{board.title}: all metrics of this checkpoint"))
    chart = svg.bar_chart(bars, f"{info['name']}: headline metric of each benchmark", "percent") if bars else ""
    fig = f'<figure>{chart}<figcaption>Headline metric per benchmark, ± one standard deviation over seeds.</figcaption></figure>' if chart else ""
    return page(f"Checkpoint {info['name']}", meta + fig + "".join(sections), "../", script=True)


PROV_FIELDS = ("kind", "benchmark", "dataset", "protocol", "protocol_note", "checkpoint", "checkpoint_path",
               "checkpoint_digest", "family", "architecture", "paper_row", "command", "config_path", "config_digest",
               "commit_id", "machine", "gpu", "started", "finished", "source")


def runs_page(chunk: list[dict], ck_pages: dict) -> str:
    parts = []
    for run in chunk:
        dl = []
        for f in PROV_FIELDS:
            v = run.get(f)
            if v in (None, ""):
                continue
            if f == "checkpoint":
                dl.append(f'<dt>{f}</dt><dd><a href="../{ck_pages[checkpoint_key(run)]}">{e(str(v))}</a></dd>')
            else:
                dl.append(f"<dt>{f}</dt><dd>{e(str(v))}</dd>")
        if not run["protocol_default"]:
            dl.append('<dt>protocol</dt><dd><span class="flag">⚑</span> non-default</dd>')
        for path, digest in sorted((run.get("inputs") or {}).items()):
            dl.append(f"<dt>input</dt><dd>{e(str(path))}: {e(str(digest))}</dd>")
        if run.get("extra"):
            for k, v in sorted(run["extra"].items()):
                dl.append(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>")
        metrics = "".join(f"<tr><th scope=\"row\">{e(m)}</th><td class=\"num\">{s}</td><td class=\"num\">{v!r}</td></tr>"
                          for m in sorted(run["metrics"]) for s, v in sorted(run["metrics"][m].items()))
        parts.append(f'<section class="run" id="run-{run["id"]}" aria-labelledby="h-{run["id"]}">'
                     f'<h2 id="h-{run["id"]}">Run {run["id"]}</h2><dl class="prov">{"".join(dl)}</dl>'
                     f'<div class="scroll"><table><caption>metrics of run {run["id"]} per seed</caption>'
                     f'<thead><tr><th scope="col">metric</th><th scope="col" class="num">seed</th>'
                     f'<th scope="col" class="num">value</th></tr></thead><tbody>{metrics}</tbody></table></div></section>')
    lo, hi = chunk[0]["id"], chunk[-1]["id"]
    return page(f"Provenance of runs {lo}–{hi}", "".join(parts), "../")


def index_page(boards: list[Board], checkpoints: dict, per_ckpt: dict, n_runs: int) -> str:
    rows = "".join(
        f'<tr><td data-v="{e(b.benchmark)}"><a href="{b.page(0)}">{e(b.benchmark)}</a></td>'
        f'<td data-v="{e(b.dataset)}">{e(b.dataset)}</td><td class="num" data-v="{len(b.rows)}">{len(b.rows)}</td>'
        f'<td data-v="{e(b.metrics[0] if b.metrics else "")}">{e(b.metrics[0] if b.metrics else "")}</td>'
        f'<td data-v="{e(b.rows[0].checkpoint) if b.rows else ""}">{e(b.rows[0].checkpoint) if b.rows else ""}</td></tr>'
        for b in boards)
    bench_table = ('<div class="scroll"><table class="sortable"><caption>Benchmark pages</caption><thead><tr>'
                   + "".join(f'<th scope="col"><button type="button" data-col="{i}">{h}</button></th>'
                             for i, h in enumerate(("benchmark", "data set", "rows", "ordered by", "best")))
                   + f"</tr></thead><tbody>{rows}</tbody></table></div>")
    if len(checkpoints) <= CHECKPOINTS_PER_PAGE:
        ck_section = checkpoint_table(sorted_checkpoints(checkpoints), per_ckpt, "")
    else:
        n = math.ceil(len(checkpoints) / CHECKPOINTS_PER_PAGE)
        ck_section = ('<nav class="pages" aria-label="checkpoint lists">Alphabetical lists: '
                      + "".join(f'<a href="{checkpoint_list_page(k)}">{k + 1}</a>' for k in range(n)) + "</nav>")
    scatters = scatter_figures(boards)
    body = (f"<p>{n_runs} runs of {len(checkpoints)} checkpoints on {len(boards)} benchmark pages.</p>"
            f'<h2 id="benchmarks">Benchmarks</h2>{bench_table}'
            + (f'<h2 id="compare">Across benchmarks</h2><div class="grid">{scatters}</div>' if scatters else "")
            + f'<h2 id="checkpoints">Checkpoints</h2>{ck_section}')
    return page("FLSL-bench leaderboard", body, "", script=True)


def sorted_checkpoints(checkpoints: dict) -> list:
    return sorted(checkpoints.items(), key=lambda t: (t[1]["name"].lower(), t[0]))


def checkpoint_list_page(k: int) -> str:
    return f"checkpoints-{k + 1}.html"


def checkpoint_table(items: list, per_ckpt: dict, up: str) -> str:
    """A sortable table of checkpoints ``[(key, info)]`` with links to their pages."""
    rows = "".join(
        f'<tr><td class="name" data-v="{e(info["name"])}"><a href="{up}{info["page"]}">{e(info["name"])}</a></td>'
        f'<td data-v="{e(info["family"] or "")}">{e(info["family"] or "")}</td>'
        f'<td data-v="{e(info["architecture"] or "")}">{e(info["architecture"] or "")}</td>'
        f'<td class="num" data-v="{len(per_ckpt.get(k, ()))}">{len(per_ckpt.get(k, ()))}</td></tr>'
        for k, info in items)
    return ('<div class="scroll"><table class="sortable"><caption>Checkpoints</caption><thead><tr>'
            + "".join(f'<th scope="col"><button type="button" data-col="{i}">{h}</button></th>'
                      for i, h in enumerate(("checkpoint", "family", "architecture", "benchmark rows")))
            + f"</tr></thead><tbody>{rows}</tbody></table></div>")


def checkpoint_list_pages(checkpoints: dict, per_ckpt: dict) -> dict:
    """``{path: html}`` of the alphabetical checkpoint lists (only when the index cannot hold them)."""
    if len(checkpoints) <= CHECKPOINTS_PER_PAGE:
        return {}
    items = sorted_checkpoints(checkpoints)
    n = math.ceil(len(items) / CHECKPOINTS_PER_PAGE)
    out = {}
    for k in range(n):
        chunk = items[k * CHECKPOINTS_PER_PAGE:(k + 1) * CHECKPOINTS_PER_PAGE]
        nav = ('<nav class="pages" aria-label="checkpoint lists">Lists: ' + "".join(
            f'<span aria-current="page">{j + 1}</span>' if j == k else f'<a href="{checkpoint_list_page(j)}">{j + 1}</a>'
            for j in range(n)) + "</nav>")
        out[checkpoint_list_page(k)] = page(f"Checkpoints {chunk[0][1]['name']} – {chunk[-1][1]['name']}",
                                            nav + checkpoint_table(chunk, per_ckpt, "") + nav, "", script=True)
    return out


def scatter_figures(boards: list[Board]) -> str:
    """Headline metric of one benchmark against another's, one point per checkpoint measured on
    both (default protocol rows), for the pairs with the most shared checkpoints."""
    heads = {}
    for b in boards:
        if not b.metrics:
            continue
        head = b.metrics[0]
        heads[b.slug] = (b, head, {r.ckpt_page: (r.checkpoint, r.cells[head].mean) for r in reversed(b.rows)
                                   if r.protocol_default and head in r.cells})
    pairs = []
    keys = sorted(heads)
    for i, a in enumerate(keys):
        for bkey in keys[i + 1:]:
            common = set(heads[a][2]) & set(heads[bkey][2])
            if len(common) >= 2:
                pairs.append((-len(common), a, bkey, common))
    pairs.sort(key=lambda t: t[:3])
    out = []
    for _, a, bkey, common in pairs[:SCATTER_PAIRS]:
        (ba, ha, va), (bb, hb, vb) = heads[a], heads[bkey]
        pts = [(va[k][0], va[k][1], vb[k][1], k) for k in sorted(common)]
        chart = svg.scatter(pts, f"{ba.title} {ha} vs {bb.title} {hb}", f"{ba.title}: {ha}", f"{bb.title}: {hb}")
        out.append(f"<figure>{chart}<figcaption>{e(ba.title)} {e(ha)} (x) against {e(bb.title)} {e(hb)} (y), "
                   f"{len(pts)} checkpoints.</figcaption></figure>")
    return "".join(out)


# ----------------------------------------------------------------------------- build
def build_site(store: Store, out: str | os.PathLike) -> dict:
    """Write the site into ``out`` (created; a folder the tool did not make must be empty or hold
    an earlier site). Returns counts: ``{"runs", "benchmarks", "checkpoints", "pages"}``."""
    out = Path(out)
    runs = store.runs()
    paper = load_paper()
    boards, checkpoints = build_boards(runs, paper)
    files: dict[str, str] = {}
    per_ckpt: dict = defaultdict(list)
    page_of_key = {info["page"]: k for k, info in checkpoints.items()}
    for b in boards:
        for path, text in board_pages(b):
            files[path] = text
        for i, r in enumerate(b.rows):
            per_ckpt[page_of_key[r.ckpt_page]].append((b, r, i))
    for k, info in checkpoints.items():
        files[info["page"]] = checkpoint_page(k, info, per_ckpt.get(k, []))
    ck_pages = {k: info["page"] for k, info in checkpoints.items()}
    chunks: dict = defaultdict(list)
    for run in runs:
        chunks[run["id"] // RUNS_PER_PAGE].append(run)
    for k, chunk in chunks.items():
        files[f"runs/{k}.html"] = runs_page(chunk, ck_pages)
    files.update(checkpoint_list_pages(checkpoints, per_ckpt))
    files["index.html"] = index_page(boards, checkpoints, per_ckpt, len(runs))
    write_files(out, files)
    return {"runs": len(runs), "benchmarks": len(boards), "checkpoints": len(checkpoints), "pages": len(files)}


def publish(store_option, out, log=print) -> Path | None:
    """Build the site from the store into ``out`` for a tool that has finished its own work (the
    demo): a store that cannot be read costs the site only, with a warning. Returns index.html."""
    from core.errors import FLSLError
    try:
        with Store(store_option) as store:
            counts = build_site(store, out)
    except FLSLError as err:
        log(f"warning: no leaderboard site: {err}")
        return None
    log(f"leaderboard: {Path(out) / 'index.html'} ({counts['runs']} runs, {counts['benchmarks']} benchmark pages) "
        f"from {store.path}")
    return Path(out) / "index.html"


MARKER = ".flsl-leaderboard"


def write_files(out: Path, files: dict) -> None:
    """Write the site: built whole in a folder beside ``out``, then renamed into place, so a reader
    (or a failed build) sees the previous site or the complete new one. ``out`` may be new, an
    empty folder or an earlier site (it holds the marker file); anything else is refused."""
    from core.errors import FLSLError
    if out.exists():
        if not out.is_dir():
            raise FLSLError(f"{out} (--out): a file, not a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise FLSLError(f"{out} (--out): a folder that holds something other than a leaderboard; "
                            "choose a new or empty folder")
    make_dirs(out.parent)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    old = out.parent / f".{out.name}.previous-{os.getpid()}"
    try:
        for sub in ("assets", "b", "c", "runs"):
            (tmp / sub).mkdir(parents=True)
        (tmp / MARKER).write_text("built by tools/leaderboard.py\n")
        for name in ("style.css", "sort.js"):
            shutil.copyfile(ASSETS / name, tmp / "assets" / name)
        for rel, text in files.items():
            (tmp / rel).write_text(text, encoding="utf-8")
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
    except OSError as err:
        if old.exists() and not out.exists():
            os.rename(old, out)
        raise FLSLError(f"{out} (--out): cannot be written ({err.strerror})") from None
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)


__all__ = ["build_site", "publish", "build_boards", "load_paper", "backbone_label", "match_paper_row", "ROWS_PER_PAGE",
           "RUNS_PER_PAGE", "Board", "Row", "Cell", "CSP"]
