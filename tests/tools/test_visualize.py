"""benchmarks/reproduce/figures.py and tools/visualize.py: k-means and mean-shift attention against plain
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

from benchmarks.reproduce.figures import FigureError, attention_maps, kmeans, parse_patches
from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder

ROOT = Path(__file__).resolve().parents[2]


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
    proc = subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), str(ckpt), str(img), "--out", str(out),
                           "--size", "64", "--k", "4", "--patches", "1,1", "0.5,0.99"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # short side 100 -> 64 px; long side 150 * 0.64 = 96, a multiple of 16: 64 x 96 input, 4 x 6 patches
    h, w = 64, 96
    for name in ("scene_clusters.png", "scene_attn_1_1.png", "scene_attn_2_5.png"):
        with Image.open(out / name) as im:
            assert im.size == (w, h), name
    with Image.open(out / "scene_summary.png") as im:
        assert im.size == (w * 4, h)           # image | clusters | 2 attention maps


def test_rendered_maps_are_the_plain_overlays(tmp_path):
    """The cluster PNG is 0.6 * tab20 colour of each patch's cluster + 0.4 * image; the attention
    PNG peaks where the attention weight does."""
    from matplotlib import colormaps

    from benchmarks.reproduce.figures import render_figures
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
    proc = subprocess.run([*tool, str(ckpt), str(img), "--out", str(tmp_path / "o"), "--size", "32", "--k", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "format dino" in proc.stdout
    with Image.open(tmp_path / "o" / "a_summary.png") as im:
        assert im.size == (32 * (2 + 3), 32)   # 2x2 patches: 3 distinct default query patches
    proc = subprocess.run([*tool, str(ckpt), str(img), "--out", str(tmp_path / "o"), "--size", "32",
                           "--patches", "5,5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "5,5" in proc.stderr
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    proc = subprocess.run([*tool, str(ckpt), str(tmp_path / "broken.jpg"), "--size", "32",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr
