"""Convert a ViT checkpoint to this project's encoder export (.safetensors).

    python tools/convert_checkpoint.py SRC --out DST.safetensors [--which student] [--patch-size 16]

SRC may be (detected from the content, never from the file name; the format found is printed):

  flsl-export   our .safetensors export (re-written unchanged)
  flsl-train    our training state ({"teacher", "student", "meta"})
  flsl-authors  the authors' FLSL release: {"student": {"module.backbone.*", "module.head.*"},
                "teacher": {"backbone.*", "head.*"}, "optimizer", "epoch", "args", "flsl_loss"},
                whose cls_token is unused (pos_embed has N entries): no class token
  dino / ibot   DINO / iBOT releases: a ViT state dict with cls_token and a 1+N position embedding
                (bare, under "state_dict", or in a training state with dino_loss / ibot_loss)
  timm          a timm ViT state dict (.pth or hub .safetensors)

Conversion picks the network (teacher unless --which student), strips the prefixes, keeps what the
network ran with and drops the rest (heads, iBOT's mask embedding, an unused class token), checks
every encoder tensor against the architecture read from the file, and writes DST with the
architecture in its metadata. The export runs as the network it was trained as: class-token
families keep cls_token and the 1+N position embedding, and the metadata (flsl_spec) records
class_token and the family's position rule; class-token-free encoders stay class-token free. The
tool prints what it kept, what it dropped (and why) and which entries of the file it did not read.

Files are read without unpickling code (safetensors, or torch.load(weights_only=True) with only
argparse.Namespace allowed). A file that needs more (for example one holding custom classes) is
refused; --trust-pickle loads it with full unpickling, which can run code from the file: use it
only for a file you trust, once, to produce a safe .safetensors copy.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.files import check_output_path


def _plain(obj):
    """Keep tensors and plain containers / scalars only (drops optimiser classes, namespaces...)."""
    import torch
    if torch.is_tensor(obj) or isinstance(obj, (int, float, str, bool, type(None))):
        return obj
    if isinstance(obj, dict):
        return {k: v for k, v in ((k, _plain(v)) for k, v in obj.items() if isinstance(k, str))
                if v is not _DROP}
    if isinstance(obj, (list, tuple)):
        return [v for v in map(_plain, obj) if v is not _DROP]
    return _DROP


_DROP = object()


def _summarize_keys(state: dict) -> list[str]:
    """Every key with its shape; the blocks folded into one entry (``blocks.0-11.* (12 tensors
    each)``) when each block holds the same keys."""
    import re
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))})
    per_block = {i: sorted(k.split(".", 2)[2] for k in state if k.startswith(f"blocks.{i}.")) for i in blocks}
    if blocks and all(v == per_block[blocks[0]] for v in per_block.values()):
        block_items = [f"blocks.{blocks[0]}-{blocks[-1]}.* ({len(per_block[blocks[0]])} tensors each)"]
    else:
        block_items = [f"{k} {list(v.shape)}" for k, v in state.items() if k.startswith("blocks.")]
    first = ("cls_token", "pos_embed")   # then the rest in name order, the blocks, the final norm
    head = sorted((k for k in state if not k.startswith(("blocks.", "norm."))),
                  key=lambda k: (first.index(k) if k in first else len(first), k))
    head = [f"{k} {list(state[k].shape)}" for k in head]
    tail = [f"{k} {list(state[k].shape)}" for k in sorted(state) if k.startswith("norm.")]
    return head + block_items + tail


def _trusted_copy(src: Path, folder: Path) -> Path:
    """Unpickle ``src`` fully (the user vouched for it) and save its tensors under the same name."""
    import torch
    raw = torch.load(src, map_location="cpu", weights_only=False)
    dst = folder / src.name
    torch.save(_plain(raw), dst)
    return dst


def main(argv=None) -> int:
    from core.cli import ToolParser, flags
    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[flags("out", "which", "patch_size", "family", required=("out",), which="teacher")])
    p.add_argument("src", help="checkpoint to convert (.pth / .pt / .safetensors)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="fully unpickle SRC (runs code from the file: trusted files only)")
    args = p.parse_args(argv)
    from pretrain.checkpoint import CheckpointError, export_encoder, load_pretrained_encoder

    if not str(args.out).endswith(".safetensors"):
        raise CheckpointError(f"{args.out} (--out): must end with .safetensors")
    src = Path(args.src)
    check_output_path(args.out, [src])
    which = args.which
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.trust_pickle and src.suffix != ".safetensors":
                if not src.is_file():
                    raise CheckpointError(f"checkpoint not found: {src}")
                try:
                    src = _trusted_copy(src, Path(tmp))
                except Exception as err:  # noqa: BLE001 - reported with the file name
                    raise CheckpointError(f"{args.src}: cannot be read ({err})") from None
            model, loaded = load_pretrained_encoder(src, expect_patch_size=args.patch_size, which=which,
                                                    family=args.family)
    except CheckpointError as err:  # name the user's file, not the temporary trusted copy
        raise CheckpointError(str(err).replace(str(src), str(args.src))) from None
    export_encoder(model, args.out)
    print(f"detected format: {loaded.format}")
    print(f"runs as: {loaded.spec.describe()}")
    two = {"student", "teacher"} & set(loaded.not_read)  # the file held both networks
    print(f"converted {which if two else 'encoder'} "
          f"{loaded.spec.arch} {dict(loaded.spec.kwargs) or ''} (patch {loaded.patch_size}) to {args.out}")
    kept = loaded.state_dict
    print(f"kept: {len(kept)} tensors: " + ", ".join(_summarize_keys(kept)))
    print("dropped: " + ("; ".join(f"{k} ({why})" for k, why in sorted(loaded.dropped.items()))
                         if loaded.dropped else "nothing"))
    print("not read: " + (", ".join(loaded.not_read) if loaded.not_read else "nothing"))
    return 0


__all__ = ["main"]
