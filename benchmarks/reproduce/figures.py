"""Figures of what an encoder learned: k-means cluster maps of its patch features and mean-shift
attention maps of chosen patches (method.md, section 3).

* :func:`kmeans` clusters ``[N, C]`` features (vectorised Lloyd iterations in torch, k-means++
  seeding, cosine geometry by default: features are L2-normalised first).
* :func:`attention_maps` is the intra-view mean-shift weighting of the objective:
  ``a_q = softmax_j(beta * z_q . z_j)`` over all tokens ``z_j`` of the image, for query patches
  ``q``; ``beta`` defaults to the objective's ``0.1 / sqrt(C)``.
* :func:`render_figures` writes PNGs at the network input's resolution (pixels), so their size
  is known: ``H x W`` for the cluster map and each attention map, ``H x (W * (2 + Q))`` for the
  side-by-side summary (image, clusters, Q attention maps).
"""
from __future__ import annotations

from core.errors import FLSLError

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.constants import IMAGENET_MEAN, IMAGENET_STD



class FigureError(FLSLError, ValueError):
    """Bad input to the figure tools (image, patch coordinates, k); the message names it."""


# ----------------------------------------------------------------------------- input
def load_image(path: str | Path, short_side: int, patch: int) -> np.ndarray:
    """RGB image ``[H, W, 3]`` uint8 resized (bicubic) so its short side is ``short_side`` pixels,
    then both sides floored to a multiple of ``patch``."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError) as err:
        raise FigureError(f"{path}: cannot read image ({err})") from None
    w, h = im.size
    s = short_side / min(w, h)
    nh, nw = max(patch, round(h * s) // patch * patch), max(patch, round(w * s) // patch * patch)
    return np.asarray(im.resize((nw, nh), Image.BICUBIC), dtype=np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[1, 3, H, W]`` float, ImageNet-normalised."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    return x[None]


@torch.no_grad()
def patch_features(model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    """Post-LayerNorm tokens of ``image`` as ``[h, w, C]`` (h = H / patch, w = W / patch)."""
    from pretrain.encoder import encode, patch_size
    p = patch_size(model)
    h, w = image.shape[0] // p, image.shape[1] // p
    tokens = encode(model.eval(), to_tensor(image))      # [1, h*w, C]
    return tokens[0].reshape(h, w, -1).float()


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


def cluster_image(labels: np.ndarray, image: np.ndarray, patch: int, alpha: float = 0.6) -> np.ndarray:
    """``[h, w]`` cluster ids over ``image`` ``[H, W, 3]`` -> ``[H, W, 3]`` uint8 overlay."""
    from matplotlib import colormaps
    colours = (np.asarray(colormaps["tab20"].colors) * 255)[labels % 20]            # [h, w, 3]
    over = _upsample(colours, patch)
    return (alpha * over + (1 - alpha) * image).round().clip(0, 255).astype(np.uint8)


def attention_image(attn: np.ndarray, image: np.ndarray, patch: int, query: tuple[int, int],
                    alpha: float = 0.6) -> np.ndarray:
    """``[h, w]`` attention weights over ``image`` -> ``[H, W, 3]`` uint8 heat map (scaled to its
    maximum) with the query patch outlined in white."""
    from matplotlib import colormaps
    a = attn / attn.max() if attn.max() > 0 else attn
    heat = colormaps["inferno"](a)[..., :3] * 255
    out = (alpha * _upsample(heat, patch) + (1 - alpha) * image).round().clip(0, 255).astype(np.uint8)
    r, c = query
    y0, x0 = r * patch, c * patch
    out[y0, x0:x0 + patch] = out[y0 + patch - 1, x0:x0 + patch] = 255
    out[y0:y0 + patch, x0] = out[y0:y0 + patch, x0 + patch - 1] = 255
    return out


@dataclasses.dataclass
class Figures:
    """What :func:`render_figures` wrote for one image."""

    clusters: Path
    attention: list
    summary: Path
    labels: np.ndarray        # [h, w] cluster ids
    maps: np.ndarray          # [Q, h, w] attention weights


def render_figures(model: torch.nn.Module, image: np.ndarray, out_dir: str | Path, stem: str, k: int = 8,
                   patches: Sequence[tuple[int, int]] | None = None, scale: float | None = None,
                   seed: int = 0) -> Figures:
    """Write ``<stem>_clusters.png``, ``<stem>_attn_<r>_<c>.png`` per query patch and
    ``<stem>_summary.png`` under ``out_dir`` (sizes in the module docstring)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pretrain.encoder import patch_size

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = patch_size(model)
    feats = patch_features(model, image)                       # [h, w, C]
    h, w, c = feats.shape
    tokens = feats.reshape(h * w, c)
    labels, _ = kmeans(tokens, min(k, h * w), seed=seed)
    labels = labels.reshape(h, w).numpy()
    patches = list(patches) if patches else default_patches((h, w))
    maps = attention_maps(tokens, [r * w + col for r, col in patches], scale).reshape(-1, h, w).numpy()
    panels = [image, cluster_image(labels, image, p)]
    clusters = out_dir / f"{stem}_clusters.png"
    plt.imsave(clusters, panels[1])
    attn_paths = []
    for (r, col), m in zip(patches, maps):
        img = attention_image(m, image, p, (r, col))
        path = out_dir / f"{stem}_attn_{r}_{col}.png"
        plt.imsave(path, img)
        attn_paths.append(path)
        panels.append(img)
    summary = out_dir / f"{stem}_summary.png"
    plt.imsave(summary, np.concatenate(panels, axis=1))
    return Figures(clusters, attn_paths, summary, labels, maps)


__all__ = ["FigureError", "load_image", "to_tensor", "patch_features", "kmeans", "attention_maps",
           "parse_patches", "default_patches", "cluster_image", "attention_image", "Figures", "render_figures"]
