"""Inline SVG charts for the leaderboard, drawn here so the site needs nothing from elsewhere.

Both charts scale with their container (``viewBox``, no fixed pixel width), name themselves for
screen readers (``role="img"`` with a ``<title>``) and escape every label.
"""
from __future__ import annotations

import html
import math

e = html.escape
COLOUR = "#0b5cad"
PAPER = "#b35900"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def _label(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bar_chart(bars: list, title: str, axis: str) -> str:
    """Horizontal bars ``[(label, mean, sd or None, paper value or None)]`` with whiskers of one
    standard deviation and the paper's number as a diamond."""
    row_h, left, right, top = 22, 250, 30, 34
    width = 720
    plot_w = width - left - right
    hi = max(max(m + (s or 0), p or 0) for _, m, s, p in bars)
    lo = min(0.0, min(m - (s or 0) for _, m, s, _ in bars))
    ticks = _ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    height = top + row_h * len(bars) + 34

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img">'
           f'<title>{e(title)}</title>',
           f'<text x="8" y="20" font-size="14" font-weight="600">{e(_label(title, 90))}</text>']
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{height - 30}" stroke="#d0d7de"/>'
                   f'<text x="{x(t):.1f}" y="{height - 14}" font-size="11" text-anchor="middle">{t:g}</text>')
    for i, (label, mean, sd, paper) in enumerate(bars):
        y = top + i * row_h
        x0, x1 = x(max(lo, 0.0)), x(mean)
        out.append(f'<text x="{left - 6}" y="{y + 15}" font-size="12" text-anchor="end">{e(_label(label))}</text>'
                   f'<rect x="{min(x0, x1):.1f}" y="{y + 4}" width="{abs(x1 - x0):.1f}" height="{row_h - 8}" '
                   f'fill="{COLOUR}" opacity="0.8"><title>{e(label)}: {mean:.2f}'
                   + (f" ± {sd:.2f}" if sd is not None else "") + "</title></rect>")
        if sd:
            out.append(f'<line x1="{x(mean - sd):.1f}" y1="{y + row_h / 2}" x2="{x(mean + sd):.1f}" '
                       f'y2="{y + row_h / 2}" stroke="#1b1f24" stroke-width="1.5"/>')
        if paper is not None:
            px, py = x(paper), y + row_h / 2
            out.append(f'<path d="M{px:.1f} {py - 6:.1f}l6 6l-6 6l-6 -6z" fill="{PAPER}">'
                       f"<title>paper: {paper:.1f}</title></path>")
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 1}" font-size="11" text-anchor="middle">'
               f"{e(axis)}</text></svg>")
    return "".join(out)


def scatter(points: list, title: str, x_label: str, y_label: str) -> str:
    """Points ``[(label, x, y, link)]``: one per checkpoint; each names itself on hover."""
    width, height, left, bottom, top, right = 420, 320, 64, 44, 26, 14
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    tx, ty = _ticks(min(xs), max(xs), 4), _ticks(min(ys), max(ys), 4)

    def sx(v):
        return left + (v - tx[0]) / (tx[-1] - tx[0]) * (width - left - right)

    def sy(v):
        return height - bottom - (v - ty[0]) / (ty[-1] - ty[0]) * (height - bottom - top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img">'
           f'<title>{e(title)}</title>']
    for t in tx:
        out.append(f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{height - bottom}" stroke="#d0d7de"/>'
                   f'<text x="{sx(t):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
    for t in ty:
        out.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}" stroke="#d0d7de"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
    for label, x, y, _ in points:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{COLOUR}" opacity="0.75">'
                   f"<title>{e(label)}: {x:.2f}, {y:.2f}</title></circle>")
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">'
               f'{e(_label(x_label, 60))}</text>'
               f'<text x="12" y="{(top + height - bottom) / 2:.1f}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 12 {(top + height - bottom) / 2:.1f})">{e(_label(y_label, 50))}</text></svg>')
    return "".join(out)


__all__ = ["bar_chart", "scatter"]
