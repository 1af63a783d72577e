"""Image folders for pretraining: ImageNet layout (``root/<class>/<img>``) or a flat folder.

Policy for unreadable files: files whose extension is not an image extension are ignored;
an image file that cannot be decoded stops training with :class:`DataError` naming the file
(``on_corrupt='error'``, default), or is replaced by the next readable image with a warning
naming it (``on_corrupt='skip'``; the replacement is deterministic, so resume stays exact).
"""
from __future__ import annotations

from core.errors import FLSLError

import hashlib
import logging
import os
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler

from .views import ImageDecodeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
log = logging.getLogger("flsl")


class DataError(FLSLError):
    """Unusable training data; the message names the folder or file."""

    def __init__(self, message: str):  # one string argument: survives DataLoader worker re-raise
        super().__init__(message)

    def __str__(self) -> str:
        # Re-raised from a DataLoader worker, the message carries the worker's traceback: keep
        # only our own last line, which names the file.
        msg = super().__str__()
        if "Original Traceback" in msg:
            last = [line for line in msg.strip().splitlines() if line.strip()][-1]
            msg = last.split("DataError: ", 1)[-1]
        return msg


def scan_images(root: str | os.PathLike) -> list[Path]:
    """All image files below ``root`` (recursive, sorted, extension-filtered)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data root does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"data root is not a folder: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images found under {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch, index)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class PretrainImages(Dataset):
    """Items are addressed by ``(epoch, index)`` so that augmentation is a pure function of
    (seed, epoch, index): ``dataset[(e, i)]`` -> dict of views (see :class:`MultiCropViews`)."""

    def __init__(self, root: str | os.PathLike, views, seed: int = 0, on_corrupt: str = "error"):
        if on_corrupt not in ("error", "skip"):
            raise DataError(f"data.on_corrupt: must be 'error' or 'skip', got {on_corrupt!r}")
        self.root = Path(root)
        self.files = scan_images(root)
        self.views = views
        self.seed = seed
        self.on_corrupt = on_corrupt

    def __len__(self) -> int:
        return len(self.files)

    def _open(self, path: Path) -> Image.Image:
        """The file opened lazily (header read): the views decode the pixels, a JPEG at the
        reduced scale its largest crop allows."""
        try:
            return Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            # DecompressionBombError (an image header declaring a huge size) is not an OSError
            raise DataError(f"cannot read image {path}: {err}") from None

    def _views(self, path: Path, epoch: int, index: int) -> dict:
        img = self._open(path)
        try:
            with img, torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, epoch, index))
                return self.views(img)
        except ImageDecodeError as err:        # truncated or corrupt pixel data
            raise DataError(f"cannot read image {path}: {err}") from None

    def __getitem__(self, key):
        epoch, index = key
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                return self._views(path, epoch, index)
            except DataError as err:
                if self.on_corrupt == "error":
                    raise
                log.warning("warning: skipping unreadable image (replaced by the next one): %s", err)
        raise DataError(f"no readable image under {self.root}")


class ResumableSampler(Sampler):
    """Yields ``(epoch, index)`` for this rank, one epoch at a time, from any start batch.

    Each epoch is a permutation seeded by (seed, epoch); global batch j is
    ``perm[j*B*W:(j+1)*B*W]`` and rank r takes its slice ``[r*B:(r+1)*B]``, so one process with
    batch W*B sees exactly the union of what W processes with batch B see. Incomplete last
    batches are dropped.
    """

    def __init__(self, n_items: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.n, self.b, self.rank, self.world, self.seed = n_items, batch_size, rank, world_size, seed
        self.batches_per_epoch = n_items // (batch_size * world_size)
        if self.batches_per_epoch == 0:
            raise DataError(f"{n_items} images are fewer than one global batch "
                            f"({batch_size} per process x {world_size} processes)")
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.b

    def __iter__(self):
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -1))
        perm = torch.randperm(self.n, generator=g).tolist()
        gb = self.b * self.world
        for j in range(self.start_batch, self.batches_per_epoch):
            chunk = perm[j * gb + self.rank * self.b: j * gb + (self.rank + 1) * self.b]
            for i in chunk:
                yield (self.epoch, i)
