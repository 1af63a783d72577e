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
        raise DataError(f"{root} (data.root): folder not found")
    if not root.is_dir():
        raise DataError(f"{root} (data.root): is a file, not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{root} (data.root): no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def listing_digest(root: str | os.PathLike, files: list[Path]) -> str:
    """SHA-256 of the sorted relative names of ``files`` under ``root``: a resume on another
    image set (added, removed or renamed files) is noticed without reading a pixel."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\n")
    return h.hexdigest()


def check_batch(n_images: int, root, batch_size: int, world_size: int) -> None:
    """Refuse a data set smaller than one global batch (incomplete batches are dropped, so an
    epoch would hold no iteration), naming the folder and the key to change."""
    if n_images < batch_size * world_size:
        raise DataError(f"{root} (data.root): {n_images} image(s), fewer than one global batch "
                        f"(data.batch_size_per_gpu={batch_size} x {world_size} process(es)); add images "
                        "or lower data.batch_size_per_gpu")


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
        raise DataError(f"{self.root} (data.root): no readable image")


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


def prepare_data_root(data, rank: int = 0, wait_s: float = 600.0, say=None) -> None:
    """Write the generated images a config's ``data.generate`` asks for under ``data.root``.

    Only into a folder the generator creates or marked as its own (:func:`synthetic.folder.claim`):
    a user's folder (``--cfg-options data.root=DIR`` on a config with a ``data.generate`` section)
    or an empty one (an unmounted mount point) is an error naming it, never filled. Rank 0
    writes (``say`` tells what it writes); the other ranks wait for its completion marker.
    """
    gen = data.get("generate")
    if not gen:
        return
    from synthetic.folder import DONE, GeneratedFolderError, is_complete
    from synthetic.images import image_folder_stamp, write_image_folder
    root = Path(data.root)
    if rank == 0:
        stamp = image_folder_stamp(gen["n_images"], gen["size"], gen.get("seed", 0))
        if say and not is_complete(root, stamp):
            say(f"generating {gen['n_images']} synthetic images under {root} ...")
        try:
            write_image_folder(root, gen["n_images"], gen["size"], gen.get("seed", 0))
        except GeneratedFolderError as err:
            raise DataError(f"{root} (data.root, with data.generate set): {err.reason}; to train on the "
                            "images there instead, drop the generator: --cfg-options data.generate=None") from None
        return
    import time
    deadline = time.monotonic() + wait_s
    while not (root / DONE).is_file():
        if time.monotonic() > deadline:
            raise DataError(f"{root} (data.root): rank 0 did not finish generating images within "
                            f"{wait_s:.0f} s")
        time.sleep(1)
