"""The frozen encoder of a probe run and the extraction pass that fills the feature cache."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from benchmarks.probes.cache import FeatureStore
from core.errors import FLSLError

#: DINOv2's depth probe layers for its four backbones (``dinov2/hub/depthers.py``), by depth
DEPTH_LAYERS = {12: [2, 5, 8, 11], 24: [4, 11, 17, 23], 40: [9, 19, 29, 39]}


@dataclasses.dataclass
class Encoder:
    """A loaded frozen encoder and what the cache key needs of it."""

    model: torch.nn.Module
    loaded: object              # pretrain.checkpoint.LoadedEncoder
    mean: tuple
    std: tuple
    digest: str                 # SHA-256 of the checkpoint file
    path: str
    device: torch.device

    @property
    def depth(self) -> int:
        return len(self.model.blocks)

    @property
    def patch(self) -> int:
        return int(self.model.patch_embed.patch_size[0])


def load_encoder(checkpoint: str | Path, which: str = "teacher", device: str | None = None,
                 family: str | None = None) -> Encoder:
    """Build and load the encoder of ``checkpoint`` (any format the suite reads; ``family`` where
    its content fits several), frozen, on ``device`` (CUDA when available unless given)."""
    from pretrain.checkpoint import CheckpointError, file_sha256, load_pretrained_encoder
    try:
        model, loaded = load_pretrained_encoder(checkpoint, which=which, family=family)
    except CheckpointError as err:
        raise FLSLError(str(err)) from None
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval().requires_grad_(False).to(dev)
    mean, std = loaded.mean, loaded.std       # the family's own input statistics
    return Encoder(model, loaded, mean, std, file_sha256(checkpoint), str(checkpoint), dev)


def view_schedule(train_cfg, n_images: int) -> tuple[int, int]:
    """``(epochs, views)`` of a training schedule: the epochs its iterations span over
    ``n_images``, and the training views cached per image (``train.views``, default one per
    epoch; fewer are reused in turn)."""
    epochs = math.ceil(train_cfg.iters * train_cfg.batch_size / n_images)
    return epochs, (int(train_cfg.views) if train_cfg.views else epochs)


def view_item(data_seed: int, k: int, n_images: int) -> tuple[np.random.Generator, int]:
    """Cached training item ``k`` is view ``k // n`` of image ``k % n``: its generator (seeded by
    data seed, view and image, so any item is rendered alike in any process) and the image."""
    v, i = divmod(k, n_images)
    return np.random.default_rng([int(data_seed), v, i]), i


def resolve_layers(spec, depth: int) -> list[int]:
    """Block indices (0-based) of ``spec``: ``"last"``, ``"last4"`` (the last four blocks),
    ``"depth4"`` (DINOv2's depth-probe layers: :data:`DEPTH_LAYERS`, else the ends of the four
    quarters) or an explicit list (negative counts from the end)."""
    if spec in ("last4", "depth4") and depth < 4:
        raise FLSLError(f"model.layers={spec!r}: needs four blocks, the encoder has {depth}")
    if spec == "last":
        return [depth - 1]
    if spec == "last4":
        return list(range(depth - 4, depth))
    if spec == "depth4":
        return DEPTH_LAYERS.get(depth, [round(depth * k / 4) - 1 for k in (1, 2, 3, 4)])
    if isinstance(spec, (list, tuple)) and spec:
        out = [int(i) % depth for i in spec]
        if any(not -depth <= int(i) < depth for i in spec):
            raise FLSLError(f"model.layers={list(spec)}: the encoder has {depth} blocks")
        return out
    raise FLSLError(f"model.layers={spec!r}: expected 'last', 'last4', 'depth4' or a list of block indices")


def extract(enc: Encoder, cache_root: str | Path, key: dict, n_items: int,
            render: Callable[[int], tuple[torch.Tensor, dict]], layers: Sequence[int], norm: bool,
            class_token: bool = False, batch: int = 8, shard_size: int = 256,
            desc: str | None = "features") -> FeatureStore:
    """Fill (or reuse) the store of ``key``: item ``i`` is ``render(i) -> (normalised image
    [3, H, W], {target name: array})``; stored arrays are ``feat`` ``[L, C, h, w]`` (fp16),
    ``cls`` ``[L, C]`` with ``class_token`` and the targets."""
    from benchmarks.features import layer_features
    full_key = {**key, "checkpoint_sha256": enc.digest, "layers": list(layers), "norm": bool(norm),
                "class_token": bool(class_token), "mean": list(enc.mean), "std": list(enc.std), "format": 1}
    store = FeatureStore(cache_root, full_key, n_items, shard_size)

    def load(indices):
        images, targets = [], {}
        for i in indices:
            x, t = render(i)
            images.append(x)
            for k, v in t.items():
                targets.setdefault(k, []).append(np.asarray(v))
        return torch.stack(images), {k: np.stack(v) for k, v in targets.items()}

    # the next batch is read and transformed in a thread while the encoder runs on this one
    # (decoding, OpenCV and torch release the GIL), so extraction costs about the forward alone
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(1)
    pending: dict = {}

    def produce(indices):
        indices = list(indices)
        future = pending.pop(tuple(indices), None)
        x, out = future.result() if future is not None else load(indices)
        pending.clear()
        start = indices[-1] + 1                   # the next batch of the same pass, if any
        end = min(start + batch, (start // shard_size + 1) * shard_size, n_items)
        if start < end:
            pending[tuple(range(start, end))] = pool.submit(load, list(range(start, end)))
        x = x.to(enc.device)
        patch, cls = layer_features(enc.model, x, layers, norm=norm, class_token=class_token)
        out["feat"] = patch.float().cpu().numpy()
        if cls is not None:
            out["cls"] = cls.float().cpu().numpy()
        return out

    if not store.complete():
        try:
            store.build(produce, batch=batch, progress=desc)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return store


__all__ = ["Encoder", "load_encoder", "resolve_layers", "extract", "DEPTH_LAYERS"]
