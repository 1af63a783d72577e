"""Label propagation between video frames (DINO's protocol, computed on local windows).

Frame ``t`` takes its labels from a context of the first frame and the ``n_last_frames`` most
recent frames (their soft labels). Each target patch looks at the patches of every context frame
within a square window of Chebyshev radius ``neighborhood`` patches, with affinity
``exp(cos / temperature)``; the ``topk`` largest affinities over all context frames together
are kept (every value equal to the k-th is kept too, as ``aff < kth -> 0`` does), renormalised
to sum 1, and average the context labels.

The window of every patch is gathered from small matrix products instead of the dense
``N x N`` affinity of each context frame with a dense mask: the grid is cut along its longer
axis into tiles of a few columns; a tile's queries need only the keys of the columns within the
radius, a contiguous run of the padded A-major feature map, so one batched matmul over an
overlapping (strided, copy-free) view covers every tile of a context frame. The index tables
are built once per grid size and radius (:func:`neighbourhood`). The top-k runs once over all context
frames together on the cosines; renormalisation and label averaging then work on the few kept
entries only (sparse ``index_add``).
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np
import torch
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class PropagationParams:
    """Protocol parameters (DINO's defaults). ``neighborhood`` is a Chebyshev radius in patches,
    0 meaning no restriction; ``n_last_frames`` 0 uses the first frame only."""

    n_last_frames: int = 7
    neighborhood: int = 12
    topk: int = 5
    temperature: float = 0.1

    def __post_init__(self):
        if self.n_last_frames < 0 or self.neighborhood < 0:
            raise ValueError("n_last_frames and neighborhood must be >= 0")
        if self.topk < 1:
            raise ValueError("topk must be >= 1")
        if not self.temperature > 0:
            raise ValueError("temperature must be > 0")


class Neighbourhood:
    """Index tables of the square windows of an ``h x w`` patch grid, in tiled layout.

    Tiles run along the longer axis ``A`` (length ``LA``), ``tw`` positions each, covering the
    whole other axis ``B`` (``LB``): ``Qt = tw * LB`` queries per tile. A context frame is stored
    A-major and zero-padded (:meth:`keys`), so the keys of a tile, the positions within ``rA``
    (the radius along A) of it plus ``rB`` rows on each side, are a contiguous run of
    ``K = (tw + 2 rA) * LB + 2 rB`` rows starting ``tw * LB`` rows after the previous tile's: one
    strided view ``[T, K, C]`` and one batched matmul cover all tiles, and the windows are a
    strided view of its output (:meth:`windows`).

    * ``valid``  ``[T, Qt, W]``: the window entry is inside the grid
    * ``key_ids`` ``[T * Qt, W]``: global patch index ``i * w + j`` of each entry (clipped)
    * ``query_ids`` ``[T * Qt]``: global patch index of each query, -1 for tile padding

    Window entries are ordered by (row offset, column offset), i.e. by global key index.
    """

    def __init__(self, h: int, w: int, radius: int, tile_width: int | None = None,
                 device: str | torch.device = "cpu"):
        self.h, self.w, self.n = h, w, h * w
        r = radius if radius > 0 else max(h, w)
        ri, rj = min(r, h - 1), min(r, w - 1)
        self.cols = w >= h  # tile along the longer axis
        la, lb = (w, h) if self.cols else (h, w)
        ra, rb = (rj, ri) if self.cols else (ri, rj)
        tw = tile_width or max(1, round(128 / lb))  # ~128 queries per matmul
        tw = max(1, min(la, tw))
        n_tiles = -(-la // tw)
        self.la, self.lb, self.ra, self.rb, self.tw, self.n_tiles = la, lb, ra, rb, tw, n_tiles
        self.qt, self.k = tw * lb, (tw + 2 * ra) * lb + 2 * rb

        di, dj = np.meshgrid(np.arange(-ri, ri + 1), np.arange(-rj, rj + 1), indexing="ij")
        di, dj = di.reshape(-1), dj.reshape(-1)                  # [W], (di, dj) lexicographic
        da, db = (dj, di) if self.cols else (di, dj)
        al = np.repeat(np.arange(tw), lb)                         # [Qt] position in tile along A
        b = np.tile(np.arange(lb), tw)                            # [Qt] position along B
        a = np.arange(n_tiles)[:, None] * tw + al[None]           # [T, Qt]
        ak = a[..., None] + da                                    # [T, Qt, W]
        bk = b[:, None] + db                                      # [Qt, W]
        valid = (a[..., None] < la) & (ak >= 0) & (ak < la) & ((bk >= 0) & (bk < lb))[None]
        ak, bkc = np.clip(ak, 0, la - 1), np.clip(bk, 0, lb - 1)[None]
        ik, jk = (bkc, ak) if self.cols else (ak, bkc)
        ai = np.broadcast_to(a, (n_tiles, self.qt))
        bi = np.broadcast_to(b[None], (n_tiles, self.qt))
        iq, jq = (bi, ai) if self.cols else (ai, bi)
        qid = np.where(ai < la, iq * w + jq, -1)

        dev = torch.device(device)
        self.window = di.size
        self.valid = torch.from_numpy(np.ascontiguousarray(valid)).to(dev)
        self.key_ids = torch.from_numpy((ik * w + jk).reshape(-1, di.size)).to(dev)
        self.query_ids = torch.from_numpy(qid.reshape(-1)).to(dev)
        self._buffers = {}

    def buffer(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """A reused work buffer (allocating ~10-100 MB per frame costs page faults)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = like.new_empty(shape)
            self._buffers[name] = buf
        return buf

    def _grid(self, feats: torch.Tensor) -> torch.Tensor:
        g = feats.reshape(self.h, self.w, -1)
        return g.transpose(0, 1) if self.cols else g              # [LA, LB, C]

    def queries(self, feats: torch.Tensor) -> torch.Tensor:
        """Target features ``[N, C]`` -> ``[T, Qt, C]`` (tile padding zero)."""
        c = feats.shape[-1]
        buf = feats.new_zeros(self.n_tiles * self.tw, self.lb, c)
        buf[:self.la] = self._grid(feats)
        return buf.reshape(self.n_tiles, self.qt, c)

    def keys(self, feats: torch.Tensor) -> torch.Tensor:
        """Context features ``[N, C]`` -> overlapping view ``[T, K, C]`` of the padded map."""
        c, lb = feats.shape[-1], self.lb
        start = self.rb + self.ra * lb
        buf = feats.new_zeros((self.n_tiles * self.tw + 2 * self.ra) * lb + 2 * self.rb, c)
        buf[start:start + self.n] = self._grid(feats).reshape(-1, c)
        return buf.as_strided((self.n_tiles, self.k, c), (self.tw * lb * c, c, 1))

    def windows(self, cosines: torch.Tensor) -> torch.Tensor:
        """The window entries of contiguous tile cosines ``[T, Qt, K]`` as a strided view
        ``[T, Qt, 2 ri + 1, 2 rj + 1]`` (row offset, column offset), no copy.

        Query ``q`` of a tile (position ``q = al * LB + b``) meets key offset ``(da, db)`` at
        column ``(al + rA + da) * LB + b + db + rB``, i.e. at flat position
        ``q (K + 1) + (rA + da) LB + (rB + db)``: one stride per axis.
        """
        t, qt, k = cosines.shape
        lb, na, nb_ = self.lb, 2 * self.ra + 1, 2 * self.rb + 1
        if self.cols:   # (row offset, column offset) = (db, da)
            size, stride = (t, qt, nb_, na), (qt * k, k + 1, 1, lb)
        else:           # (da, db)
            size, stride = (t, qt, na, nb_), (qt * k, k + 1, lb, 1)
        return cosines.as_strided(size, stride, cosines.storage_offset())


@functools.lru_cache(maxsize=8)
def neighbourhood(h: int, w: int, radius: int, device: str = "cpu") -> Neighbourhood:
    """The :class:`Neighbourhood` of a grid, built once per (grid, radius, device)."""
    return Neighbourhood(h, w, radius, device=device)


def sparse_affinity(nb: Neighbourhood, queries: torch.Tensor, context_keys: list[torch.Tensor],
                    topk: int, temperature: float):
    """Kept, renormalised affinities of one target frame.

    ``queries`` ``[T, Qt, C]`` and ``context_keys`` (``M`` views from :meth:`Neighbourhood.keys`)
    hold L2-normalised features. Returns ``(target, source, weight)``: 1-D tensors over the
    kept entries, ``target`` a patch index of the target frame, ``source = m * N + patch`` into
    the stacked context labels, ``weight`` summing to 1 per target patch.

    ``exp(s / temperature)`` is monotone, so the top ``k + 1`` over all context frames is taken
    on the cosines and only those values are exponentiated; a patch whose ``(k+1)``-th value
    still reaches the k-th (a tie) is rescanned in full, so the kept set is exactly
    ``{aff >= k-th largest aff}``.
    """
    m_ctx, n_tiles, qt, win = len(context_keys), nb.n_tiles, nb.qt, nb.window
    nq, total = n_tiles * qt, m_ctx * win
    sims = nb.buffer("windows", (n_tiles, qt, m_ctx, win), queries)
    full = nb.buffer("cosines", (n_tiles, qt, nb.k), queries)
    windows = nb.windows(full)
    valid = nb.valid.view(windows.shape)
    neg_inf = full.new_full((), float("-inf"))
    for m, keys in enumerate(context_keys):  # few large calls: threads stay busy
        torch.bmm(queries, keys.transpose(1, 2), out=full)        # [T, Qt, K] cosines
        # window entries; outside the grid -inf (exp -> 0)
        torch.where(valid, windows, neg_inf, out=sims[:, :, m].view(windows.shape))
    sims = sims.view(nq, total)

    kc = min(topk, total)
    top_s, top_i = torch.topk(sims, min(topk + 1, total), dim=1)
    top_a = torch.exp(top_s / temperature)
    kth = top_a[:, kc - 1]
    real = nb.query_ids >= 0
    if top_a.shape[1] > kc:  # ties with the k-th beyond the list: rescan those patches
        tie = real & (top_a[:, kc] >= kth)
        plain = real & ~tie
    else:
        tie, plain = None, real
    q_i = plain.nonzero().view(-1).repeat_interleave(kc)
    j_i, v_i = top_i[plain, :kc].reshape(-1), top_a[plain, :kc].reshape(-1)
    if tie is not None and bool(tie.any()):
        oq = tie.nonzero().view(-1)
        rows = torch.exp(sims[oq] / temperature)
        r_i, j2 = (rows >= kth[oq][:, None]).nonzero(as_tuple=True)
        q_i, j_i, v_i = torch.cat([q_i, oq[r_i]]), torch.cat([j_i, j2]), torch.cat([v_i, rows[r_i, j2]])
    m_i, w_i = j_i // win, j_i % win
    denom = torch.zeros(nq, dtype=v_i.dtype, device=v_i.device).index_add_(0, q_i, v_i)
    return nb.query_ids[q_i], m_i * nb.n + nb.key_ids[q_i, w_i], v_i / denom[q_i]


class Propagator:
    """Propagates the first frame's labels through a video, one target frame at a time.

    ``first_features`` ``[N, C]`` (any scale; normalised here) and ``first_labels`` ``[N, L]``
    (one-hot) for an ``h x w`` grid; :meth:`step` takes the next frame's features ``[N, C]`` and
    returns its soft labels ``[N, L]`` (before argmax), which also enter the context queue.
    """

    def __init__(self, params: PropagationParams, grid: tuple[int, int],
                 first_features: torch.Tensor, first_labels: torch.Tensor):
        self.params = params
        dev = first_features.device
        self.nb = neighbourhood(int(grid[0]), int(grid[1]), int(params.neighborhood), str(dev))
        if first_features.shape[0] != self.nb.n or first_labels.shape[0] != self.nb.n:
            raise ValueError(f"features {tuple(first_features.shape)} / labels "
                             f"{tuple(first_labels.shape)} do not match the {grid} grid")
        f0 = F.normalize(first_features.float(), dim=1, p=2)
        self.first = (self.nb.keys(f0), first_labels.float().to(dev))
        self.queue = collections.deque(maxlen=max(params.n_last_frames, 1))

    def step(self, features: torch.Tensor) -> torch.Tensor:
        f = F.normalize(features.float(), dim=1, p=2)
        context = [self.first] + (list(self.queue) if self.params.n_last_frames else [])
        tgt, src, wts = sparse_affinity(self.nb, self.nb.queries(f), [c[0] for c in context],
                                        self.params.topk, self.params.temperature)
        labels = torch.stack([c[1] for c in context]).reshape(-1, self.first[1].shape[1])
        out = torch.zeros_like(self.first[1]).index_add_(0, tgt, labels[src] * wts[:, None])
        if self.params.n_last_frames:
            self.queue.append((self.nb.keys(f), out))
        return out


def soft_to_masks(soft: torch.Tensor, patch: int, size: tuple[int, int]) -> np.ndarray:
    """Soft label maps ``[B, L, h, w]`` -> label maps ``[B, H0, W0]`` uint8 of the original
    frame size ``(H0, W0)``.

    Bilinear upsampling by the patch size, per-channel min-max normalisation of channels whose
    max is > 0, argmax over channels, nearest-neighbour resize (Pillow) to the frame size.
    """
    from PIL import Image
    up = F.interpolate(soft.contiguous(), scale_factor=patch, mode="bilinear", align_corners=False,
                       recompute_scale_factor=False).contiguous()
    flat = up.view(up.shape[0] * up.shape[1], -1)
    mn, mx = flat.amin(dim=1), flat.amax(dim=1)
    pos = mx > 0  # (x - min) / (max - min) where max > 0; x - 0 and x / 1 are exact elsewhere
    flat.sub_(torch.where(pos, mn, 0.0)[:, None]).div_(torch.where(pos, mx - mn, 1.0)[:, None])
    seg = torch.max(up, dim=1).indices.to(torch.uint8).cpu().numpy()
    h0, w0 = size
    return np.stack([np.asarray(Image.fromarray(s).resize((w0, h0), Image.NEAREST)) for s in seg])


def one_hot_labels(small: np.ndarray) -> torch.Tensor:
    """Label map at feature resolution ``[h, w]`` -> one-hot ``[h * w, max + 1]`` float32."""
    t = torch.from_numpy(np.array(small, dtype=np.int64)).reshape(-1)
    return F.one_hot(t, int(t.max()) + 1).float()


__all__ = ["PropagationParams", "Neighbourhood", "neighbourhood", "sparse_affinity", "Propagator",
           "soft_to_masks", "one_hot_labels"]
