"""Frozen-encoder dense probes: what the patch features alone carry, with a small spread.

    python -m benchmarks.probes.demo_linear --checkpoint CKPT --data-root COCO_ROOT --out OUT
                                         [--seeds 0 1 2 3 4] [--epochs 20] [--batch-size 16] [--lr 0.01]

A fine-tuned detector measures the encoder *and* a neck and heads trained from scratch; at the
demo's budget its seed-to-seed spread (several AP points) hides what the encoder brings. These
two protocols measure the frozen encoder on a COCO-format instance set. Both read the
post-LayerNorm patch tokens (the features of the figures and of DAVIS propagation:
:func:`benchmarks.features.patch_features`), computed once per image.

**Linear segmentation probe** (trained; spread over seeds). The features are standardised per
channel with the train split's mean and deviation. Per seed, a linear layer (a 1x1 convolution:
``C -> K`` logits, K = background + the set's categories) starts from ``N(0, 0.01^2)`` weights
drawn from that seed and is trained with AdamW on minibatches of images in an order drawn from
that seed; the patch logits are upsampled bilinearly to the pixels and trained with pixel-wise
cross-entropy against the semantic map of the instance masks (each pixel: the category of the
instance covering it, else background). Evaluation: the upsampled logits' argmax on every pixel
of the val split, one confusion matrix over the split, IoU per class and their mean (mIoU,
background included), in percent.

**Patch grouping** (no training: a rerun repeats it; spread over images). For each val image,
the patches that one segment (an instance, or the background) covers to at least 75%; the AUC
(percent) of cosine similarity as a detector of "same segment" over all pairs of those patches:
the probability that a same-segment pair is more similar than a cross-segment pair (50 =
chance). This is what the mean-shift objective shapes, and what label propagation relies on.

Writes ``OUT/probe_results.json``: ``{"classes", "linear": [{"seed", "mIoU", "IoU",
"pixel_acc"}], "grouping": {image file: AUC or null}, "settings", "checkpoint"}``. Images
whose sides are not multiples of the patch are cropped to the largest multiple (top-left),
their label maps likewise.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import FLSLError, cli_main
from core.files import write_json_atomic

RESULTS = "probe_results.json"


class ProbeError(FLSLError):
    """A data set or checkpoint the probe cannot use; the message names the file."""


@dataclasses.dataclass
class Split:
    """Frozen features of one split and its per-pixel labels."""

    features: torch.Tensor     # [N, C, h, w] float32
    labels: torch.Tensor       # [N, H, W] int64 class index (0 = background)
    instances: torch.Tensor    # [N, H, W] int64 instance rank (0 = background)
    names: list                # image file names


@dataclasses.dataclass(frozen=True)
class Settings:
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 20
    batch: int = 16            # images per step
    lr: float = 1e-2
    weight_decay: float = 1e-4


# ----------------------------------------------------------------------------- data
def read_split(root: Path, split: str) -> tuple[list, list, list, list]:
    """``(image paths, class maps, instance maps, class names)`` of ``root``'s COCO split
    (``annotations/instances_<split>.json``, images under ``<split>/``). Class maps ``[H, W]``
    int64 hold the category index (0 = background), instance maps the annotation's rank within
    its image (0 = background, 1, 2, ...); crowd regions count as background."""
    from pycocotools import mask as mask_utils
    ann_path = root / "annotations" / f"instances_{split}.json"
    try:
        doc = json.loads(ann_path.read_text())
    except FileNotFoundError:
        raise ProbeError(f"{ann_path}: not found (a COCO-format set: annotations/instances_{split}.json)") from None
    except json.JSONDecodeError as err:
        raise ProbeError(f"{ann_path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    index = {c["id"]: i + 1 for i, c in enumerate(cats)}
    by_image: dict = {}
    for a in doc["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    paths, classes, instances = [], [], []
    for im in sorted(doc["images"], key=lambda i: i["id"]):
        h, w = int(im["height"]), int(im["width"])
        cls, ins = np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)
        for rank, a in enumerate((a for a in by_image.get(im["id"], []) if not a.get("iscrowd", 0)), 1):
            seg = a["segmentation"]
            if isinstance(seg, list):                                 # polygons
                seg = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            m = mask_utils.decode(seg).astype(bool)
            cls[m], ins[m] = index[a["category_id"]], rank
        paths.append(root / split / im["file_name"])
        classes.append(cls)
        instances.append(ins)
    return paths, classes, instances, ["background", *(c["name"] for c in cats)]


@torch.no_grad()
def featurise(model: torch.nn.Module, root: Path, split: str) -> tuple[Split, list]:
    """Frozen patch features ``[N, C, h, w]`` of ``root``'s ``split`` and its label maps, cropped
    to whole patches (top-left). All images of a split must share one size (they are stacked).
    Returns ``(Split, class names)``."""
    from PIL import Image

    from benchmarks.features import patch_features
    from pretrain.encoder import patch_size
    paths, classes, instances, names = read_split(root, split)
    if not paths:
        raise ProbeError(f"{root / 'annotations' / f'instances_{split}.json'}: no images")
    p = patch_size(model)
    feats, cls, ins = [], [], []
    for path, c, i in zip(paths, classes, instances):
        try:
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as err:
            raise ProbeError(f"{path}: cannot read image ({err})") from None
        if img.shape[:2] != c.shape:
            raise ProbeError(f"{path}: image is {img.shape[1]}x{img.shape[0]}, its annotation "
                             f"says {c.shape[1]}x{c.shape[0]}")
        H, W = img.shape[0] // p * p, img.shape[1] // p * p
        feats.append(patch_features(model, img[:H, :W]).permute(2, 0, 1))    # [C, h, w]
        cls.append(torch.from_numpy(c[:H, :W]))
        ins.append(torch.from_numpy(i[:H, :W]))
    if len({tuple(f.shape) for f in feats}) > 1:
        raise ProbeError(f"{paths[0].parent}: images of different sizes (the probe stacks them)")
    return Split(torch.stack(feats), torch.stack(cls), torch.stack(ins), [x.name for x in paths]), names


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel ``(x - mean) / std`` with the train split's statistics, ``[N, C, h, w]``."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return [(x - mean) / std for x in (train, *others)]


# ----------------------------------------------------------------------------- probe
def logits(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor, size: tuple) -> torch.Tensor:
    """``[B, C, h, w]`` features -> ``[B, K, H, W]`` pixel logits: 1x1 linear map, then bilinear
    upsampling (``align_corners=False``) to ``size`` = ``(H, W)``."""
    patch_logits = torch.einsum("kc,bchw->bkhw", weight, features) + bias[None, :, None, None]
    return F.interpolate(patch_logits, size=size, mode="bilinear", align_corners=False)


def train_probe(train: Split, n_classes: int, seed: int, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear probe ``(weight [K, C], bias [K])`` trained on ``train`` (module docstring, step 2)."""
    g = torch.Generator().manual_seed(int(seed))
    c = train.features.shape[1]
    weight = (0.01 * torch.randn(n_classes, c, generator=g)).requires_grad_()
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.AdamW([weight, bias], lr=settings.lr, weight_decay=settings.weight_decay)
    n, size = train.features.shape[0], tuple(train.labels.shape[1:])
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=g)
        for start in range(0, n, settings.batch):
            idx = order[start:start + settings.batch]
            loss = F.cross_entropy(logits(weight, bias, train.features[idx], size), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return weight.detach(), bias.detach()


@torch.no_grad()
def confusion(weight: torch.Tensor, bias: torch.Tensor, split: Split, n_classes: int,
              batch: int = 32) -> torch.Tensor:
    """``[K, K]`` pixel counts, rows the true class, columns the predicted one."""
    size = tuple(split.labels.shape[1:])
    out = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    for start in range(0, split.features.shape[0], batch):
        pred = logits(weight, bias, split.features[start:start + batch], size).argmax(1)
        truth = split.labels[start:start + batch]
        out += torch.bincount((truth * n_classes + pred).flatten(), minlength=n_classes ** 2).view(n_classes, n_classes)
    return out


def iou_scores(conf: torch.Tensor) -> tuple[list, float, float]:
    """Per-class IoU (percent; None for a class absent from both truth and prediction), their
    mean over the classes that have one, and pixel accuracy (percent)."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    ious = [None if u == 0 else float(100 * t / u) for t, u in zip(tp, union)]
    present = [v for v in ious if v is not None]
    return ious, sum(present) / len(present), float(100 * tp.sum() / conf.sum())


# ----------------------------------------------------------------------------- grouping
def patch_segments(instances: torch.Tensor, patch: int, purity: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment of each patch of one image: ``instances`` ``[H, W]`` (0 = background) ->
    ``(segment [h*w] int64, pure [h*w] bool)``: the segment covering most of the patch's pixels,
    and whether it covers at least ``purity`` of them."""
    n_seg = int(instances.max()) + 1
    onehot = F.one_hot(instances, n_seg).permute(2, 0, 1).float()[None]      # [1, S, H, W]
    frac = F.avg_pool2d(onehot, patch)[0].flatten(1).T                      # [h*w, S]
    best, seg = frac.max(1)
    return seg, best >= purity


def grouping_auc(tokens: torch.Tensor, segment: torch.Tensor) -> float | None:
    """Probability (percent) that two patches of the same segment have a higher cosine
    similarity than two patches of different segments (the area under the ROC curve of
    similarity as a same-segment detector; ties count one half). ``tokens`` ``[M, C]``,
    ``segment`` ``[M]``; None when the image has no same-segment or no cross-segment pair."""
    from scipy.stats import rankdata
    z = F.normalize(tokens.double(), dim=1)
    sim = z @ z.T
    upper = torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)
    equal = segment[:, None] == segment[None, :]
    same, cross = equal & upper, ~equal & upper
    pos, neg = sim[same].numpy(), sim[cross].numpy()
    if len(pos) == 0 or len(neg) == 0:
        return None
    ranks = rankdata(np.concatenate([pos, neg]))                # average ranks for ties
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(100.0 * u / (len(pos) * len(neg)))


def grouping(split: Split, patch: int, purity: float = 0.75) -> dict:
    """:func:`grouping_auc` of every image of ``split`` over its pure patches (one segment covers
    at least ``purity`` of the patch): ``{image name: AUC or None}``. The raw (not standardised)
    features: cosine similarity is what the objective and the label propagation use."""
    out = {}
    for name, f, ins in zip(split.names, split.features, split.instances):
        seg, pure = patch_segments(ins, patch, purity)
        tokens = f.flatten(1).T                                   # [h*w, C]
        out[name] = grouping_auc(tokens[pure], seg[pure])
    return out


# ----------------------------------------------------------------------------- both protocols
def run_probe(checkpoint: str | Path, data_root: str | Path, settings: Settings = Settings(),
              which: str = "teacher", log=print) -> dict:
    """Both frozen-encoder protocols on one encoder; returns the results document."""
    from pretrain.checkpoint import CheckpointError, load_pretrained_encoder
    from pretrain.encoder import patch_size
    torch.use_deterministic_algorithms(True)
    root = Path(data_root)
    try:
        model, loaded = load_pretrained_encoder(checkpoint, which=which)
    except CheckpointError as err:
        raise ProbeError(str(err)) from None
    model.eval().requires_grad_(False)
    train, classes = featurise(model, root, "train")
    val, val_classes = featurise(model, root, "val")
    if val_classes != classes:
        raise ProbeError(f"{root}: the train and val splits have different categories")
    groups = grouping(val, patch_size(model))
    scored = [v for v in groups.values() if v is not None]
    log(f"probe: {loaded.spec.arch} from {checkpoint}; {train.features.shape[0]} train / "
        f"{val.features.shape[0]} val images, {train.features.shape[2]}x{train.features.shape[3]} patches, "
        f"{len(classes)} classes")
    log(f"patch grouping AUC over {len(scored)} val images: {sum(scored) / max(len(scored), 1):.2f}")
    feats_train, feats_val = standardise(train.features, val.features)
    train = dataclasses.replace(train, features=feats_train)
    val = dataclasses.replace(val, features=feats_val)
    runs = []
    for seed in settings.seeds:
        weight, bias = train_probe(train, len(classes), seed, settings)
        ious, miou, acc = iou_scores(confusion(weight, bias, val, len(classes)))
        runs.append({"seed": int(seed), "mIoU": miou, "pixel_acc": acc, "IoU": dict(zip(classes, ious))})
        log(f"linear probe seed {seed}: mIoU {miou:.2f}  pixel acc {acc:.2f}  "
            + "  ".join(f"{c} {'-' if v is None else f'{v:.1f}'}" for c, v in zip(classes, ious)))
    return {"checkpoint": str(checkpoint), "classes": classes, "linear": runs, "grouping": groups,
            "settings": dataclasses.asdict(settings)}


def read_results(out_dir: str | Path) -> dict | None:
    """``OUT/probe_results.json`` or None when the probe has not run there."""
    path = Path(out_dir) / RESULTS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ProbeError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


# ----------------------------------------------------------------------------- command line
def parse_args(argv=None):
    from core.cli import ToolParser, flags, positive_int
    d = Settings()
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("checkpoint", "data_root", "out", "which", "batch_size", "store",
                                               required=("checkpoint", "data_root", "out"), which="teacher",
                                               batch_size=d.batch)])
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), help="probe seeds (default 0-4)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    args = p.parse_args(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.interface.*")
    settings = Settings(seeds=tuple(args.seeds), epochs=args.epochs, batch=args.batch_size, lr=args.lr)
    doc = run_probe(args.checkpoint, args.data_root, settings, which=args.which)
    out = Path(args.out) / RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(doc, out)
    print(f"wrote {out}")
    from benchmarks.leaderboard.records import record_demo_probes   # after the file: never loses it
    record_demo_probes(doc, data_root=args.data_root, result_file=out, store=args.store)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main(main))
