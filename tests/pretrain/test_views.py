"""Token-sampling masks: counts, placement, random mode (docs/method.md section 2)."""
import torch

from pretrain.views import MultiCropViews, ViewConfig, token_sampling_mask


def _positions(mask, grid):
    idx = mask.nonzero().squeeze(1)
    return [(int(i) // grid, int(i) % grid) for i in idx]


def _check(grid, window, expected):
    side = window * (grid // window)
    corners_seen = set()
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        mask = token_sampling_mask(grid, window, generator=g)
        assert mask.shape == (grid * grid,) and int(mask.sum()) == expected
        pos = _positions(mask, grid)
        r0, c0 = min(p[0] for p in pos), min(p[1] for p in pos)
        assert r0 in (0, grid - side) and c0 in (0, grid - side)
        corners_seen.add((r0, c0))
        # first token of every window of the square, exactly one per window
        assert sorted(pos) == sorted((r0 + window * a, c0 + window * b)
                                     for a in range(grid // window) for b in range(grid // window))
    assert len(corners_seen) == (4 if grid % window else 1)


def test_global_grid_14_window_3():
    _check(14, 3, 16)


def test_local_grid_6_window_2():
    _check(6, 2, 9)


def test_random_mode_picks_one_token_per_window_uniformly():
    counts = torch.zeros(9)
    for seed in range(300):
        g = torch.Generator().manual_seed(seed)
        mask = token_sampling_mask(14, 3, random_in_window=True, generator=g)
        pos = _positions(mask, 14)
        assert len(pos) == 16
        fits = []
        for r0 in (0, 2):
            for c0 in (0, 2):
                inside = all(r0 <= r < r0 + 12 and c0 <= c < c0 + 12 for r, c in pos)
                windows = {((r - r0) // 3, (c - c0) // 3) for r, c in pos}
                if inside and len(windows) == 16:
                    fits.append((r0, c0))
        assert fits, f"no corner square holds exactly one token per window: {pos}"
        if len(fits) == 1:
            r0, c0 = fits[0]
            for r, c in pos:
                counts[((r - r0) % 3) * 3 + (c - c0) % 3] += 1
    freq = counts / counts.sum()
    assert (freq - 1 / 9).abs().max() < 0.03  # every offset inside a window is used about equally


def test_multicrop_views_shapes():
    from PIL import Image
    import numpy as np
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 170, 3), dtype=np.uint8))
    views = MultiCropViews(ViewConfig())(img)
    assert views["teacher"].shape == views["global"].shape == (3, 224, 224)
    assert views["locals"].shape == (2, 3, 96, 96)
    assert views["global_index"].shape == (16,) and views["local_index"].shape == (2, 9)
    assert int(views["global_index"].max()) < 196 and int(views["local_index"].max()) < 36
