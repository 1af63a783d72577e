"""Figures of what an encoder learned: k-means cluster maps of its patch features and mean-shift
attention maps of chosen patches (docs/method.md, section 3).

* :func:`kmeans` clusters ``[N, C]`` features (vectorised Lloyd iterations in torch, k-means++
  seeding, cosine geometry by default: features are L2-normalised first).
* :func:`attention_maps` is the intra-view mean-shift weighting of the objective:
  ``a_q = softmax_j(beta * z_q . z_j)`` over all tokens ``z_j`` of the image, for query patches
  ``q``; ``beta`` defaults to the objective's ``0.1 / sqrt(C)``.
* :func:`render_figures` writes the cluster map and each attention map as overlays at the
  network input's resolution (``H x W`` pixels), and ``<stem>_summary.png``: a titled figure with
  a row per encoder (e.g. FLSL beside random init) of image, cluster map and attention maps,
  patches drawn as blocks, a colour bar and a cluster legend (:func:`summary_figure`).
* :func:`pretraining_figure` draws the loss and its three parts from a pretraining ``log.jsonl``;
  :func:`results_figure` draws a results table (:mod:`benchmarks.demo.claims`) with its
  spreads.
"""
from __future__ import annotations

from core.errors import FLSLError

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.features import patch_features



class FigureError(FLSLError, ValueError):
    """Bad input to the figure tools (image, patch coordinates, k); the message names it."""


# ----------------------------------------------------------------------------- k-means
def kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0, cosine: bool = True):
    """Cluster rows of ``x`` ``[N, C]`` into ``k`` groups.

    k-means++ seeding from a generator seeded with ``seed``, then Lloyd iterations (all points at
    once: one ``[N, k]`` distance matrix and one ``index_add`` per iteration) until the labels
    stop changing or ``iters`` is reached. With ``cosine`` the rows are L2-normalised first
    (centroids are means of unit vectors). An emptied cluster keeps its previous centroid.

    Returns ``(labels [N] int64, centroids [k, C])``.
    """
    if x.ndim != 2:
        raise FigureError(f"kmeans expects [N, C] features, got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise FigureError(f"k = {k} clusters for {n} points: need 1 <= k <= {n}")
    x = x.float()
    if cosine:
        x = F.normalize(x, dim=1)
    g = torch.Generator().manual_seed(int(seed))
    first = int(torch.randint(n, (1,), generator=g))
    centroids = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        probs = d2 / total if total > 0 else torch.full_like(d2, 1.0 / n)
        i = int(torch.multinomial(probs, 1, generator=g))
        centroids.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    c = torch.stack(centroids)
    labels = None
    for _ in range(max(1, iters)):
        new_labels = torch.cdist(x, c).argmin(1)
        if labels is not None and torch.equal(new_labels, labels):
            break
        labels = new_labels
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)[:, None]
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return labels, c


# ----------------------------------------------------------------------------- attention
def attention_maps(tokens: torch.Tensor, queries: Sequence[int], scale: float | None = None) -> torch.Tensor:
    """Mean-shift attention of query tokens: ``softmax_j(scale * t_q . t_j)``.

    ``tokens`` ``[N, C]``; ``queries``: token indices; ``scale`` defaults to ``0.1 / sqrt(C)``
    (the objective's intra-view scale). Returns ``[Q, N]``, each row summing to 1.
    """
    n, c = tokens.shape
    q = torch.as_tensor(list(queries), dtype=torch.long)
    if q.numel() and (q.min() < 0 or q.max() >= n):
        raise FigureError(f"query token index out of range [0, {n})")
    beta = 0.1 / c ** 0.5 if scale is None else float(scale)
    return torch.softmax(beta * tokens[q].float() @ tokens.float().T, dim=-1)


def parse_patches(specs: Sequence[str], grid: tuple[int, int]) -> list[tuple[int, int]]:
    """``"ROW,COL"`` (patch indices) or ``"Y,X"`` fractions in [0, 1] (written with a dot) ->
    ``(row, col)`` patch coordinates inside ``grid`` = ``(h, w)``."""
    h, w = grid
    out = []
    for spec in specs:
        parts = spec.split(",")
        if len(parts) != 2:
            raise FigureError(f"--patches {spec!r}: expected ROW,COL (patch indices) or Y,X (fractions)")
        try:
            if any("." in p for p in parts):
                y, x = (float(p) for p in parts)
                if not (0 <= y <= 1 and 0 <= x <= 1):
                    raise FigureError(f"--patches {spec!r}: fractions must lie in [0, 1]")
                r, c = min(int(y * h), h - 1), min(int(x * w), w - 1)
            else:
                r, c = (int(p) for p in parts)
        except ValueError:
            raise FigureError(f"--patches {spec!r}: not numbers") from None
        if not (0 <= r < h and 0 <= c < w):
            raise FigureError(f"--patches {spec!r}: outside the {h}x{w} patch grid")
        out.append((r, c))
    return out


def default_patches(grid: tuple[int, int]) -> list[tuple[int, int]]:
    """Four query patches: the centre and three points around it."""
    h, w = grid
    pts = [(h // 2, w // 2), (h // 4, w // 4), (h // 4, (3 * w) // 4), ((3 * h) // 4, w // 2)]
    return list(dict.fromkeys(pts))


# ----------------------------------------------------------------------------- rendering
def _upsample(grid_map: np.ndarray, patch: int) -> np.ndarray:
    return np.repeat(np.repeat(grid_map, patch, axis=0), patch, axis=1)


def _blend(over: np.ndarray, image: np.ndarray, alpha: float) -> np.ndarray:
    return (alpha * over + (1 - alpha) * image).round().clip(0, 255).astype(np.uint8)


def cluster_image(labels: np.ndarray, image: np.ndarray, patch: int, alpha: float = 0.6) -> np.ndarray:
    """``[h, w]`` cluster ids over ``image`` ``[H, W, 3]`` -> ``[H, W, 3]`` uint8 overlay."""
    from matplotlib import colormaps
    colours = (np.asarray(colormaps["tab20"].colors) * 255)[labels % 20]            # [h, w, 3]
    return _blend(_upsample(colours, patch), image, alpha)


def attention_image(attn: np.ndarray, image: np.ndarray, patch: int, query: tuple[int, int],
                    alpha: float = 0.6) -> np.ndarray:
    """``[h, w]`` attention weights over ``image`` -> ``[H, W, 3]`` uint8 heat map (scaled to its
    maximum) with the query patch outlined in white."""
    from matplotlib import colormaps
    a = attn / attn.max() if attn.max() > 0 else attn
    heat = colormaps["inferno"](a)[..., :3] * 255
    out = _blend(_upsample(heat, patch), image, alpha)
    r, c = query
    y0, x0 = r * patch, c * patch
    out[y0, x0:x0 + patch] = out[y0 + patch - 1, x0:x0 + patch] = 255
    out[y0:y0 + patch, x0] = out[y0:y0 + patch, x0 + patch - 1] = 255
    return out


def renumber_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered 0, 1, ... from the largest cluster down (ties: the lower old id
    first), so that colour 1 is always an encoder's largest cluster."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    lookup = np.empty(int(labels.max()) + 1, dtype=np.int64)
    lookup[order] = np.arange(len(order))
    return lookup[labels]


@dataclasses.dataclass
class EncoderMaps:
    """One encoder's maps of one image: cluster ids ``[h, w]`` (renumbered by size) and the
    attention of each query patch ``[Q, h, w]``."""

    label: str
    labels: np.ndarray
    maps: np.ndarray


def encoder_maps(model: torch.nn.Module, image: np.ndarray, label: str, k: int,
                 patches: Sequence[tuple[int, int]], scale: float | None = None, seed: int = 0) -> EncoderMaps:
    """k-means clusters and mean-shift attention maps of ``image`` ``[H, W, 3]`` for ``model``."""
    feats = patch_features(model, image)                       # [h, w, C]
    h, w, c = feats.shape
    tokens = feats.reshape(h * w, c)
    labels, _ = kmeans(tokens, min(k, h * w), seed=seed)
    maps = attention_maps(tokens, [r * w + col for r, col in patches], scale).reshape(-1, h, w).numpy()
    return EncoderMaps(label, renumber_by_size(labels.reshape(h, w).numpy()), maps)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


QUERY_COLOUR = "#ff2020"
#: inches per panel of :func:`summary_figure` (at :data:`DPI`, a 160-pixel wide image is drawn
#: about 1.7 screen pixels per image pixel: a 16-pixel patch is a 28-pixel block)
PANEL_INCHES = 2.5
DPI = 110


def _outline(ax, r: int, c: int, patch: int, colour: str = QUERY_COLOUR, width: float = 2.0) -> None:
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((c * patch - 0.5, r * patch - 0.5), patch, patch, fill=False, edgecolor=colour,
                           linewidth=width))


def summary_figure(image: np.ndarray, patch: int, patches: Sequence[tuple[int, int]],
                   encoders: Sequence[EncoderMaps], title: str, k: int):
    """The titled figure of one image: a row per encoder with the image (query patches marked
    and numbered), its k-means cluster map and the attention map of each query patch; patches
    drawn as blocks (nearest neighbour) and a legend of the cluster colours. The attention
    weights of the objective's small ``beta`` stay within a few times the uniform weight ``1/N``,
    so they are drawn as ``log2(N * weight)`` (0: uniform, +1: twice uniform) on one diverging
    colour scale shared by every attention map (colour bar). Returns the matplotlib ``Figure``."""
    plt = _pyplot()
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    H, W = image.shape[:2]
    h, w = H // patch, W // patch
    n_rows, n_cols = len(encoders), 2 + len(patches)
    aspect = H / W
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained", dpi=DPI,
                             figsize=(PANEL_INCHES * n_cols + 1.2, PANEL_INCHES * aspect * n_rows + 1.5))
    fig.suptitle(title, fontsize=12)
    palette = colormaps["tab10" if k <= 10 else "tab20"].colors
    cluster_cmap = ListedColormap(palette[:max(k, 1)])
    ratio = [np.log2(e.maps * (h * w)) for e in encoders]             # [Q, h, w] each
    vmax = max(float(np.abs(r).max()) for r in ratio) if len(patches) else 1.0
    extent = (-0.5, W - 0.5, H - 0.5, -0.5)           # map blocks exactly over the image's pixels
    heat = None
    for row, enc in enumerate(encoders):
        ax = axes[row, 0]
        ax.imshow(image, interpolation="nearest")
        for q, (r, c) in enumerate(patches, 1):
            _outline(ax, r, c, patch)
            ax.text(c * patch + patch / 2, r * patch - 1, str(q), color="white", fontsize=8, ha="center",
                    va="bottom", fontweight="bold", bbox=dict(facecolor=QUERY_COLOUR, edgecolor="none", pad=1))
        ax.set_title(f"image ({W}x{H} px)\nquery patches 1-{len(patches)}", fontsize=9)
        ax.set_ylabel(enc.label, fontsize=11, fontweight="bold")
        ax = axes[row, 1]
        ax.imshow(enc.labels, cmap=cluster_cmap, vmin=-0.5, vmax=max(k, 1) - 0.5, interpolation="nearest",
                  extent=extent)
        ax.set_title(f"k-means clusters (k={k})\nof the {h}x{w} patch features", fontsize=9)
        for q, ((r, c), m) in enumerate(zip(patches, ratio[row]), 1):
            ax = axes[row, 1 + q]
            heat = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest", extent=extent)
            _outline(ax, r, c, patch, colour="black")
            ax.set_title(f"attention of query {q}\n(patch row {r}, col {c})", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if heat is not None:
        cbar = fig.colorbar(heat, ax=axes[:, 2:], shrink=0.9, pad=0.01)
        cbar.set_label(f"log2(attention weight x {h * w} patches): 0 = uniform, +1 = twice uniform",
                       fontsize=8)
    handles = [Patch(facecolor=palette[i], edgecolor="black", linewidth=0.5, label=str(i + 1)) for i in range(k)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(k, 10), fontsize=8,
               title="cluster colours (numbered per encoder, largest cluster first)", title_fontsize=8)
    return fig


@dataclasses.dataclass
class Figures:
    """What :func:`render_figures` wrote for one image (``labels`` / ``maps``: the first encoder's)."""

    clusters: Path
    attention: list
    summary: Path
    labels: np.ndarray        # [h, w] cluster ids
    maps: np.ndarray          # [Q, h, w] attention weights
    encoders: list            # EncoderMaps of every encoder, in row order


def render_figures(model, image: np.ndarray, out_dir: str | Path, stem: str, k: int = 8,
                   patches: Sequence[tuple[int, int]] | None = None, scale: float | None = None,
                   seed: int = 0, labels: Sequence[str] | None = None, title: str | None = None) -> Figures:
    """Maps of ``image`` for one encoder (``model``) or several (a list of models, drawn as rows
    labelled ``labels``). Writes under ``out_dir``, for each encoder (file names prefixed
    ``<label>_`` when there are several): ``<stem>_clusters.png`` and ``<stem>_attn_<r>_<c>.png``
    per query patch (overlays at the network input's size, ``H x W`` pixels); and
    ``<stem>_summary.png``, the titled figure of :func:`summary_figure`."""
    from pretrain.encoder import patch_size

    plt = _pyplot()
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    labels = list(labels) if labels else ([stem] if len(models) == 1 else [f"encoder {i + 1}" for i in range(len(models))])
    if len(labels) != len(models):
        raise FigureError(f"{len(labels)} labels for {len(models)} encoders")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = patch_size(models[0])
    if any(patch_size(m) != p for m in models):
        raise FigureError("the encoders compared in one figure must share a patch size")
    h, w = image.shape[0] // p, image.shape[1] // p
    patches = list(patches) if patches else default_patches((h, w))
    encoders = [encoder_maps(m, image, lab, k, patches, scale, seed) for m, lab in zip(models, labels)]
    first = None
    for enc in encoders:
        prefix = "" if len(encoders) == 1 else _slug(enc.label) + "_"
        clusters = out_dir / f"{prefix}{stem}_clusters.png"
        plt.imsave(clusters, cluster_image(enc.labels, image, p))
        attn = []
        for (r, col), m in zip(patches, enc.maps):
            path = out_dir / f"{prefix}{stem}_attn_{r}_{col}.png"
            plt.imsave(path, attention_image(m, image, p, (r, col)))
            attn.append(path)
        first = first or (clusters, attn)
    n_k = min(k, h * w)
    fig = summary_figure(image, p, patches, encoders, title or f"{stem}: what each encoder's patch features group "
                         f"together (k-means) and where each query patch attends (mean shift)", n_k)
    summary = save_figure(fig, out_dir / f"{stem}_summary.png")
    return Figures(first[0], first[1], summary, encoders[0].labels, encoders[0].maps, encoders)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_") or "encoder"


# ----------------------------------------------------------------------------- training and results charts
LOSS_PARTS = (("loss", "total loss L = upsilon L_ms + eta L_km + gamma L_vmr"),
              ("ms", "mean-shift term L_ms (unweighted)"),
              ("kmeans", "k-means term L_km (unweighted)"),
              ("vmr", "volume-maximisation term L_vmr (unweighted)"))


def read_log(path: str | Path) -> list[dict]:
    """The records of a pretraining ``log.jsonl`` (one JSON object per line)."""
    import json
    path = Path(path)
    records = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise FigureError(f"{path}: not found") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise FigureError(f"{path}: line {i} is not valid JSON ({err.msg})") from None
        missing = [key for key, _ in LOSS_PARTS if key not in rec] + ([] if "iteration" in rec else ["iteration"])
        if missing:
            raise FigureError(f"{path}: line {i} lacks {missing[0]!r}")
        records.append(rec)
    if not records:
        raise FigureError(f"{path}: no records")
    return records


def pretraining_figure(records: Sequence[dict], title: str):
    """Loss and its three parts against the iteration (one panel each: their scales differ by
    orders of magnitude). Returns the ``Figure``."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, layout="constrained", dpi=DPI, figsize=(10, 6.5))
    fig.suptitle(title, fontsize=12)
    its = [r["iteration"] for r in records]
    for ax, (key, label) in zip(axes.flat, LOSS_PARTS):
        ax.plot(its, [r[key] for r in records], marker="o", markersize=3, linewidth=1.5)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("iteration")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    return fig


VERDICT_COLOURS = {"gain": "#1a9850", "loss": "#d73027", "no difference shown": "#7f7f7f",
                   "spread not measured": "#bdbdbd"}


def results_figure(rows: Sequence[tuple[str, object]], title: str, a_label: str = "FLSL-pretrained",
                   b_label: str = "random init"):
    """The results table as a chart. ``rows``: ``(name, claims.Comparison)``, top to bottom.
    Left: each arm's mean, with its standard deviation over seeds as an error bar where the
    protocol repeats runs (none for a protocol without training); right: the difference with
    its 95% interval, coloured by the verdict. Returns the ``Figure``."""
    plt = _pyplot()
    from matplotlib.patches import Patch
    n = len(rows)
    fig, (left, right) = plt.subplots(1, 2, layout="constrained", dpi=DPI, figsize=(12, 1.6 + 0.42 * n),
                                      gridspec_kw=dict(width_ratios=(3, 2)))
    fig.suptitle(title, fontsize=12)
    ys = np.arange(n)[::-1]
    bar = 0.38
    for offset, arm, name, colour in ((bar / 2, "a", a_label, "#4575b4"), (-bar / 2, "b", b_label, "#fdae61")):
        ests = [getattr(c, arm) for _, c in rows]
        left.barh(ys + offset, [e.mean for e in ests], height=bar, color=colour, label=name)
        runs = [i for i, (_, c) in enumerate(rows) if c.arm_spread and getattr(c, arm).sd is not None]
        if runs:
            left.errorbar([ests[i].mean for i in runs], ys[runs] + offset, xerr=[ests[i].sd for i in runs],
                          fmt="none", ecolor="black", capsize=3, linewidth=1)
    left.set_yticks(ys, [name for name, _ in rows], fontsize=9)
    left.set_ylim(-0.7, n - 0.3)
    left.set_xlabel("percent: mean; error bar 1 standard deviation over seeds (protocols that train)")
    left.set_title("each arm", fontsize=10)
    left.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=2, fontsize=8, frameon=False)
    left.grid(axis="x", alpha=0.3)
    for y, (_, c) in zip(ys, rows):
        right.errorbar(c.difference, y, xerr=c.half_width or 0.0, fmt="o", color=VERDICT_COLOURS[c.verdict],
                       capsize=4, linewidth=2)
    right.axvline(0.0, color="black", linewidth=1)
    right.set_yticks(ys, ["" for _ in rows])
    right.set_ylim(left.get_ylim())
    right.set_xlabel("percent points, error bar 95% interval")
    right.set_title(f"difference ({a_label} minus {b_label})", fontsize=10)
    right.grid(axis="x", alpha=0.3)
    right.legend(handles=[Patch(color=v, label=k) for k, v in VERDICT_COLOURS.items()
                          if any(c.verdict == k for _, c in rows)],
                 loc="lower left", bbox_to_anchor=(0.0, 1.06), ncol=4, fontsize=8, frameon=False)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as PNG and close it."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["FigureError", "kmeans", "attention_maps",
           "parse_patches", "default_patches", "cluster_image", "attention_image", "renumber_by_size",
           "EncoderMaps", "encoder_maps", "summary_figure", "Figures", "render_figures", "read_log",
           "pretraining_figure", "results_figure", "save_figure"]
