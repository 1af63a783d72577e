"""Hummingbird dense nearest-neighbour retrieval, as open-hummingbird-eval (v2.0.0) runs it.

A memory bank holds L2-normalised patch features of augmented training images with their soft
patch labels (the class histogram of the patch's pixels); every patch of a validation image takes
its ``k`` = 30 nearest memory patches (inner product with the un-normalised query = cosine
ranking), weights them by ``softmax(cos / 0.02)``, and the weighted label distributions, upsampled
bilinearly to the input resolution, give the per-pixel argmax. mIoU after Hungarian matching
(:func:`benchmarks.probes.metrics.iou_hungarian`). docs/probes.md lists every setting.

Search is exact: :func:`exact_search` (torch, chunked over queries and memory so the score
matrix never exceeds ``chunk_bytes``) by default, or faiss-cpu's ``IndexFlatIP``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.probes import datasets as ds
from benchmarks.probes import transforms as T
from benchmarks.probes.metrics import confusion, iou_hungarian

#: open-hummingbird-eval's normalisation: its third standard deviation is 0.255 (for 0.225)
REFERENCE_MEAN, REFERENCE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.255)


# ----------------------------------------------------------------------------- search
@torch.no_grad()
def exact_search(queries: torch.Tensor, memory: torch.Tensor, k: int, chunk_bytes: int = 1 << 28) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest inner products of each query row ``[Q, C]`` with the memory ``[M, C]``:
    ``(scores [Q, k], indices [Q, k] int64)``, best first. Queries and memory are processed in
    blocks whose score matrix holds at most ``chunk_bytes`` (running top-k merged per block)."""
    q_n, m_n = queries.shape[0], memory.shape[0]
    k = min(k, m_n)
    m_block = max(k, min(m_n, chunk_bytes // (4 * min(q_n, 1024))))
    q_block = max(1, min(q_n, chunk_bytes // (4 * m_block)))
    out_s = torch.empty(q_n, k, dtype=queries.dtype, device=queries.device)
    out_i = torch.empty(q_n, k, dtype=torch.int64, device=queries.device)
    for qs in range(0, q_n, q_block):
        q = queries[qs:qs + q_block]
        best_s = best_i = None
        for ms in range(0, m_n, m_block):
            s = q @ memory[ms:ms + m_block].T
            top_s, top_i = s.topk(min(k, s.shape[1]), dim=1)
            top_i += ms
            if best_s is None:
                best_s, best_i = top_s, top_i
            else:
                cat_s, cat_i = torch.cat([best_s, top_s], 1), torch.cat([best_i, top_i], 1)
                best_s, pos = cat_s.topk(k, dim=1)
                best_i = cat_i.gather(1, pos)
        out_s[qs:qs + q_block], out_i[qs:qs + q_block] = best_s, best_i
    return out_s, out_i


def faiss_search(queries: torch.Tensor, memory: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same search with faiss-cpu's exact ``IndexFlatIP`` (float32)."""
    import faiss
    index = faiss.IndexFlatIP(memory.shape[1])
    index.add(np.ascontiguousarray(memory.cpu().numpy(), dtype=np.float32))
    s, i = index.search(np.ascontiguousarray(queries.cpu().numpy(), dtype=np.float32), min(k, memory.shape[0]))
    return torch.from_numpy(s), torch.from_numpy(i).long()


def transfer(queries: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, temperature: float = 0.02) -> torch.Tensor:
    """Label transfer: queries ``[Q, C]``, their neighbours' features ``[Q, k, C]`` and soft labels
    ``[Q, k, K]`` -> ``[Q, K]`` = ``softmax_j(cos(q, key_j) / temperature) @ labels``."""
    q = F.normalize(queries, dim=-1)
    kk = F.normalize(keys, dim=-1)
    attn = torch.einsum("qc,qjc->qj", q, kk).div(temperature).softmax(-1)
    return torch.einsum("qj,qjk->qk", attn, labels)


# ----------------------------------------------------------------------------- memory
def patch_labels(label: torch.Tensor, patch: int, n_classes: int) -> torch.Tensor:
    """``[B, H, W]`` class ids -> ``[B, h*w, K]`` class histogram of each patch's pixels (means of
    one-hot vectors), patches in row-major order."""
    b, h, w = label.shape
    one_hot = F.one_hot(label.long(), n_classes).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(one_hot, patch).flatten(2).transpose(1, 2)


def sample_patches(hist: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """The reference's bounded-memory choice, per image: ``[B, N, K]`` patch histograms -> the
    ``k`` patch indices ``[B, k]`` of smallest score, score = sum over the classes present in the
    patch of the number of the image's patches containing that class, times U(0, 1) (one draw per
    non-empty patch, images in order; an empty patch scores 1e6)."""
    present = hist > 0
    freq = present.sum(1).float()                                       # [B, K]
    score = torch.einsum("bnk,bk->bn", present.float(), freq)
    nonempty = present.any(2)
    score[~nonempty] = 1e6
    noise = torch.rand(int(nonempty.sum()), generator=generator)
    score[nonempty] = score[nonempty] * noise
    return score.topk(k, dim=1, largest=False).indices


# ----------------------------------------------------------------------------- protocol
def _splits(cfg, root):
    name = cfg.dataset.name
    if name == "voc2012":
        return ds.voc_split(root, cfg.dataset.memory_split, prefer_aug=True), ds.voc_split(root, cfg.dataset.query_split)
    if name == "ade20k":
        return ds.ade_split(root, cfg.dataset.memory_split), ds.ade_split(root, cfg.dataset.query_split)
    raise ds.ProbeDataError(f"dataset.name={name!r}: the Hummingbird probe reads voc2012 or ade20k")


def subset(samples: list[dict], cfg) -> list[dict]:
    """The memory images: all, the ids of ``hbird.subset_file`` (the reference's file_sets lists),
    or ``1 / hbird.subset_fraction`` of them drawn with ``hbird.subset_seed``."""
    h = cfg.hbird
    if h.subset_file:
        from pathlib import Path
        wanted = [ln.strip() for ln in Path(h.subset_file).read_text().splitlines() if ln.strip()]
        by_id = {s["id"]: s for s in samples}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise ds.ProbeDataError(f"{h.subset_file}: image {missing[0]} is not in the memory split "
                                    f"({len(missing)} missing)")
        return [by_id[i] for i in wanted]
    if h.subset_fraction and h.subset_fraction > 1:
        n = max(1, len(samples) // int(h.subset_fraction))
        pick = np.sort(np.random.default_rng(int(h.subset_seed)).choice(len(samples), n, replace=False))
        return [samples[i] for i in pick]
    return samples


def input_size(cfg, patch: int) -> int:
    """``hbird.input_size``, or when 0 the largest multiple of the patch up to 512 (the
    reference's 512 for /16 and /8, 504 for /14)."""
    return int(cfg.hbird.input_size) or 512 // patch * patch


def run(cfg, enc, root, cache_root, log=print, save_pred=None) -> dict:
    from benchmarks.probes.cache import data_digest
    from benchmarks.probes.extract import extract, resolve_layers
    h, n_classes, ignore = cfg.hbird, cfg.dataset.num_classes, cfg.dataset.ignore_index
    memory_samples, queries = _splits(cfg, root)
    memory_samples = subset(memory_samples, cfg)
    size, patch = input_size(cfg, enc.patch), enc.patch
    if size % patch:
        raise ds.ProbeDataError(f"hbird.input_size={size}: not a multiple of the patch size {patch}")
    mean, std = (REFERENCE_MEAN, REFERENCE_STD) if h.normalisation == "reference" else (enc.mean, enc.std)
    layers = resolve_layers(cfg.model.layers, enc.depth)
    n_mem = len(memory_samples)

    def render_memory(k):
        e, i = divmod(k, n_mem)
        s = memory_samples[i]
        rng = np.random.default_rng([int(h.data_seed), e, i])
        img = ds.read_rgb(s["image"])
        label = ds.check_label(s["label"], ds.read_label(s["label"]), n_classes, 255, img.shape)
        x, y = T.hbird_memory_view(rng, img, label, size, mean, std)
        return x, {"label": y.numpy().astype(np.uint8)}

    def render_query(k):
        s = queries[k]
        img = ds.read_rgb(s["image"])
        label = ds.check_label(s["label"], ds.read_label(s["label"]), n_classes, ignore, img.shape)
        x, y = T.hbird_query_view(img, label, size, mean, std)
        return x, {"label": y.numpy().astype(np.uint8)}

    c = cfg.cache
    common = {"dataset": cfg.dataset.name, "input_size": size, "normalisation": [list(mean), list(std)]}
    mem_store = extract(enc, cache_root, {"protocol": "hummingbird-memory", **common,
                                          "epochs": h.augmentation_epochs, "data_seed": h.data_seed,
                                          "data_sha256": data_digest([p for s in memory_samples for p in (s["image"], s["label"])], root)},
                        n_mem * h.augmentation_epochs, render_memory, layers, norm=cfg.model.norm,
                        batch=c.batch_size, shard_size=c.shard_size, desc="features (memory views)")
    q_store = extract(enc, cache_root, {"protocol": "hummingbird-query", **common,
                                        "data_sha256": data_digest([p for s in queries for p in (s["image"], s["label"])], root)},
                      len(queries), render_query, layers, norm=cfg.model.norm, batch=c.batch_size,
                      shard_size=c.shard_size, desc="features (queries)")
    from core import dist
    if dist.rank() != 0:
        return None

    # memory bank: normalised features and soft labels, bounded by sampling per image
    n_items = n_mem * h.augmentation_epochs
    per_image = max(1, int(h.memory_size) // n_items) if h.memory_size else None
    if per_image is not None:
        per_image = min(per_image, (size // patch) ** 2)           # a view has no more patches
    gen = torch.Generator().manual_seed(int(h.sampling_seed))
    feats, labels = [], []
    for start in range(0, n_items, 64):
        idx = list(range(start, min(start + 64, n_items)))
        f = torch.from_numpy(mem_store.take("feat", idx)).float()[:, -1]            # [B, C, S, S]
        f = f.flatten(2).transpose(1, 2)                                            # [B, S*S, C]
        y = torch.from_numpy(mem_store.take("label", idx)).long()
        y[y == 255] = 0                                                             # void -> background
        hist = patch_labels(y, patch, n_classes)
        if per_image is not None:
            pick = sample_patches(hist, per_image, gen)
            f = f.gather(1, pick[..., None].expand(-1, -1, f.shape[2]))
            hist = hist.gather(1, pick[..., None].expand(-1, -1, hist.shape[2]))
        feats.append((f / f.norm(dim=-1, keepdim=True)).flatten(0, 1))             # no epsilon, as the reference
        labels.append(hist.flatten(0, 1))
    memory, mem_labels = torch.cat(feats), torch.cat(labels)
    log(f"hummingbird memory: {memory.shape[0]} patches of {n_mem} images x {h.augmentation_epochs} views "
        f"({'all patches' if per_image is None else f'{per_image} per view'}); {len(queries)} queries at {size}px")
    memory, mem_labels = memory.to(enc.device), mem_labels.to(enc.device)
    conf = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    preds = []
    for start in range(0, len(queries), 16):
        idx = list(range(start, min(start + 16, len(queries))))
        q = torch.from_numpy(q_store.take("feat", idx)).float()[:, -1]
        s = q.shape[-1]
        q = q.flatten(2).transpose(1, 2).reshape(-1, q.shape[1]).to(enc.device)
        if h.search == "faiss":
            _, nn = faiss_search(q, memory, h.k)
        else:
            _, nn = exact_search(q, memory, h.k, int(h.chunk_bytes))
        nn = nn.to(memory.device)
        dist_ = transfer(q, memory[nn], mem_labels[nn], h.temperature)
        dist_ = dist_.reshape(len(idx), s, s, -1).permute(0, 3, 1, 2)
        pred = F.interpolate(dist_, size=(size, size), mode="bilinear", align_corners=False).argmax(1).cpu()
        truth = torch.from_numpy(q_store.take("label", idx)).long()
        conf += confusion(truth, pred, n_classes, ignore=ignore)
        preds.append(pred.to(torch.uint8))
    scores = iou_hungarian(conf)
    if save_pred is not None:                   # predictions after the Hungarian matching
        mapping = np.asarray(scores["mapping"], np.uint8)
        for s_, p in zip(queries, torch.cat(preds)):
            save_pred(s_["id"], mapping[p.numpy()])
    log(f"hummingbird mIoU {scores['mIoU']:.2f}")
    return {"metrics": {"mIoU": scores["mIoU"]}, "IoU": scores["IoU"], "memory_patches": int(memory.shape[0]),
            "memory_images": n_mem, "patches_per_view": per_image, "input_size": size, "layers": layers,
            "queries": len(queries), "caches": {"memory": mem_store.describe(), "query": q_store.describe()}}


__all__ = ["exact_search", "faiss_search", "transfer", "patch_labels", "sample_patches", "subset", "run",
           "REFERENCE_MEAN", "REFERENCE_STD"]
