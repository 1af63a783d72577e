"""Peak memory of loading and converting a large checkpoint, relative to the file's size.

Writes a DINOv2 ViT-L/14 hub-layout file (random weights; 304 M parameters, 1.2 GB in float32),
then, each in a fresh process: (1) ``load_pretrained_encoder`` (read, convert, build, load
strictly), (2) the same plus ``export_encoder`` (what ``tools/convert_checkpoint.py`` does), and a
plain reference: ``torch.load`` of the file alone. Prints the peak resident memory above the
process's footprint after imports, divided by the file size.

    .venv/bin/python speed/bench_load.py [--depth 24] [--width 1024] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_dinov2(path: Path, width: int, depth: int) -> None:
    import torch
    g = torch.Generator().manual_seed(0)
    state = {"cls_token": torch.randn(1, 1, width, generator=g),
             "pos_embed": torch.randn(1, 1 + 37 * 37, width, generator=g),
             "mask_token": torch.zeros(1, width),
             "patch_embed.proj.weight": torch.randn(width, 3, 14, 14, generator=g) * 0.02,
             "patch_embed.proj.bias": torch.zeros(width)}
    for i in range(depth):
        p = f"blocks.{i}."
        for name, shape in (("norm1.weight", (width,)), ("norm1.bias", (width,)),
                            ("attn.qkv.weight", (3 * width, width)), ("attn.qkv.bias", (3 * width,)),
                            ("attn.proj.weight", (width, width)), ("attn.proj.bias", (width,)),
                            ("ls1.gamma", (width,)), ("norm2.weight", (width,)), ("norm2.bias", (width,)),
                            ("mlp.fc1.weight", (4 * width, width)), ("mlp.fc1.bias", (4 * width,)),
                            ("mlp.fc2.weight", (width, 4 * width)), ("mlp.fc2.bias", (width,)),
                            ("ls2.gamma", (width,))):
            state[p + name] = torch.randn(*shape, generator=g) * 0.02
    state.update({"norm.weight": torch.ones(width), "norm.bias": torch.zeros(width)})
    torch.save(state, path)


CHILD = r"""
import json, resource, sys
import torch
from pretrain.checkpoint import export_encoder, load_pretrained_encoder
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
what, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
if what == "torch.load":
    sd = torch.load(path, map_location="cpu", weights_only=True)
else:
    model, info = load_pretrained_encoder(path)
    if what == "convert":
        export_encoder(model, out)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_kb": peak}))
"""


def measure(what: str, path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, what, str(path), str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--keep", type=Path, help="folder for the generated file (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "dinov2_vitl14_pretrain.pth"
        if not path.is_file():
            write_dinov2(path, args.width, args.depth)
        size = path.stat().st_size
        print(f"file: {path.name}, {size / 2**20:.0f} MiB (ViT width {args.width}, depth {args.depth})")
        for what in ("torch.load", "load", "convert"):
            out = folder / "export.safetensors"
            out.unlink(missing_ok=True)
            r = measure(what, path, out)
            extra = (r["peak_kb"] - r["base_kb"]) * 1024
            print(f"{what:10s}  peak RSS above imports {extra / 2**20:7.0f} MiB = {extra / size:.2f} x file "
                  f"(process peak {r['peak_kb'] / 2**10:.0f} MiB)")


if __name__ == "__main__":
    main()
