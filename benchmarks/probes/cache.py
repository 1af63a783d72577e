"""Frozen features computed once: fp16 memory-mapped shards keyed by what they depend on.

A store is one folder ``ROOT/<key digest>/`` for one key (checkpoint digest, layers, norm,
resolution and view pipeline, data digest, input statistics): ``key.json``, and per shard ``s``
one ``.npy`` file per array (``feat-00003.npy`` ...) plus ``shard-00003.json`` recording its row
count and the SHA-256 of every file. Items are numbered ``0..N-1``; shard ``s`` holds items
``s*S .. (s+1)*S - 1``. Under ``torchrun`` rank ``r`` computes the shards ``s % world == r``
(so the shard layout does not depend on the number of processes) and rank 0 waits for all of
them; a shard already complete is never recomputed, so an interrupted extraction resumes.
A changed key is a different folder (a recomputation); a shard whose files do not match their
recorded digests is an error naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core import dist
from core.errors import FLSLError
from core.files import make_dirs, write_json_atomic


class CacheError(FLSLError):
    """A damaged or inconsistent feature shard; the message names the file."""


def key_digest(key: dict) -> str:
    """First 20 hex digits of the SHA-256 of ``key`` as canonical JSON."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class FeatureStore:
    """The shards of one key under ``root`` (module docstring).

    ``produce(indices) -> {name: array [len(indices), ...]}`` computes items; every call must give
    the same names, dtypes and per-item shapes. Float arrays are stored as float16."""

    def __init__(self, root: str | os.PathLike, key: dict, n_items: int, shard_size: int = 256):
        self.key = key
        self.folder = Path(root) / key_digest(key)
        self.n_items = int(n_items)
        self.shard_size = max(1, int(shard_size))
        self.n_shards = (self.n_items + self.shard_size - 1) // self.shard_size
        self.computed: list[int] = []          # shards this process computed (empty = all read)
        self._arrays: dict[str, list[np.ndarray]] | None = None

    # ------------------------------------------------------------------ writing
    def _record(self, s: int) -> Path:
        return self.folder / f"shard-{s:05d}.json"

    def _rows(self, s: int) -> range:
        return range(s * self.shard_size, min((s + 1) * self.shard_size, self.n_items))

    def complete(self) -> bool:
        return (self.folder / "key.json").is_file() and all(self._record(s).is_file() for s in range(self.n_shards))

    def build(self, produce: Callable[[Sequence[int]], dict], batch: int = 8, progress: str | None = None) -> "FeatureStore":
        """Compute the missing shards of this rank (all of them without a process group), then
        wait for the other ranks. Returns ``self``."""
        rank, world = dist.rank(), dist.world_size()
        make_dirs(self.folder)
        if rank == 0 and not (self.folder / "key.json").is_file():
            write_json_atomic(self.key, self.folder / "key.json", indent=1)
        todo = [s for s in range(self.n_shards) if s % world == rank and not self._record(s).is_file()]
        bar = None
        if todo and progress:
            from tqdm import tqdm
            bar = tqdm(total=sum(len(self._rows(s)) for s in todo), desc=progress, unit="img",
                       disable=None, position=rank, leave=rank == 0)
        for s in todo:
            self._build_shard(s, produce, batch, bar)
            self.computed.append(s)
        if bar is not None:
            bar.close()
        if dist.is_distributed():
            import torch.distributed
            torch.distributed.barrier()
        if not self.complete():
            missing = [str(self._record(s)) for s in range(self.n_shards) if not self._record(s).is_file()]
            raise CacheError(f"{missing[0]}: missing after extraction ({len(missing)} shard(s) not written)")
        return self

    def _build_shard(self, s: int, produce, batch: int, bar) -> None:
        rows = list(self._rows(s))
        files, record = {}, {"rows": len(rows), "files": {}}
        try:
            for start in range(0, len(rows), batch):
                part = rows[start:start + batch]
                out = produce(part)
                for name, value in out.items():
                    value = np.asarray(value)
                    if value.dtype.kind == "f":
                        value = value.astype(np.float16)
                    if name not in files:
                        tmp = self.folder / f".{name}-{s:05d}.npy.tmp"
                        files[name] = (tmp, np.lib.format.open_memmap(tmp, mode="w+", dtype=value.dtype,
                                                                       shape=(len(rows), *value.shape[1:])))
                    files[name][1][start:start + len(part)] = value
                if bar is not None:
                    bar.update(len(part))
            for name, (tmp, arr) in files.items():
                arr.flush()
                del arr
                final = self.folder / f"{name}-{s:05d}.npy"
                os.replace(tmp, final)
                record["files"][final.name] = _sha256(final)
            write_json_atomic(record, self._record(s))
        finally:
            for tmp, _ in files.values():
                if tmp.exists():
                    tmp.unlink()

    # ------------------------------------------------------------------ reading
    def open(self, verify: bool = True) -> dict[str, list[np.ndarray]]:
        """Memory-map every shard (checking each file against its recorded SHA-256 with
        ``verify``): ``{name: [per-shard array]}``."""
        if self._arrays is not None:
            return self._arrays
        arrays: dict[str, list[np.ndarray]] = {}
        for s in range(self.n_shards):
            rec_path = self._record(s)
            try:
                record = json.loads(rec_path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise CacheError(f"{rec_path}: damaged shard record ({err}); delete {self.folder} to recompute") from None
            for fname, digest in sorted(record["files"].items()):
                path = self.folder / fname
                if not path.is_file():
                    raise CacheError(f"{path}: shard file missing; delete {self.folder} to recompute")
                if verify and _sha256(path) != digest:
                    raise CacheError(f"{path}: damaged shard (SHA-256 differs from {rec_path.name}); "
                                     f"delete {self.folder} to recompute")
                try:
                    arr = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as err:
                    raise CacheError(f"{path}: damaged shard ({err})") from None
                if arr.shape[0] != record["rows"]:
                    raise CacheError(f"{path}: {arr.shape[0]} rows, {record['rows']} recorded")
                arrays.setdefault(fname.rsplit("-", 1)[0], []).append(arr)
        self._arrays = arrays
        return arrays

    def take(self, name: str, indices: Sequence[int]) -> np.ndarray:
        """Rows ``indices`` (item numbers) of array ``name``, stacked, in the stored dtype."""
        shards = self.open()[name]
        idx = np.asarray(indices, dtype=np.int64)
        s, r = idx // self.shard_size, idx % self.shard_size
        out = np.empty((len(idx), *shards[0].shape[1:]), dtype=shards[0].dtype)
        for shard in np.unique(s):
            sel = s == shard
            out[sel] = shards[shard][np.sort(r[sel])][np.argsort(np.argsort(r[sel]))]
        return out

    def load_all(self, name: str) -> np.ndarray:
        """Every row of ``name`` in item order (one concatenated array in memory)."""
        return np.concatenate(self.open()[name], axis=0)

    def describe(self) -> dict:
        return {"folder": str(self.folder), "digest": self.folder.name, "items": self.n_items,
                "shards": self.n_shards, "computed_shards": len(self.computed),
                "reused": not self.computed}


def data_digest(paths: Sequence[str | os.PathLike], root: str | os.PathLike) -> str:
    """SHA-256 over the contents of ``paths`` (with their paths relative to ``root``), in order:
    any changed, added or removed file of the split changes it."""
    h = hashlib.sha256()
    root = Path(root)
    for p in paths:
        p = Path(p)
        try:
            rel = p.relative_to(root)
        except ValueError:
            rel = p
        h.update(str(rel).encode() + b"\0")
        try:
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        except OSError as err:
            raise CacheError(f"{p}: cannot be read ({err.strerror})") from None
    return h.hexdigest()


__all__ = ["CacheError", "FeatureStore", "key_digest", "data_digest"]
