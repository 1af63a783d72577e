"""Means, spreads, and what a difference between two arms supports.

A number measured once says nothing about how much it moves when the run is repeated. Every
comparison of the demo's table is therefore one of:

* **repeated runs** (:func:`compare_runs`): each arm measured ``n`` times with different seeds
  (fine-tuning or probe training); the arm's cell is the mean and the sample standard deviation
  ``sd`` (``n - 1`` in the denominator); the difference of the means gets Welch's standard error
  ``se = sqrt(sd_a^2 / n_a + sd_b^2 / n_b)`` and Welch-Satterthwaite degrees of freedom;
* **paired units** (:func:`compare_paired`): a protocol without training (DAVIS label
  propagation repeats its numbers exactly), evaluated on the same units (objects) in both arms;
  the difference is the mean of the per-unit differences ``d_u`` and its standard error is
  ``sd(d) / sqrt(n)`` (``n - 1`` degrees of freedom): how much the difference would move on
  another draw of videos like these.

The **spread of a difference** is the half-width of its two-sided 95% confidence interval,
``t_{0.975, df} * se`` (Student's t). A difference is called a *gain* or a *loss* only when it
lies outside that interval (``|difference| > half-width``) and is at least :data:`RESOLUTION`
(it does not print as 0.0); otherwise it is *no difference shown*. With fewer than two runs
per arm (or two units) there is no spread and no claim: *spread not measured*.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

LEVEL = 0.95
#: differences below this (in the table's unit, percent points) print as 0.0: never a claim
RESOLUTION = 0.05

GAIN, LOSS, NO_DIFFERENCE, NOT_MEASURED = "gain", "loss", "no difference shown", "spread not measured"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """One arm's repeated measurements of one metric."""

    values: tuple

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n

    @property
    def sd(self) -> float | None:
        """Sample standard deviation (``n - 1``); None with fewer than two values."""
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """FLSL (``a``) against random init (``b``) on one metric."""

    a: Estimate
    b: Estimate
    difference: float            # mean(a) - mean(b) (paired: mean of the per-unit differences)
    half_width: float | None     # 95% confidence half-width of the difference; None: not measured
    df: float | None             # degrees of freedom of the t quantile
    over: str                    # what the spread is over, e.g. "3 seeds" or "17 objects (paired)"
    verdict: str                 # GAIN, LOSS, NO_DIFFERENCE or NOT_MEASURED
    paired: bool = False         # units (a.values[i] and b.values[i] measure the same unit), not runs

    @property
    def arm_spread(self) -> bool:
        """Whether an arm's ``sd`` is a run-to-run spread (repeated runs); over paired units it
        is the units' variety, not a spread of the arm's number."""
        return not self.paired

    def as_dict(self) -> dict:
        return {"flsl": {"mean": self.a.mean, "sd": self.a.sd, "values": list(self.a.values)},
                "random": {"mean": self.b.mean, "sd": self.b.sd, "values": list(self.b.values)},
                "difference": self.difference, "half_width": self.half_width, "df": self.df,
                "over": self.over, "verdict": self.verdict, "paired": self.paired}


def t_quantile(df: float, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile ``t_{(1 + level) / 2, df}``."""
    from scipy.stats import t
    return float(t.ppf(0.5 + level / 2, df))


def verdict(difference: float, half_width: float | None, resolution: float = RESOLUTION) -> str:
    """The claim a difference supports (module docstring)."""
    if half_width is None:
        return NOT_MEASURED
    if abs(difference) > half_width and abs(difference) >= resolution:
        return GAIN if difference > 0 else LOSS
    return NO_DIFFERENCE


def compare_runs(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Comparison:
    """Welch comparison of two arms' repeated runs (module docstring)."""
    ea, eb = Estimate(tuple(float(v) for v in a)), Estimate(tuple(float(v) for v in b))
    if ea.n == 0 or eb.n == 0:
        raise ValueError("compare_runs needs at least one value per arm")
    diff = ea.mean - eb.mean
    over = f"{ea.n} seeds" if ea.n == eb.n else f"{ea.n} / {eb.n} seeds"
    if ea.sd is None or eb.sd is None:
        return Comparison(ea, eb, diff, None, None, over, NOT_MEASURED)
    va, vb = ea.sd ** 2 / ea.n, eb.sd ** 2 / eb.n
    se = math.sqrt(va + vb)
    if se == 0.0:    # every run of both arms gave the same number: the difference is exact
        return Comparison(ea, eb, diff, 0.0, None, over, verdict(diff, 0.0))
    df = (va + vb) ** 2 / ((va ** 2 / (ea.n - 1) if va else 0.0) + (vb ** 2 / (eb.n - 1) if vb else 0.0))
    hw = t_quantile(df, level) * se
    return Comparison(ea, eb, diff, hw, df, over, verdict(diff, hw))


def compare_paired(a: Sequence[float], b: Sequence[float], unit: str = "objects",
                   level: float = LEVEL) -> Comparison:
    """Paired comparison over evaluation units (the same units in both arms, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison of {len(a)} and {len(b)} units")
    ea, eb = Estimate(tuple(float(v) for v in a)), Estimate(tuple(float(v) for v in b))
    d = Estimate(tuple(x - y for x, y in zip(ea.values, eb.values)))
    over = f"{d.n} {unit} (paired)"
    if d.n < 2:
        return Comparison(ea, eb, d.mean if d.n else float("nan"), None, None, over, NOT_MEASURED, paired=True)
    se = d.sd / math.sqrt(d.n)
    hw = t_quantile(d.n - 1, level) * se if se > 0 else 0.0
    return Comparison(ea, eb, d.mean, hw, float(d.n - 1), over, verdict(d.mean, hw), paired=True)


def format_difference(c: Comparison) -> str:
    """``+4.9 ± 2.1`` (``± n/a`` without a spread)."""
    spread = "n/a" if c.half_width is None else f"{c.half_width:.1f}"
    return f"{c.difference:+.1f} ± {spread}"


def summary_line(comparisons: Mapping[str, Comparison], a_label: str = "FLSL pretraining",
                 b_label: str = "random init") -> str:
    """One sentence that says only what the verdicts say, metric by metric (names are the
    mapping's keys, in its order)."""
    groups: dict = {GAIN: [], LOSS: [], NO_DIFFERENCE: [], NOT_MEASURED: []}
    for name, c in comparisons.items():
        groups[c.verdict].append(f"{name} ({format_difference(c)})")
    parts = []
    if groups[GAIN]:
        parts.append("higher " + _join(groups[GAIN]))
    if groups[LOSS]:
        parts.append("lower " + _join(groups[LOSS]))
    if groups[NO_DIFFERENCE]:
        parts.append("no difference shown beyond the 95% spread in " + _join(groups[NO_DIFFERENCE]))
    if groups[NOT_MEASURED]:
        parts.append("no claim without a spread for " + _join(groups[NOT_MEASURED]))
    if not parts:
        return f"{a_label} vs {b_label}: nothing was measured."
    return f"{a_label} vs {b_label}: " + "; ".join(parts) + "."


def _join(items: list) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["LEVEL", "RESOLUTION", "GAIN", "LOSS", "NO_DIFFERENCE", "NOT_MEASURED", "Estimate", "Comparison",
           "t_quantile", "verdict", "compare_runs", "compare_paired", "format_difference", "summary_line"]
