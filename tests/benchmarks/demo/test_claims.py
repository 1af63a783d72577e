"""benchmarks/demo/claims.py and the demo's table: spreads computed as the textbooks do
(checked against scipy's own t-tests), and claims that follow from the numbers: a difference
inside its spread is never called a gain or a loss, in the table or in the summary."""
from __future__ import annotations

import math
import random
import re

import pytest
from scipy import stats

from benchmarks.demo import claims
from benchmarks.demo.claims import GAIN, LOSS, NO_DIFFERENCE, NOT_MEASURED


def test_welch_interval_is_scipys():
    a, b = [4.9, 6.4, 4.4], [3.6, 7.3, 3.9]
    c = claims.compare_runs(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert c.difference == pytest.approx((sum(a) / 3) - (sum(b) / 3))
    assert c.difference - c.half_width == pytest.approx(ci.low)
    assert c.difference + c.half_width == pytest.approx(ci.high)
    assert c.a.sd == pytest.approx(stats.tstd(a)) and c.b.mean == pytest.approx(sum(b) / 3)
    assert c.over == "3 seeds" and c.verdict == NO_DIFFERENCE and not c.paired


def test_paired_interval_is_scipys():
    a, b = [50.0, 61.0, 55.0, 40.0, 47.5], [45.0, 52.0, 50.5, 41.0, 44.0]
    c = claims.compare_paired(a, b, unit="objects")
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert c.difference - c.half_width == pytest.approx(ci.low)
    assert c.difference + c.half_width == pytest.approx(ci.high)
    assert c.over == "5 objects (paired)" and c.paired and c.df == 4
    assert c.verdict == (GAIN if ci.low > 0 else NO_DIFFERENCE)


@pytest.mark.parametrize("a, b, want", [
    ([30.0, 30.2, 30.1], [20.0, 20.3, 20.1], GAIN),        # far outside a tight spread
    ([20.0, 20.3, 20.1], [30.0, 30.2, 30.1], LOSS),
    ([4.0, 6.5, 4.4], [3.5, 7.2, 3.9], NO_DIFFERENCE),      # +0.1 inside a spread of several points
    ([5.0, 9.0, 1.0], [2.0, 2.1, 1.9], NO_DIFFERENCE),      # +2.0, but the spread is wider
    ([5.0], [3.0], NOT_MEASURED),                           # one run: no spread, no claim
    ([5.0, 5.0], [3.0, 3.0], GAIN),                         # every run identical: the difference is exact
    ([5.0, 5.0], [5.01, 5.01], NO_DIFFERENCE),              # exact but prints as 0.0: no claim
])
def test_verdicts_of_constructed_numbers(a, b, want):
    assert claims.compare_runs(a, b).verdict == want


def test_verdict_is_decided_by_the_interval_alone():
    assert claims.verdict(1.0, 0.99) == GAIN and claims.verdict(-1.0, 0.99) == LOSS
    assert claims.verdict(1.0, 1.0) == NO_DIFFERENCE and claims.verdict(-0.5, 2.0) == NO_DIFFERENCE
    assert claims.verdict(0.04, 0.0) == NO_DIFFERENCE and claims.verdict(3.0, None) == NOT_MEASURED


def test_summary_says_only_what_the_verdicts_say():
    comps = {"probe mIoU": claims.compare_runs([30.0, 30.2, 30.1], [20.0, 20.3, 20.1]),
             "box AP": claims.compare_runs([4.0, 6.5, 4.4], [3.5, 7.2, 3.9]),
             "J&F": claims.compare_paired([40.0, 41.0, 39.0, 40.5], [50.0, 52.0, 49.0, 51.0]),
             "AUC": claims.compare_runs([90.0], [80.0])}
    line = claims.summary_line(comps)
    assert line.startswith("FLSL pretraining vs random init: higher probe mIoU (+10.0 ± ")
    assert "lower J&F (-10.4 ± " in line
    assert "no difference shown beyond the 95% spread in box AP (+0.1 ± " in line
    assert "no claim without a spread for AUC (+10.0 ± n/a)" in line
    # the no-difference metric is named only in its own clause
    assert line.count("box AP") == 1 and "higher box AP" not in line and "lower box AP" not in line


def test_claims_follow_the_numbers_on_random_constructed_tables():
    """Whatever the numbers, a metric appears under "higher" exactly when its whole 95% interval
    is above zero, under "lower" exactly when it is below, never both."""
    rng = random.Random(0)
    for _ in range(200):
        n = rng.choice([2, 3, 5])
        shift = rng.choice([0.0, 0.5, 3.0, -3.0])
        noise = rng.choice([0.1, 1.0, 3.0])
        a = [10 + shift + rng.gauss(0, noise) for _ in range(n)]
        b = [10 + rng.gauss(0, noise) for _ in range(n)]
        c = claims.compare_runs(a, b)
        line = claims.summary_line({"m": c})
        low, high = c.difference - c.half_width, c.difference + c.half_width
        assert ("higher m (" in line) == (low > 0 and abs(c.difference) >= claims.RESOLUTION)
        assert ("lower m (" in line) == (high < 0 and abs(c.difference) >= claims.RESOLUTION)
        assert ("no difference shown" in line) == (low <= 0 <= high or abs(c.difference) < claims.RESOLUTION)


def _results(coco_a, coco_b, probe_a, probe_b, groups_a, groups_b, davis_a, davis_b):
    """A constructed results document in the shape of demo.collect_results."""
    def coco(values):
        return {s: {"bbox_AP": v, "bbox_AP50": v, "bbox_AP75": v, "segm_AP": v, "segm_AP50": v, "segm_AP75": None}
                for s, v in enumerate(values)}

    def davis(values):
        return {f"seq{i}_1": {"J": j, "F": f} for i, (j, f) in enumerate(values)}

    return {"flsl": {"mask_rcnn": coco(coco_a), "probe": dict(enumerate(probe_a)),
                     "grouping": {f"{i}.jpg": v for i, v in enumerate(groups_a)}, "davis": davis(davis_a)},
            "random": {"mask_rcnn": coco(coco_b), "probe": dict(enumerate(probe_b)),
                       "grouping": {f"{i}.jpg": v for i, v in enumerate(groups_b)}, "davis": davis(davis_b)}}


def test_demo_table_and_summary_follow_the_numbers(tmp_path):
    from benchmarks.demo import run as demo
    results = _results(coco_a=[4.0, 6.5, 4.4], coco_b=[3.5, 7.2, 3.9],               # inside the spread
                       probe_a=[30.0, 30.2, 30.1, 30.0, 30.1], probe_b=[20.0, 20.3, 20.1, 20.2, 20.0],
                       groups_a=[94.0, 93.0, 95.0, None], groups_b=[93.9, 93.2, 94.8, 88.0],
                       davis_a=[(50, 40), (61, 55), (55, 50), (70, 66)],
                       davis_b=[(45, 35), (52, 47), (50, 48), (66, 60)])
    comps = demo.compare(results)
    assert "segm_AP75" not in comps                   # pycocotools' -1 in every run: nothing to compare
    assert comps["bbox_AP"].verdict == NO_DIFFERENCE and comps["probe_mIoU"].verdict == GAIN
    assert comps["grouping_AUC"].over == "3 images (paired)"                # an image without a score is left out
    assert comps["grouping_AUC"].verdict == NO_DIFFERENCE
    jf = comps["JF_mean"]
    assert jf.difference == pytest.approx(sum((ja + fa) / 2 - (jb + fb) / 2 for (ja, fa), (jb, fb)
                                              in zip([(50, 40), (61, 55), (55, 50), (70, 66)],
                                                     [(45, 35), (52, 47), (50, 48), (66, 60)])) / 4)
    line = demo.summary(comps)
    assert "higher linear-probe mIoU (+10.0 ± " in line and "DAVIS J&F (+" in line
    assert "no difference shown beyond the 95% spread in box AP (" in line
    assert "higher box AP" not in line and "mask AP (" in line
    md = demo.results_markdown(comps, demo.DEFAULT, [], tmp_path)
    rows = {tuple(c.strip() for c in ln.strip("|").split("|")[:2]): [c.strip() for c in ln.strip("|").split("|")]
            for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| protocol")}
    box = rows[("Mask R-CNN, fine-tuned", "box AP")]
    assert box[2] == "5.0 ± 1.3" and box[6] == "no difference shown"
    probe = rows[("linear probe, frozen encoder", "mIoU")]
    assert probe[4].startswith("+10.0 ± ") and probe[6] == "**gain**"
    jf_row = rows[("DAVIS label propagation", "J&F")]
    assert jf_row[2] == f"{(50 + 40 + 61 + 55 + 55 + 50 + 70 + 66) / 8:.1f}" and "±" not in jf_row[2]
    assert jf_row[5] == "4 objects (paired)"
    assert rows[("Mask R-CNN, fine-tuned", "mask AP75")][2:] == ["-", "-", "-", "-", "no result"]
    for cells in rows.values():          # a marked difference lies outside its interval, every row
        if cells[6] in ("**gain**", "**loss**"):
            d, hw = (float(x) for x in cells[4].split(" ± "))
            assert abs(d) > hw and (d > 0) == (cells[6] == "**gain**")
    assert f"**Summary.** {line}" in md
    assert not re.search(r"\d (s|min|seconds)\b", md) and "wall" not in md     # nothing timed in it
    assert math.isfinite(comps["F_mean"].half_width)
