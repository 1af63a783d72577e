"""J, F and the statistics against plain loop computations written here from the rules."""
import math
from fractions import Fraction

import numpy as np
import pytest

from benchmarks.davis import bitmaps
from benchmarks.davis.metrics import (DavisResults, boundary_radius, decay_edges, f_from_counts,
                                      read_csv, sequence_scores, statistics)


# ------------------------------------------------------------------------- plain computations
def plain_iou(g, p):
    inter = sum(1 for y in range(g.shape[0]) for x in range(g.shape[1]) if g[y, x] and p[y, x])
    union = sum(1 for y in range(g.shape[0]) for x in range(g.shape[1]) if g[y, x] or p[y, x])
    return 1.0 if union == 0 else inter / union


def plain_bmap(m):
    """Boundary rule, pixel by pixel: differs from right, lower or lower-right neighbour
    (outside = 0); last column: lower only; last row: right only; bottom-right: never."""
    h, w = m.shape
    val = lambda y, x: bool(m[y, x]) if (y < h and x < w) else False  # noqa: E731
    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                out[y, x] = val(y, x) != val(y, x + 1)
            elif x == w - 1:
                out[y, x] = val(y, x) != val(y + 1, x)
            else:
                out[y, x] = (val(y, x) != val(y, x + 1)) or (val(y, x) != val(y + 1, x)) \
                    or (val(y, x) != val(y + 1, x + 1))
    return out


def plain_dilate(b, r):
    h, w = b.shape
    out = np.zeros_like(b)
    for y, x in zip(*np.nonzero(b)):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx <= r * r and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y + dy, x + dx] = True
    return out


def plain_f(g, p):
    r = math.ceil(0.008 * math.hypot(*g.shape))
    gb, pb = plain_bmap(g), plain_bmap(p)
    gd, pd = plain_dilate(gb, r), plain_dilate(pb, r)
    n_fg, n_gt = int(pb.sum()), int(gb.sum())
    if n_fg == 0 and n_gt > 0:
        prec, rec = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        prec, rec = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        prec, rec = 1.0, 1.0
    else:
        prec, rec = int((pb & gd).sum()) / n_fg, int((gb & pd).sum()) / n_gt
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def plain_stats(v):
    n = len(v)
    mean = sum(v) / n
    recall = sum(1 for x in v if x > 0.5) / n
    edges = [math.floor(Fraction(k * (n - 1), 4) + Fraction(1, 2)) for k in range(5)]
    b0 = v[edges[0]:edges[1] + 1]
    b3 = v[edges[3]:edges[4] + 1]
    return mean, recall, sum(b0) / len(b0) - sum(b3) / len(b3)


def random_labels(rng, t, h, w, k):
    """Label maps with blobby objects, some touching the last row / column, some absent."""
    out = np.zeros((t, h, w), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for i in range(t):
        for obj in range(1, k + 1):
            if rng.random() < 0.2:
                continue
            cy, cx = rng.uniform(-3, h + 3), rng.uniform(-3, w + 3)
            ry, rx = rng.uniform(1, h / 2), rng.uniform(1, w / 2)
            out[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = obj
        if rng.random() < 0.3:
            out[i][rng.random((h, w)) < 0.05] = rng.integers(0, k + 1)
    return out


# ------------------------------------------------------------------------- J and F
def test_iou_with_empty_cases():
    g = np.zeros((1, 12, 14), dtype=np.uint8)
    p = g.copy()
    J, _ = sequence_scores(g, p, 1)
    assert J[0, 0] == 1.0  # both empty
    g[0, 2:6, 3:9] = 1
    J, _ = sequence_scores(g, p, 1)
    assert J[0, 0] == 0.0  # prediction empty
    J, _ = sequence_scores(p, g, 1)
    assert J[0, 0] == 0.0  # truth empty
    p[0, 4:8, 3:9] = 1
    J, _ = sequence_scores(g, p, 1)
    assert J[0, 0] == pytest.approx(plain_iou(g[0] == 1, p[0] == 1)) == pytest.approx(12 / 36)


@pytest.mark.parametrize("seed", range(6))
def test_scores_match_plain_loops(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(9, 40)), int(rng.integers(9, 70))
    k = int(rng.integers(1, 4))
    gt, pred = random_labels(rng, 3, h, w, k), random_labels(rng, 3, h, w, k)
    gt[0, -1, :] = 1          # objects on the last row and the last column
    pred[1, :, -1] = k
    J, F = sequence_scores(gt, pred, k)
    for obj in range(k):
        for t in range(3):
            g, p = gt[t] == obj + 1, pred[t] == obj + 1
            assert J[obj, t] == pytest.approx(plain_iou(g, p), abs=1e-15)
            assert F[obj, t] == pytest.approx(plain_f(g, p), abs=1e-15)


def test_boundary_rule_last_row_and_column():
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = int(rng.integers(2, 20)), int(rng.integers(2, 90))
        masks = [rng.random((h, w)) < rng.uniform(0.1, 0.9) for _ in range(3)]
        masks[0][-1, :] = True     # a full last row
        masks[1][:, -1] = True     # a full last column
        stack = bitmaps.pack_blocks(masks, [True] * 3, w, 2)
        got = bitmaps.boundaries(stack).reshape(-1, stack.nw)
        for m, st in zip(masks, stack.starts):
            bits = np.unpackbits(got[st:st + h].view(np.uint8), axis=1, bitorder="little")[:, :w]
            np.testing.assert_array_equal(bits.astype(bool), plain_bmap(m))


def test_single_pixel_and_full_frame_boundaries():
    full = np.ones((6, 7), dtype=bool)
    assert not plain_bmap(full)[:-1, :-1].any()      # interior of a full mask: no boundary
    g = np.zeros((1, 6, 7), dtype=np.uint8)
    g[0] = 1
    p = g.copy()
    J, F = sequence_scores(g, p, 1)
    assert J[0, 0] == 1.0 and F[0, 0] == pytest.approx(plain_f(g[0] == 1, p[0] == 1))


def test_disk_radius_from_the_diagonal():
    for h, w in [(480, 854), (480, 910), (96, 160), (64, 64), (1080, 1920), (3, 5)]:
        assert boundary_radius(h, w) == math.ceil(0.008 * math.sqrt(h * h + w * w))
    assert boundary_radius(480, 854) == 8


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8, 13])
def test_disk_dilation_matches_plain(radius):
    rng = np.random.default_rng(radius)
    h, w = 31, 77
    maps = [rng.random((h, w)) < 0.02 for _ in range(2)]
    maps[0][0, 0] = maps[0][-1, -1] = True             # image corners
    stack = bitmaps.pack_blocks(maps, [True, True], w, radius)
    dil = bitmaps.dilate_disk(stack, radius).reshape(-1, stack.nw)
    for m, st in zip(maps, stack.starts):
        bits = np.unpackbits(dil[st:st + h].view(np.uint8), axis=1, bitorder="little")[:, :w]
        np.testing.assert_array_equal(bits.astype(bool), plain_dilate(m, radius))


def test_disk_staircase_covers_exactly_the_disk():
    for r in range(0, 20):
        cover = set()
        for hh, v in bitmaps.disk_staircase(r):
            cover |= {(dy, dx) for dy in range(-hh, hh + 1) for dx in range(-v, v + 1)}
        assert cover == {(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                         if dy * dy + dx * dx <= r * r}


def test_four_special_precision_recall_cases():
    # no predicted boundary, some true one: P = 1, R = 0 -> F = 0
    assert f_from_counts([0], [10], [0], [0])[0] == 0.0
    # predicted boundary, no true one: P = 0, R = 1 -> F = 0
    assert f_from_counts([10], [0], [0], [0])[0] == 0.0
    # neither: P = R = 1 -> F = 1
    assert f_from_counts([0], [0], [0], [0])[0] == 1.0
    # both, nothing matched: P + R = 0 -> F = 0
    assert f_from_counts([7], [9], [0], [0])[0] == 0.0
    # regular case: 2PR / (P + R)
    p, r = 3 / 4, 5 / 10
    assert f_from_counts([4], [10], [3], [5])[0] == pytest.approx(2 * p * r / (p + r))
    # and through whole masks: far apart objects match nothing
    g = np.zeros((1, 40, 60), dtype=np.uint8)
    p_ = g.copy()
    g[0, 2:8, 2:8] = 1
    p_[0, 30:36, 50:56] = 1
    _, F = sequence_scores(g, p_, 1)
    assert F[0, 0] == 0.0 == plain_f(g[0] == 1, p_[0] == 1)
    _, F = sequence_scores(g, np.zeros_like(g), 1)
    assert F[0, 0] == 0.0


# ------------------------------------------------------------------------- statistics
def test_decay_edges_follow_the_rule():
    assert decay_edges(14).tolist() == [0, 3, 7, 10, 13]
    assert decay_edges(2).tolist() == [0, 0, 1, 1, 1]
    assert decay_edges(1).tolist() == [0, 0, 0, 0, 0]
    for n in [3, 4, 5, 7, 100, 104, 257, 300, 1000]:
        want = [math.floor(Fraction(k * (n - 1), 4) + Fraction(1, 2)) for k in range(5)]
        assert decay_edges(n).tolist() == want
    # beyond 256 frames the edges leave the uint8 range the official tool stores them in
    assert decay_edges(300).tolist()[-1] == 299
    assert np.array(decay_edges(300)).astype(np.uint8).tolist() != decay_edges(300).tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 14, 57, 300])
def test_statistics_match_plain(n):
    rng = np.random.default_rng(n)
    values = rng.random((3, n))
    values[0, : n // 2] = 0.5          # exactly 0.5 is not a success
    mean, recall, decay = statistics(values)
    for k in range(3):
        m, r, d = plain_stats(list(values[k]))
        assert mean[k] == pytest.approx(m, abs=1e-12)
        assert recall[k] == pytest.approx(r, abs=1e-12)
        assert decay[k] == pytest.approx(d, abs=1e-12)


def test_decay_of_two_and_one_frames():
    _, _, d = statistics(np.array([[0.9, 0.4]]))
    assert d[0] == pytest.approx(0.5)
    _, _, d = statistics(np.array([[0.7]]))
    assert d[0] == 0.0


def test_recall_threshold_is_strict():
    _, recall, _ = statistics(np.array([[0.5, 0.5, 0.5000001, 1.0]]))
    assert recall[0] == 0.5


def test_object_averaging_and_writers(tmp_path):
    rng = np.random.default_rng(0)
    res = DavisResults()
    per_seq = {"a": (rng.random((1, 5)), rng.random((1, 5))),          # 1 object
               "b": (rng.random((3, 9)), rng.random((3, 9)))}          # 3 objects
    for name, (J, F) in per_seq.items():
        res.add(name, J, F)
    objs = [(f"{n}_{k + 1}", plain_stats(list(J[k])), plain_stats(list(F[k])))
            for n, (J, F) in per_seq.items() for k in range(J.shape[0])]
    g = res.global_scores()
    # means over the 4 objects, not over the 2 sequences
    for i, col in enumerate(("Mean", "Recall", "Decay")):
        assert g[f"J-{col}"] == pytest.approx(sum(o[1][i] for o in objs) / 4)
        assert g[f"F-{col}"] == pytest.approx(sum(o[2][i] for o in objs) / 4)
    assert g["J&F-Mean"] == pytest.approx((g["J-Mean"] + g["F-Mean"]) / 2)

    paths = res.write(tmp_path, "val")
    text = (tmp_path / "global_results-val.csv").read_text().splitlines()
    assert text[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert text[1] == ",".join(f"{g[c]:.3f}" for c in text[0].split(","))
    rows = read_csv(tmp_path / "per-sequence_results-val.csv")
    assert [r["Sequence"] for r in rows] == [o[0] for o in objs]
    assert all(len(r["J-Mean"].split(".")[1]) == 3 for r in rows)
    import json
    doc = json.loads(paths[2].read_text())
    assert doc["global"]["J-Mean"] == g["J-Mean"]                      # full precision
    assert doc["per_object"]["b_2"]["F-Mean"] == pytest.approx(objs[2][2][0], abs=1e-15)
    assert set(doc["global"]) == {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean",
                                  "F-Recall", "F-Decay"}
