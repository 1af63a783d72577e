"""Label propagation on hand-made features against a plain per-patch implementation of the
protocol written here (windows by loops, sorted affinities, k-th threshold, renormalisation)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.davis.pipeline import first_labels
from benchmarks.davis.propagation import (Neighbourhood, PropagationParams, Propagator,
                                          one_hot_labels, soft_to_masks, sparse_affinity)


# ------------------------------------------------------------------------- plain version
def plain_target(feats_t, ctx_feats, ctx_labels, h, w, radius, topk, temp):
    """Soft labels [N, L] of one target from context lists, one target patch at a time."""
    ft = feats_t / np.linalg.norm(feats_t, axis=1, keepdims=True)
    cf = [f / np.linalg.norm(f, axis=1, keepdims=True) for f in ctx_feats]
    out = np.zeros((h * w, ctx_labels[0].shape[1]))
    for i in range(h):
        for j in range(w):
            q = i * w + j
            entries = []  # (affinity, context index, key)
            for m, f in enumerate(cf):
                for y in range(h):
                    for x in range(w):
                        if radius and max(abs(y - i), abs(x - j)) > radius:
                            continue
                        cos = np.float32(np.dot(ft[q].astype(np.float64), f[y * w + x].astype(np.float64)))
                        entries.append((float(np.exp(np.float32(cos) / np.float32(temp))), m, y * w + x))
            vals = sorted((e[0] for e in entries), reverse=True)
            kth = vals[min(topk, len(vals)) - 1]
            kept = [e for e in entries if e[0] >= kth]
            total = sum(e[0] for e in kept)
            for a, m, key in kept:
                out[q] += a / total * ctx_labels[m][key]
    return out


def plain_sequence(feats, labels0, h, w, params):
    soft, outs = [], []
    for t in range(1, len(feats)):
        recent = list(range(max(1, t - params.n_last_frames), t)) if params.n_last_frames else []
        ctx = [0] + recent
        lab = [labels0 if m == 0 else soft[m - 1] for m in ctx]
        s = plain_target(feats[t], [feats[m] for m in ctx], lab, h, w, params.neighborhood,
                         params.topk, params.temperature)
        soft.append(s)
        outs.append(s)
    return outs


def run_fast(feats, labels0, h, w, params):
    prop = Propagator(params, (h, w), torch.from_numpy(feats[0]), torch.from_numpy(labels0))
    return [prop.step(torch.from_numpy(f)).numpy() for f in feats[1:]]


def random_video(rng, n_frames, h, w, c=16, n_labels=3, drift=0.3):
    base = rng.standard_normal((h * w, c)).astype(np.float32)
    feats = [base + drift * rng.standard_normal((h * w, c)).astype(np.float32) for _ in range(n_frames)]
    lab = rng.integers(0, n_labels, h * w)
    return feats, np.eye(n_labels, dtype=np.float32)[lab]


# ------------------------------------------------------------------------- tests
@pytest.mark.parametrize("h,w,radius,n_last", [(4, 6, 1, 7), (5, 4, 2, 2), (3, 5, 0, 3), (4, 7, 3, 7)])
def test_propagation_matches_plain(h, w, radius, n_last):
    """Context = first frame + n_last latest soft labels; window; joint top-k; renormalised."""
    rng = np.random.default_rng(h * 100 + w * 10 + radius)
    feats, labels0 = random_video(rng, 11, h, w)
    params = PropagationParams(n_last_frames=n_last, neighborhood=radius, topk=5, temperature=0.1)
    fast = run_fast(feats, labels0, h, w, params)
    plain = plain_sequence(feats, labels0, h, w, params)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, atol=2e-5)
        np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)   # renormalised


def test_queue_keeps_first_frame_and_latest_soft_labels():
    """With 2 recent frames, frame 5's context is frames 0, 3, 4: changing frame 1 or 2
    afterwards cannot matter, changing frame 3 must."""
    rng = np.random.default_rng(5)
    h, w = 3, 4
    feats, labels0 = random_video(rng, 6, h, w, drift=1.0)
    params = PropagationParams(n_last_frames=2, neighborhood=0)
    base = run_fast(feats, labels0, h, w, params)
    ctx = [0, 3, 4]
    direct = plain_target(feats[5], [feats[m] for m in ctx],
                          [labels0, base[2], base[3]], h, w, 0, 5, 0.1)
    np.testing.assert_allclose(base[4], direct, atol=2e-5)


def test_neighbourhood_restriction():
    """Target patch (0, 0) equals a far context patch labelled 2, its neighbours are labelled 1:
    within radius 1 the far patch is invisible, without restriction it wins."""
    rng = np.random.default_rng(0)
    h, w, c = 6, 8, 32
    f0 = rng.standard_normal((h * w, c)).astype(np.float32)
    lab = np.ones(h * w, dtype=int)
    lab[h * w - 1] = 2
    labels0 = np.eye(3, dtype=np.float32)[lab]
    target = f0.copy()
    target[0] = f0[h * w - 1]
    for radius, want in [(1, 1), (0, 2)]:
        params = PropagationParams(neighborhood=radius, topk=1)
        prop = Propagator(params, (h, w), torch.from_numpy(f0), torch.from_numpy(labels0))
        out = prop.step(torch.from_numpy(target)).numpy()
        assert out[0].argmax() == want


def test_topk_is_joint_over_context_frames_and_keeps_ties():
    rng = np.random.default_rng(1)
    h, w, c = 4, 5, 16
    nb = Neighbourhood(h, w, 1)
    feats = [F.normalize(torch.randn(h * w, c, generator=torch.Generator().manual_seed(i)), dim=1)
             for i in range(4)]
    # distinct frames: exactly k entries per target, the k largest over all frames
    tgt, src, wts = sparse_affinity(nb, nb.queries(feats[3]), [nb.keys(f) for f in feats[:3]], 5, 0.1)
    counts = np.bincount(tgt.numpy(), minlength=h * w)
    assert (counts == 5).all()
    np.testing.assert_allclose(np.bincount(tgt.numpy(), weights=wts.numpy()), 1.0, atol=1e-6)
    frames_used = {int(s) // (h * w) for s in src}
    assert frames_used == {0, 1, 2}  # the top 5 come from several frames
    q = 7
    i, j = divmod(q, w)
    aff = [(float(torch.exp(feats[3][q] @ feats[m][y * w + x] / 0.1)), m * h * w + y * w + x)
           for m in range(3) for y in range(h) for x in range(w) if max(abs(y - i), abs(x - j)) <= 1]
    best = {k for _, k in sorted(aff, reverse=True)[:5]}
    assert set(src[tgt == q].tolist()) == best
    # identical context frames: every value appears 3 times, all ties of the k-th are kept
    tgt, src, wts = sparse_affinity(nb, nb.queries(feats[3]), [nb.keys(feats[0])] * 3, 5, 0.1)
    counts = np.bincount(tgt.numpy(), minlength=h * w)
    assert (counts % 3 == 0).all() and (counts >= 6).all()
    np.testing.assert_allclose(np.bincount(tgt.numpy(), weights=wts.numpy()), 1.0, atol=1e-6)


@pytest.mark.parametrize("h,w,radius,tile", [(5, 9, 2, 1), (9, 5, 2, 2), (6, 6, 4, 3), (3, 11, 12, None)])
def test_window_tables_enumerate_each_window(h, w, radius, tile):
    nb = Neighbourhood(h, w, radius, tile_width=tile)
    ids = torch.arange(h * w, dtype=torch.float32)[:, None] + 1.0   # feature = patch id + 1
    full = torch.bmm(nb.queries(torch.ones(h * w, 1)), nb.keys(ids).transpose(1, 2))
    win = nb.windows(full).reshape(nb.n_tiles * nb.qt, -1)
    valid = nb.valid.reshape(nb.n_tiles * nb.qt, -1)
    for row, q in enumerate(nb.query_ids.tolist()):
        if q < 0:
            assert not valid[row].any()
            continue
        i, j = divmod(q, w)
        want = {y * w + x for y in range(h) for x in range(w)
                if max(abs(y - i), abs(x - j)) <= radius}
        got = [int(v) - 1 for v, ok in zip(win[row], valid[row]) if ok]
        assert sorted(got) == got and set(got) == want        # ordered by global key index
        assert [int(k) for k, ok in zip(nb.key_ids[row], valid[row]) if ok] == got


def test_identical_frames_keep_the_labels():
    rng = np.random.default_rng(2)
    h, w = 6, 7
    f0 = rng.standard_normal((h * w, 256)).astype(np.float32)  # near-orthogonal patches
    lab = rng.integers(0, 4, h * w)
    labels0 = np.eye(4, dtype=np.float32)[lab]
    out = run_fast([f0] * 10, labels0, h, w, PropagationParams())
    for o in out:
        assert (o.argmax(1) == lab).all()
        np.testing.assert_allclose(o, labels0, atol=5e-3)


def test_shifted_frame_shifts_the_labels():
    rng = np.random.default_rng(3)
    h, w, c = 8, 10, 64
    f0 = rng.standard_normal((h, w, c)).astype(np.float32)
    lab = rng.integers(0, 3, (h, w))
    labels0 = np.eye(3, dtype=np.float32)[lab.reshape(-1)]
    dy, dx = 1, 2
    f1 = rng.standard_normal((h, w, c)).astype(np.float32)   # new content enters at the border
    f1[dy:, dx:] = f0[:h - dy, :w - dx]
    out = run_fast([f0.reshape(-1, c), f1.reshape(-1, c)], labels0, h, w, PropagationParams())[0]
    got = out.argmax(1).reshape(h, w)
    assert (got[dy:, dx:] == lab[:h - dy, :w - dx]).all()


def test_soft_to_masks_matches_plain():
    rng = np.random.default_rng(4)
    soft = torch.from_numpy(rng.random((2, 3, 4, 5)).astype(np.float32))
    soft[1, 2] = 0.0                       # an all-zero channel is left as it is
    got = soft_to_masks(soft, 8, (37, 45))
    for b in range(2):
        up = F.interpolate(soft[b:b + 1], scale_factor=8, mode="bilinear", align_corners=False)[0]
        for c in range(3):
            if up[c].max() > 0:
                up[c] = (up[c] - up[c].min()) / (up[c] - up[c].min()).max()
        lab = up.argmax(0).numpy().astype(np.uint8)
        want = np.asarray(Image.fromarray(lab).resize((45, 37), Image.NEAREST))
        np.testing.assert_array_equal(got[b], want)


def test_first_labels_void_and_downsampled_max():
    ann = np.zeros((32, 48), dtype=np.uint8)
    ann[4:28, 4:20] = 1
    ann[0:4, :] = 255              # void -> background
    ann[30, 47] = 2                # a one-pixel object vanishes at feature resolution
    lab = first_labels(ann, (4, 6)).numpy()
    small = np.asarray(Image.fromarray(np.where(ann == 255, 0, ann)).resize((6, 4), Image.NEAREST))
    assert lab.shape == (24, int(small.max()) + 1) == (24, 2)
    np.testing.assert_array_equal(lab.argmax(1), small.reshape(-1))
    np.testing.assert_array_equal(one_hot_labels(small).numpy(), lab)
