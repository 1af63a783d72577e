"""Binary maps packed 64 pixels to a word, for the boundary measure of DAVIS.

Many small binary maps of one image width (object masks cropped to the rows they occupy) are
stacked in one flat ``uint64`` array, so that each step of the boundary and dilation
computations is a handful of numpy operations over all of them at once:

* a row holds ``nw`` words; pixel ``x`` of a row is bit ``x % 64`` of word ``x // 64``; the
  ``nw * 64 - width`` bits after the last pixel are guard bits (kept >= 2 * radius + 1);
* blocks (maps) follow each other separated by ``guard`` all-zero rows (>= radius), and the
  array starts and ends with guard rows.

With those guards a horizontal shift of the whole flat array by at most ``radius`` pixels moves
every row as if it were alone on an infinite zero plane, and a vertical shift by at most
``radius`` rows never mixes two blocks, which is all a disk dilation of that radius needs.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

WORD = 64
_ONE = np.uint64(1)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S56 = np.uint64(56)


@dataclasses.dataclass
class Stack:
    """Blocks of rows packed into ``words`` (flat ``uint64``, ``nw`` words per row).

    Block ``i`` starts at row ``starts[i]`` and has ``heights[i]`` rows; ``bottom[i]`` tells
    whether its last row is the image's last row; ``last_col[i]`` is the bit (pixel) of the
    image's last column within the block's rows, -1 when the block does not reach it (the
    boundary rule differs on the last row and column).
    """

    words: np.ndarray
    nw: int
    starts: np.ndarray
    heights: np.ndarray
    bottom: np.ndarray
    last_col: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.words.size // self.nw

    def like(self, words: np.ndarray) -> "Stack":
        return dataclasses.replace(self, words=words)

    def row_block(self) -> np.ndarray:
        """Block index of every row, -1 for guard rows."""
        out = np.full(self.n_rows, -1, dtype=np.int64)
        block = np.repeat(np.arange(len(self.starts)), self.heights)
        first = np.repeat(np.cumsum(self.heights) - self.heights, self.heights)
        out[self.starts[block] + np.arange(block.size) - first] = block
        return out


def words_per_row(width: int, radius: int) -> int:
    """Words per packed row: ``width`` pixels plus at least ``2 * radius + 1`` guard bits."""
    return -(-(width + 2 * radius + 1) // WORD)


def layout(heights: np.ndarray, guard: int) -> np.ndarray:
    """First row of each block when blocks of ``heights`` rows follow ``guard`` zero rows each."""
    heights = np.asarray(heights, dtype=np.int64)
    return guard + np.concatenate([[0], np.cumsum(heights + guard)[:-1]]).astype(np.int64)


def pack_bytes(blocks: list[np.ndarray], bottom, last_col, radius: int) -> Stack:
    """Stack blocks given as bit-packed rows ``[h_i, nbytes_i]`` uint8 (``np.packbits(...,
    bitorder="little")``: pixel ``x`` is bit ``x % 8`` of byte ``x // 8``) into a :class:`Stack`.
    Every block must be zero outside its bytes (the caller crops around the content)."""
    guard = max(int(radius), 1)
    widest = max((b.shape[1] for b in blocks), default=1)
    nw = words_per_row(8 * widest, radius)
    heights = np.array([b.shape[0] for b in blocks], dtype=np.int64)
    starts = layout(heights, guard)
    n_rows = int(starts[-1] + heights[-1] + guard) if len(blocks) else guard
    buf = np.zeros((n_rows, nw * 8), dtype=np.uint8)
    for st, b in zip(starts, blocks):
        buf[st:st + b.shape[0], :b.shape[1]] = b
    return Stack(buf.view("<u8").reshape(-1), nw, starts, heights, np.asarray(bottom, dtype=bool),
                 np.asarray(last_col, dtype=np.int64))


def pack_blocks(blocks: list[np.ndarray], bottom, width: int, radius: int) -> Stack:
    """Stack boolean maps ``[h_i, width]`` (whole image rows) into a :class:`Stack`."""
    packed = [np.packbits(b, axis=1, bitorder="little") for b in blocks]
    return pack_bytes(packed, bottom, [width - 1] * len(blocks), radius)


def shift(a: np.ndarray, n: int) -> np.ndarray:
    """Flat bit shift: ``out[p] = a[p - n]`` (pixels move ``n`` to the right; left if n < 0)."""
    out = np.zeros_like(a)
    if n == 0:
        out[:] = a
        return out
    q, s = divmod(abs(n), WORD)
    size = a.size
    if q >= size:
        return out
    s64, r64 = np.uint64(s), np.uint64(WORD - s)
    if n > 0:
        if s == 0:
            out[q:] = a[:size - q]
        else:
            np.left_shift(a[:size - q], s64, out=out[q:])
            out[q + 1:] |= a[:size - q - 1] >> r64
    else:
        if s == 0:
            out[:size - q] = a[q:]
        else:
            np.right_shift(a[q:], s64, out=out[:size - q])
            out[:size - q - 1] |= a[q + 1:] << r64
    return out


def _steps(start: int, stop: int) -> list[int]:
    """Offsets s of three-point sets {-s, 0, s} whose Minkowski sum grows the interval
    [-start, start] to [-stop, stop] without gaps (each s <= 2 * current + 1)."""
    out, c = [], start
    while c < stop:
        s = min(2 * c + 1, stop - c)
        out.append(s)
        c += s
    return out


def _hgrow(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    for s in _steps(start, stop):
        a = a | shift(a, s) | shift(a, -s)
    return a


def _vgrow(a: np.ndarray, nw: int, amount: int) -> np.ndarray:
    for s in _steps(0, amount):
        k = s * nw
        b = a.copy()
        b[k:] |= a[:-k]
        b[:-k] |= a[k:]
        a = b
    return a


def disk_staircase(radius: int) -> list[tuple[int, int]]:
    """The disk ``dx^2 + dy^2 <= radius^2`` as a union of centred rectangles.

    Returns ``[(h, v), ...]`` (half-height, half-width) with ``v`` decreasing and ``h``
    increasing: row ``dy`` of the disk has half-width ``isqrt(radius^2 - dy^2)``.
    """
    widths = [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]
    out = []
    for v in sorted(set(widths), reverse=True):
        out.append((max(dy for dy, w in enumerate(widths) if w >= v), v))
    return out


def dilate_disk(stack: Stack, radius: int) -> np.ndarray:
    """Dilation of every block by the disk of ``radius`` (skimage ``disk`` footprint).

    Evaluated as ``OR_j vdil(h_j, hdil(v_j, a))`` over :func:`disk_staircase`, nested so each
    rectangle reuses the previous one (Horner form). Bits outside the image are kept, which is
    the dilation of the image on an infinite zero plane, i.e. OpenCV's border rule.
    """
    stairs = disk_staircase(int(radius))
    a, nw = stack.words, stack.nw
    acc, width = None, 0
    for j in range(len(stairs) - 1, -1, -1):  # smallest width first
        h, v = stairs[j]
        a = _hgrow(a, width, v)
        width = v
        acc = a if acc is None else a | _vgrow(acc, nw, stairs[j + 1][0] - h)
    return _vgrow(acc, nw, stairs[0][0])


def boundaries(stack: Stack) -> np.ndarray:
    """Boundary pixels of every block, Berkeley ``seg2bmap`` rule.

    A pixel is on the boundary when it differs from its right, lower or lower-right
    neighbour (outside the image counts as 0); on the image's last column only the lower
    neighbour counts, on its last row only the right one, and the bottom-right pixel never is.
    """
    s, nw = stack.words, stack.nw
    e = shift(s, -1)                     # right neighbour
    dn = np.zeros_like(s)
    dn[:-nw] = s[nw:]                    # lower neighbour
    se = np.zeros_like(s)
    se[:-nw] = e[nw:]                    # lower-right neighbour
    se ^= s
    dn ^= s
    e ^= s
    b = e | dn | se
    rows = b.reshape(-1, nw)
    row_block = stack.row_block()
    real = row_block >= 0
    # the image's last column: only the lower neighbour counts
    has_col = real.copy()
    has_col[real] = stack.last_col[row_block[real]] >= 0
    r_idx = np.flatnonzero(has_col)
    if r_idx.size:
        pos = stack.last_col[row_block[r_idx]]
        w_idx = pos // WORD
        bit = _ONE << (pos % WORD).astype(np.uint64)
        dn_rows = dn.reshape(-1, nw)
        rows[r_idx, w_idx] = (rows[r_idx, w_idx] & ~bit) | (dn_rows[r_idx, w_idx] & bit)
    # the image's last row: only the right neighbour counts; its last pixel never
    last = (stack.starts + stack.heights - 1)[stack.bottom]
    if last.size:
        rows[last] = e.reshape(-1, nw)[last]
        lc = stack.last_col[stack.bottom]
        ok = lc >= 0
        rows[last[ok], lc[ok] // WORD] &= ~(_ONE << (lc[ok] % WORD).astype(np.uint64))
    rows[:, -1] &= ~(_ONE << np.uint64(WORD - 1))  # the wrapped-in bit of the next row
    rows[~real] = 0
    return b


def popcount(a: np.ndarray) -> np.ndarray:
    """Set bits of each ``uint64`` word (SWAR), as ``uint64``."""
    a = a - ((a >> _ONE) & _M1)
    a = (a & _M2) + ((a >> np.uint64(2)) & _M2)
    a = (a + (a >> np.uint64(4))) & _M4
    return (a * _H01) >> _S56


def block_counts(a: np.ndarray, stack: Stack) -> np.ndarray:
    """Set bits per block ``[n_blocks]`` int64 of a flat array laid out like ``stack``
    (rows outside the blocks must be zero). Only non-zero words are counted."""
    nz = np.flatnonzero(a)
    if nz.size == 0:
        return np.zeros(len(stack.starts), dtype=np.int64)
    counts = popcount(a[nz]).astype(np.int64)
    block = np.searchsorted(stack.starts * stack.nw, nz, side="right") - 1
    return np.bincount(block, weights=counts, minlength=len(stack.starts)).astype(np.int64)


__all__ = ["Stack", "pack_blocks", "pack_bytes", "shift", "dilate_disk", "disk_staircase", "boundaries",
           "popcount", "block_counts", "words_per_row"]
