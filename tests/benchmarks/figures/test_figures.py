"""benchmarks/figures/maps.py and tools/visualize.py: k-means and mean-shift attention against plain
computations, and the PNGs the tool writes for a random-weight encoder."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.figures.maps import FigureError, attention_maps, kmeans, parse_patches
from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder

ROOT = Path(__file__).resolve().parents[3]


def _blobs(seed=0, n_per=40, k=4, dim=6):
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(k, dim, generator=g)
    x = torch.cat([c + 0.3 * torch.randn(n_per, dim, generator=g) for c in centres])
    truth = torch.arange(k).repeat_interleave(n_per)
    return x, truth


def test_kmeans_is_a_lloyd_fixed_point_and_finds_separated_blobs():
    x, truth = _blobs()
    labels, cents = kmeans(x, 4, cosine=False, seed=3)
    # plain recomputation: each point's nearest centroid, each centroid the mean of its points
    for i in range(x.shape[0]):
        d = [float(((x[i] - c) ** 2).sum()) for c in cents]
        assert labels[i] == int(np.argmin(d))
    for j in range(4):
        members = [x[i] for i in range(x.shape[0]) if labels[i] == j]
        assert members, "empty cluster"
        torch.testing.assert_close(cents[j], torch.stack(members).mean(0), rtol=1e-5, atol=1e-5)
    # the partition is the blobs' (up to renaming)
    pairs = {(int(a), int(b)) for a, b in zip(truth, labels)}
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4 and len({b for _, b in pairs}) == 4


def test_kmeans_cosine_clusters_directions_and_checks_k():
    x, truth = _blobs(seed=1, k=3)
    scaled = x * torch.rand(x.shape[0], 1, generator=torch.Generator().manual_seed(0)).add(0.5)
    a, _ = kmeans(x, 3, seed=0)
    b, _ = kmeans(scaled, 3, seed=0)   # cosine: the norm of each row does not matter
    assert torch.equal(a, b)
    with pytest.raises(FigureError, match="k = 9"):
        kmeans(x[:5], 9)


def test_attention_maps_match_a_plain_softmax():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(12, 8, generator=g)
    queries = [0, 5, 11]
    out = attention_maps(tokens, queries)                # default scale 0.1 / sqrt(C)
    beta = 0.1 / math.sqrt(8)
    for qi, q in enumerate(queries):
        logits = [beta * sum(float(tokens[q, c]) * float(tokens[j, c]) for c in range(8)) for j in range(12)]
        m = max(logits)
        e = [math.exp(v - m) for v in logits]
        for j in range(12):
            assert float(out[qi, j]) == pytest.approx(e[j] / sum(e), rel=1e-5)
    sharp = attention_maps(tokens, [3], scale=50.0)
    assert int(sharp[0].argmax()) == int((tokens @ tokens[3]).argmax())


def test_parse_patches():
    assert parse_patches(["1,2", "0.5,0.5", "1.0,0.0"], (4, 6)) == [(1, 2), (2, 3), (3, 0)]
    with pytest.raises(FigureError, match="outside"):
        parse_patches(["4,0"], (4, 6))
    with pytest.raises(FigureError, match="ROW,COL"):
        parse_patches(["3"], (4, 6))


def _summary_size(rows: int, cols: int, aspect: float) -> tuple[int, int]:
    """Pixel size of a summary figure (figures.summary_figure's figsize at its dpi; matplotlib
    truncates the product, so 956.99... pixels are 956)."""
    from benchmarks.figures.maps import DPI, PANEL_INCHES
    return (int((PANEL_INCHES * cols + 1.2) * DPI + 1e-9), int((PANEL_INCHES * aspect * rows + 1.5) * DPI + 1e-9))


def _close(size, want) -> bool:
    return all(abs(a - b) <= 1 for a, b in zip(size, want))


def _random_encoder_file(folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_encoder("vit_tiny_patch16_224", depth=2, img_size=64)
    path = folder / "random_tiny.safetensors"
    export_encoder(model, path)
    return path


def test_visualize_writes_pngs_of_the_expected_size(tmp_path):
    ckpt = _random_encoder_file(tmp_path)
    rng = np.random.default_rng(0)
    img = tmp_path / "scene.png"
    Image.fromarray(rng.integers(0, 255, size=(100, 150, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), "--checkpoint", str(ckpt), str(img), "--out", str(out),
                           "--short-side", "64", "--k", "4", "--patches", "1,1", "0.5,0.99"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # short side 100 -> 64 px; long side 150 * 0.64 = 96, a multiple of 16: 64 x 96 input, 4 x 6 patches
    h, w = 64, 96
    for name in ("scene_clusters.png", "scene_attn_1_1.png", "scene_attn_2_5.png"):
        with Image.open(out / name) as im:
            assert im.size == (w, h), name
    with Image.open(out / "scene_summary.png") as im:   # 1 row: image | clusters | 2 attention maps
        assert _close(im.size, _summary_size(1, 2 + 2, h / w))


def test_rendered_maps_are_the_plain_overlays(tmp_path):
    """The cluster PNG is 0.6 * tab20 colour of each patch's cluster + 0.4 * image; the attention
    PNG peaks where the attention weight does."""
    from matplotlib import colormaps

    from benchmarks.figures.maps import render_figures
    torch.manual_seed(0)
    model = build_encoder("vit_tiny_patch16_224", depth=2, img_size=64)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(32, 48, 3), dtype=np.uint8)
    figs = render_figures(model, image, tmp_path, "x", k=3, patches=[(1, 2)])
    assert figs.labels.shape == (2, 3) and set(np.unique(figs.labels)) <= {0, 1, 2}
    with Image.open(figs.clusters) as im:
        got = np.asarray(im.convert("RGB")).astype(float)
    table = np.asarray(colormaps["tab20"].colors) * 255
    for y in range(32):
        for x in range(48):
            want = 0.6 * table[figs.labels[y // 16, x // 16]] + 0.4 * image[y, x]
            assert np.abs(got[y, x] - np.round(want)).max() <= 1
    assert figs.maps.shape == (1, 2, 3)
    assert figs.maps.sum() == pytest.approx(1.0, rel=1e-5)


def test_visualize_reads_a_dino_style_checkpoint_and_rejects_bad_input(tmp_path):
    torch.manual_seed(0)
    model = build_encoder("vit_tiny_patch16_224", depth=2)
    state = dict(model.state_dict())
    c = state["pos_embed"].shape[-1]
    state["cls_token"] = torch.zeros(1, 1, c)
    state["pos_embed"] = torch.cat([torch.zeros(1, 1, c), state["pos_embed"]], dim=1)
    ckpt = tmp_path / "dino_deittiny16_pretrain.pth"
    torch.save(state, ckpt)
    img = tmp_path / "a.jpg"
    Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(img)
    tool = [sys.executable, str(ROOT / "tools/visualize.py")]
    # a zero class slot before a sin-cos table is MAE's layout: the family is named
    proc = subprocess.run([*tool, "--checkpoint", str(ckpt), str(img), "--out", str(tmp_path / "o"), "--short-side", "32", "--k", "2",
                           "--family", "dino"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "format dino" in proc.stdout
    with Image.open(tmp_path / "o" / "a_summary.png") as im:
        assert _close(im.size, _summary_size(1, 2 + 3, 1.0))   # 2x2 patches: 3 distinct default query patches
    proc = subprocess.run([*tool, "--checkpoint", str(ckpt), str(img), "--out", str(tmp_path / "o"), "--short-side", "32",
                           "--patches", "5,5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "5,5" in proc.stderr
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    proc = subprocess.run([*tool, "--checkpoint", str(ckpt), str(tmp_path / "broken.jpg"), "--short-side", "32",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------ figures for people
def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]


def test_summary_figure_is_titled_labelled_and_drawn_in_blocks(tmp_path):
    """Two encoders as rows: every panel titled, rows named, patches drawn as blocks (nearest),
    the query patches marked, a colour bar for the attention and a legend for the clusters; the
    attention colour is log2(N * weight) of the objective's attention (computed here again)."""
    import matplotlib

    from benchmarks.figures.maps import DPI, encoder_maps, summary_figure
    torch.manual_seed(0)
    a = build_encoder("vit_tiny_patch16_224", depth=2, img_size=64)
    torch.manual_seed(1)
    b = build_encoder("vit_tiny_patch16_224", depth=2, img_size=64)
    image = np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
    queries = [(1, 1), (3, 5)]
    maps = [encoder_maps(m, image, lab, 3, queries) for m, lab in ((a, "FLSL-pretrained"), (b, "random init"))]
    fig = summary_figure(image, 16, queries, maps, "a title", k=3)
    assert fig._suptitle.get_text() == "a title"
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid) == 2 * (2 + len(queries))
    for ax in grid:
        assert ax.get_title(), "every panel has a title"
        assert ax.images and ax.images[0].get_interpolation() == "nearest"
    rows = sorted({ax.get_ylabel() for ax in grid} - {""})
    assert rows == ["FLSL-pretrained", "random init"]
    assert sum("attention of query" in ax.get_title() for ax in grid) == 2 * len(queries)
    assert "k-means" in grid[1].get_title()
    # the query patches are outlined (one rectangle per query on the image, one per attention map)
    assert len(grid[0].patches) == len(queries) and all(len(ax.patches) == 1 for ax in grid[2:4])
    # colour bar and cluster legend
    cbar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbar) == 1 and "log2" in cbar[0].get_ylabel()
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == ["1", "2", "3"]
    # attention drawn: log2(N * softmax(beta z_q . z_j)), one shared symmetric scale
    want = np.log2(maps[1].maps[1] * 24)
    np.testing.assert_allclose(grid[2 + 2 + 3].images[0].get_array(), want, rtol=1e-6)
    lo, hi = grid[2].images[0].get_clim()
    assert lo == -hi and hi == pytest.approx(max(np.abs(np.log2(m.maps * 24)).max() for m in maps))
    # large enough to read: a patch is at least 20 screen pixels wide
    fig.canvas.draw()
    assert grid[1].get_window_extent().width / 6 >= 20
    assert fig.dpi == DPI
    matplotlib.pyplot.close(fig)


def test_clusters_are_renumbered_largest_first():
    from benchmarks.figures.maps import renumber_by_size
    labels = np.array([[2, 2, 0], [2, 5, 0], [2, 5, 5]])
    out = renumber_by_size(labels)
    np.testing.assert_array_equal(out, [[0, 0, 2], [0, 1, 2], [0, 1, 1]])   # 4 x id 2, 3 x id 5, 2 x id 0


def test_visualize_compares_encoders_in_one_figure(tmp_path):
    ckpt = _random_encoder_file(tmp_path)
    torch.manual_seed(5)
    other = tmp_path / "other.safetensors"
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=2, img_size=64), other)
    img = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, size=(64, 96, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), "--checkpoint", str(ckpt), str(img), "--out", str(out),
                           "--short-side", "64", "--k", "4", "--patches", "1,1", "--compare", str(other),
                           "--labels", "FLSL-pretrained", "random init"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for label in ("flsl_pretrained", "random_init"):
        for name in ("scene_clusters.png", "scene_attn_1_1.png"):
            with Image.open(out / f"{label}_{name}") as im:
                assert im.size == (96, 64)
    with Image.open(out / "scene_summary.png") as im:
        assert _close(im.size, _summary_size(2, 3, 64 / 96))
    proc = subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), "--checkpoint", str(ckpt), str(img), "--out", str(out),
                           "--compare", str(other), "--labels", "only-one"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "--labels" in proc.stderr


def test_pretraining_figure_draws_each_part_of_the_log(tmp_path):
    import json

    import matplotlib

    from benchmarks.figures.maps import FigureError, pretraining_figure, read_log
    log = tmp_path / "log.jsonl"
    recs = [{"iteration": 16 * i, "epoch": i, "loss": 6 - 0.1 * i, "ms": 0.3 - 0.01 * i, "kmeans": 5.9 - 0.1 * i,
             "vmr": 0.01 * i, "lr": 1e-4, "images_per_s": 30.0} for i in range(1, 6)]
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    fig = pretraining_figure(read_log(log), "curves")
    assert fig._suptitle.get_text() == "curves" and len(fig.axes) == 4
    for ax, key in zip(fig.axes, ("loss", "ms", "kmeans", "vmr")):
        assert ax.get_title() and ax.get_xlabel() == "iteration" and ax.get_ylabel() == key
        x, y = ax.lines[0].get_data()
        assert list(x) == [r["iteration"] for r in recs] and list(y) == [r[key] for r in recs]
    matplotlib.pyplot.close(fig)
    log.write_text(json.dumps(recs[0]) + "\n" + json.dumps({"iteration": 32, "loss": 1.0}) + "\n")
    with pytest.raises(FigureError, match="line 2 lacks 'ms'"):
        read_log(log)


def test_results_figure_shows_each_arm_and_each_difference_with_its_spread(tmp_path):
    import matplotlib

    from benchmarks.demo import claims
    from benchmarks.figures.maps import VERDICT_COLOURS, results_figure, save_figure
    rows = [("probe: mIoU", claims.compare_runs([30.0, 30.2, 30.1], [20.0, 20.3, 20.1])),
            ("Mask R-CNN: box AP", claims.compare_runs([4.0, 6.5, 4.4], [3.5, 7.2, 3.9])),
            ("DAVIS: J&F", claims.compare_paired([50, 60, 55, 40], [45, 52, 50, 41]))]
    fig = results_figure(rows, "results")
    left, right = fig.axes
    assert left.get_title() and right.get_title() and left.get_xlabel() and right.get_xlabel()
    assert [t.get_text() for t in left.get_yticklabels()] == [name for name, _ in rows]
    bars = [p.get_width() for p in left.patches]
    assert bars[:3] == pytest.approx([c.a.mean for _, c in rows])              # FLSL bars, top to bottom
    # error bars of the arms: only the rows with seeds (2 rows x 2 arms)
    arm_errors = [c for c in left.containers if type(c).__name__ == "ErrorbarContainer"]
    assert sum(len(c.lines[2][0].get_segments()) for c in arm_errors) == 4
    # one point per difference, coloured by its verdict, with its 95% half-width
    points = [c for c in right.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(points) == 3
    for (name, comp), cont in zip(rows, points):
        x, _ = cont.lines[0].get_data()
        assert x[0] == pytest.approx(comp.difference)
        seg = cont.lines[2][0].get_segments()[0]
        assert seg[1][0] - seg[0][0] == pytest.approx(2 * comp.half_width)
        assert matplotlib.colors.to_hex(cont.lines[0].get_color()) == VERDICT_COLOURS[comp.verdict]
    path = save_figure(fig, tmp_path / "r.png")
    with Image.open(path) as im:
        assert im.size[0] >= 1200 and im.size[1] >= 250


def test_patch_features_use_the_family_input_statistics(tmp_path):
    """Figures and probes feed an encoder the statistics its family was trained with: a CLIP
    tower's features are those of CLIP-normalised pixels, not ImageNet-normalised ones."""
    from benchmarks.features import patch_features
    from core.normalise import normalise
    from pretrain.checkpoint import load_pretrained_encoder
    from pretrain.encoder import encode
    from pretrain.families import CLIP_MEAN, CLIP_STD
    from tests.pretrain import family_releases as fr
    path = tmp_path / "clip.pt"
    torch.save(fr.clip_model(quick_gelu=True).state_dict(), path)
    model, _ = load_pretrained_encoder(path, family="openai-clip")
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    got = patch_features(model, image)
    x = torch.from_numpy(image).permute(2, 0, 1)
    with torch.no_grad():
        want = encode(model.eval(), normalise(x, CLIP_MEAN, CLIP_STD)[None])[0].reshape(4, 6, -1)
        imagenet = encode(model, normalise(x)[None])[0].reshape(4, 6, -1)
    assert torch.allclose(got, want, atol=1e-6) and not torch.allclose(got, imagenet, atol=1e-3)
