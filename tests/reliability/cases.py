"""The registry of bad inputs: each case builds one hostile input for one tool, the message the
tool must answer with, and what it reads (which must not change).

``tests/reliability/test_bad_inputs.py`` runs every case; ``docs/errors.md`` is generated from
this registry (``python -m tests.reliability.cases --write``) and a test checks that it is current,
so the table of messages cannot drift from what the tools print.

Message templates: ``<...>`` stands for any text (a path of the test's temporary folder, a digest);
everything else must match the tool's last ``error:`` / ``warning:`` line exactly.
"""
from __future__ import annotations

import dataclasses
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DENSE_CONFIG = "tests/benchmarks/dense/configs/tiny_mask_rcnn.py"


@dataclasses.dataclass
class Case:
    id: str
    tool: str              # tools/<tool>, or "api: <function>" for library-level cases
    bad_input: str         # what is wrong, for the docs table
    message: str           # template of the last error / warning line
    setup: Callable        # setup(ctx) -> argv (tool arguments); records inputs with ctx.reads()
    names: Callable        # names(ctx) -> the item the message must contain (a path or a key)
    status: int = 2        # exit status (0 for warnings)
    mode: str = "inproc"   # "inproc": cli_main(tool.main) in the test process; "subprocess"
    needs: tuple = ()      # optional packages (mmdet)

    @property
    def level(self) -> str:
        return "error" if self.message.startswith("error:") else "warning"

    def pattern(self) -> re.Pattern:
        parts = re.split(r"<[^<>]*>", self.message)
        return re.compile(".+?".join(re.escape(p) for p in parts) + r"\Z")


# ------------------------------------------------------------------------------ input builders
def png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid PNG whose header declares ``side x side`` pixels (a decompression bomb for Pillow,
    which refuses more than 2 x MAX_IMAGE_PIXELS; the file itself is tiny)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def flip_bytes(path: Path, start_fraction: float = 0.5, count: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * start_fraction)
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


TINY_PRETRAIN = dict(
    model=dict(arch="vit_tiny_patch16_224", arch_kwargs=dict(depth=2, img_size=96), drop_path_rate=0.1,
               out_dim=64, hidden_dim=64, bottleneck_dim=32),
    data=dict(root=None, batch_size_per_gpu=4, num_workers=0, on_corrupt="error",
              views=dict(global_size=96, local_size=48, n_local=2)),
    loss=dict(student_temp=0.1, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=1,
              coefficients=(0.03, 1.0, 5.0), beta_sa=0.1 / 192 ** 0.5, beta_ca=0.2 / 192 ** 0.5),
    optim=dict(lr=5e-4, min_lr=1e-6, warmup_epochs=1, weight_decay=0.04, weight_decay_end=0.4,
               clip_grad=3.0, freeze_last_layer=1, momentum_teacher=0.996),
    train=dict(epochs=1, seed=0, log_interval=1, checkpoint_interval=1),
)


class Ctx:
    """One case's folder and the inputs it declares (checksummed before and after the run)."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.inputs: list[Path] = []
        self.env: dict = {}
        self.limit_file_size: int | None = None   # RLIMIT_FSIZE of a subprocess (a "full disk")
        self.keep: dict = {}

    def reads(self, *paths) -> None:
        self.inputs += [Path(p) for p in paths]

    # -- pretraining
    def images(self, n: int = 4) -> Path:
        from synthetic.images import write_image_folder
        return write_image_folder(self.tmp / "images", n_images=n, size=64, seed=1, n_classes=1)

    def pretrain_config(self, **changes) -> Path:
        from mmengine.config import Config
        cfg = Config(json.loads(json.dumps(TINY_PRETRAIN)))
        cfg.data.root = str(self.keep.get("images") or self.images())
        cfg.merge_from_dict(changes)
        path = self.tmp / "tiny_pretrain.py"
        path.write_text(cfg.pretty_text)
        self.reads(path, cfg.data.root)
        return path

    def training_checkpoint(self) -> Path:
        """``WORK/latest.pth`` (+ .sha256) of the tiny config at iteration 0."""
        from mmengine.config import Config

        from pretrain.trainer import Trainer
        cfg_path = self.pretrain_config()
        work = self.tmp / "work"
        Trainer(Config.fromfile(str(cfg_path)), work, resume=None).save()
        return work / "latest.pth"

    # -- encoders
    def export(self, name: str = "enc.safetensors", nan: bool = False, seed: int = 0) -> Path:
        import torch

        from pretrain.checkpoint import export_encoder
        from pretrain.encoder import build_encoder
        torch.manual_seed(seed)
        model = build_encoder("vit_tiny_patch16_224", depth=1)
        if nan:
            with torch.no_grad():
                model.blocks[0].mlp.fc1.weight[0, 0] = float("nan")
        path = self.tmp / name
        export_encoder(model, path)
        self.reads(path)
        return path

    # -- data sets
    def davis(self):
        from synthetic.davis import write_davis
        d = write_davis(self.tmp / "DAVIS", n_sequences=1, frames=(4, 4), size=(64, 96), seed=7)
        self.reads(d.root)
        return d

    def coco(self) -> Path:
        from synthetic.coco import write_coco
        root = write_coco(self.tmp / "coco", n_train=2, n_val=1, height=64, width=80, seed=0)
        self.reads(root)
        return root

    def coco_json(self, root: Path, split: str = "train") -> tuple[Path, dict]:
        path = root / "annotations" / f"instances_{split}.json"
        return path, json.loads(path.read_text())

    def uavdt(self):
        from synthetic.uavdt import write_uavdt_tree
        tree = write_uavdt_tree(self.tmp / "uavdt", train=("M0101",), test=("M0203",), n_frames=2,
                                size=(96, 64), seed=5)
        self.reads(tree.root)
        return tree


def _davis_args(ctx, d, *extra):
    ckpt = ctx.keep.get("ckpt") or ctx.export()
    return ["--checkpoint", str(ckpt), "--data-root", str(d.root), "--arch", "vit_tiny",
            "--short-side", "64", "--device", "cpu", *extra]


def _first_annotation(d) -> Path:
    return d.root / "Annotations/480p" / d.sequences[0] / "00000.png"


# ------------------------------------------------------------------------------ setups
def s_pretrain_option(option):
    def setup(ctx):
        return [str(ctx.pretrain_config()), "--work-dir", str(ctx.tmp / "wd"), "--cfg-options", option]
    return setup


def s_pretrain_syntax(ctx):
    bad = ctx.tmp / "broken.py"
    bad.write_text("model = dict(arch='vit_small_patch16_224'\n")
    ctx.reads(bad)
    ctx.keep["file"] = bad
    return [str(bad), "--work-dir", str(ctx.tmp / "wd")]


def s_pretrain_workdir_under_file(ctx):
    blocker = ctx.tmp / "results.txt"
    blocker.write_text("a regular file\n")
    ctx.reads(blocker)
    ctx.keep["file"] = ctx.tmp / "results.txt" / "run1"
    return [str(ctx.pretrain_config()), "--work-dir", str(ctx.keep["file"])]


def s_pretrain_resume_corrupt(ctx):
    latest = ctx.training_checkpoint()
    flip_bytes(latest)
    ctx.reads(latest, Path(str(latest) + ".sha256"))
    ctx.keep["file"] = latest
    return [str(ctx.tmp / "tiny_pretrain.py"), "--work-dir", str(latest.parent)]


def s_pretrain_disk_full(ctx):
    latest = ctx.training_checkpoint()
    ctx.reads(latest, Path(str(latest) + ".sha256"))
    ctx.keep["file"] = latest
    ctx.limit_file_size = latest.stat().st_size // 2  # the next checkpoint cannot be written
    return [str(ctx.tmp / "tiny_pretrain.py"), "--work-dir", str(latest.parent)]


def s_pretrain_bomb(on_corrupt):
    def setup(ctx):
        images = ctx.images(4)
        ctx.keep["images"] = images
        ctx.keep["file"] = png_bomb(images / "bomb.png")
        # one batch holds every image, so the bomb is read in the first iteration
        return [str(ctx.pretrain_config(**{"data.batch_size_per_gpu": 5, "data.on_corrupt": on_corrupt})),
                "--work-dir", str(ctx.tmp / "wd")]
    return setup


def s_export_student_single(ctx):
    src = ctx.export()
    ctx.keep["file"] = src
    return [str(src), "--which", "student", "--out", str(ctx.tmp / "out.safetensors")]


def s_export_out_under_file(ctx):
    src = ctx.export()
    blocker = ctx.tmp / "notes.txt"
    blocker.write_text("x")
    ctx.reads(blocker)
    ctx.keep["file"] = ctx.tmp / "notes.txt" / "o.safetensors"
    return [str(src), "--out", str(ctx.keep["file"])]


def s_export_out_is_source(ctx):
    src = ctx.export()
    ctx.keep["file"] = src
    return [str(src), "--out", str(src)]


def s_export_malformed_spec(ctx):
    import torch
    from safetensors.torch import save_file
    path = ctx.tmp / "bad_spec.safetensors"
    save_file({"patch_embed.proj.weight": torch.zeros(192, 3, 16, 16)}, str(path),
              metadata={"format": "flsl-encoder", "flsl_spec": "{'arch': vit_small"})
    ctx.reads(path)
    ctx.keep["file"] = path
    return [str(path), "--out", str(ctx.tmp / "o.safetensors")]


def s_export_corrupt(ctx):
    src = ctx.export()
    flip_bytes(src, 0.6, 64)
    ctx.keep["file"] = src
    return [str(src), "--out", str(ctx.tmp / "o.safetensors")]


def s_convert_nan(ctx):
    src = ctx.export(nan=True)
    ctx.keep["file"] = src
    return [str(src), "--out", str(ctx.tmp / "o.safetensors")]


class _RunsCode:
    """Pickles as a call of os.system: what a hostile checkpoint carries."""

    def __reduce__(self):
        import os
        return (os.system, ("true",))


def s_convert_pickled_code(ctx):
    import torch
    path = ctx.tmp / "vits16_from_a_forum.pth"
    torch.save({"model": _RunsCode()}, path)
    ctx.reads(path)
    ctx.keep["file"] = path
    return [str(path), "--out", str(ctx.tmp / "o.safetensors")]


def s_convert_truncated(ctx):
    import torch
    from pretrain.encoder import build_encoder
    path = ctx.tmp / "dino_vits16.pth"
    torch.save(build_encoder("vit_tiny_patch16_224", depth=1).state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ctx.reads(path)
    ctx.keep["file"] = path
    return [str(path), "--out", str(ctx.tmp / "o.safetensors")]


def s_convert_int8(ctx):
    import torch
    from tests.benchmarks.conftest import dino_vit_state
    state = dino_vit_state(192, 1, 4)
    state["blocks.0.attn.qkv.weight"] = (100 * state["blocks.0.attn.qkv.weight"]).to(torch.int8)
    path = ctx.tmp / "quantised.pth"
    torch.save({"teacher": state}, path)
    ctx.reads(path)
    ctx.keep["file"] = path
    return [str(path), "--out", str(ctx.tmp / "o.safetensors")]


def s_convert_ambiguous(ctx):
    import torch
    from tests.benchmarks.conftest import dino_vit_state
    path = ctx.tmp / "backbone.pth"
    torch.save(dino_vit_state(192, 1, 4), path)      # DINO hub layout = a headless timm ViT
    ctx.reads(path)
    ctx.keep["file"] = path
    return [str(path), "--out", str(ctx.tmp / "o.safetensors")]


def s_davis_out(where):
    def setup(ctx):
        d = ctx.davis()
        out = d.root / where.format(seq=d.sequences[0])
        ctx.keep["file"] = out
        return _davis_args(ctx, d, "--out", str(out))
    return setup


def s_davis_option(*option):
    def setup(ctx):
        d = ctx.davis()
        return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"), *option)
    return setup


def s_davis_truncated_frame(ctx):
    d = ctx.davis()
    frame = d.root / "JPEGImages/480p" / d.sequences[0] / "00002.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size * 2 // 3])
    ctx.keep["file"] = frame
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_empty_first(ctx):
    from benchmarks.davis.io import write_index_png
    d = ctx.davis()
    first = _first_annotation(d)
    write_index_png(first, np.zeros(d.size, dtype=np.uint8))
    ctx.keep["file"] = first
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_stray_id(ctx):
    from benchmarks.davis.io import read_index_png, write_index_png
    d = ctx.davis()
    first = _first_annotation(d)
    mask = read_index_png(first)
    mask[0, 0] = 200  # one stray pixel
    write_index_png(first, mask)
    ctx.keep["file"] = first
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_nan(ctx):
    d = ctx.davis()
    ctx.keep["ckpt"] = ctx.export("nan.safetensors", nan=True)
    ctx.keep["file"] = ctx.keep["ckpt"]
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_bomb_annotation(ctx):
    d = ctx.davis()
    ann = d.root / "Annotations/480p" / d.sequences[0] / "00001.png"
    png_bomb(ann)
    ctx.keep["file"] = ann
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_config_type(ctx):
    d = ctx.davis()
    cfg = ctx.tmp / "davis_cfg.py"
    cfg.write_text("neighborhood = '12'\n")
    ctx.reads(cfg)
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"), "--config", str(cfg))


def s_davis_eval_into_annotations(ctx):
    d = ctx.davis()
    ctx.keep["file"] = d.root / "Annotations/480p"
    return ["--data-root", str(d.root), "--results", str(ctx.keep["file"])]


def s_coco_edit(edit):
    def setup(ctx):
        root = ctx.coco()
        path, coco = ctx.coco_json(root)
        named = edit(coco, root)
        path.write_text(json.dumps(coco))
        ctx.keep["file"] = named or path
        return [DENSE_CONFIG, "--work-dir", str(ctx.tmp / "w"), "--cfg-options", f"data_root={root}/",
                f"model.backbone.init_cfg.checkpoint={ctx.export()}"]
    return setup


def _set(key, value, index=0):
    def edit(coco, root):
        coco["annotations"][index][key] = value
    return edit


def _all_boxes_unusable(coco, root):
    for i, ann in enumerate(coco["annotations"]):
        ann["bbox"] = [[10, 10, 0, 5], [10, 10, -4, 8], [5000, 5000, 10, 10]][i % 3]


def _unreadable_image(coco, root):
    image = root / "train" / coco["images"][0]["file_name"]
    image.write_bytes(b"not an image at all")
    return image


def _no_annotations(coco, root):
    coco["annotations"] = []


def _truncated_image(coco, root):
    image = root / "train" / coco["images"][-1]["file_name"]
    image.write_bytes(image.read_bytes()[: image.stat().st_size * 2 // 3])
    return image


def s_dense_option(option):
    def setup(ctx):
        root = ctx.coco()
        return [DENSE_CONFIG, "--work-dir", str(ctx.tmp / "w"), "--cfg-options", f"data_root={root}/",
                f"model.backbone.init_cfg.checkpoint={ctx.export()}", option]
    return setup


def s_ade_unreadable_label(ctx):
    from synthetic.ade import write_ade
    root = write_ade(ctx.tmp / "ade", n_train=2, n_val=1, height=64, width=80, seed=0)
    ctx.reads(root)
    label = sorted((root / "annotations" / "training").glob("*.png"))[0]
    label.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    ctx.keep["file"] = label
    return ["tests/benchmarks/dense/configs/tiny_semfpn.py", "--work-dir", str(ctx.tmp / "w"),
            "--cfg-options", f"data_root={root}/", f"model.backbone.init_cfg.checkpoint={ctx.export()}"]


def s_test_encoder_file(ctx):
    root = ctx.coco()
    src = ctx.export()
    ctx.keep["file"] = src
    return [DENSE_CONFIG, str(src), "--work-dir", str(ctx.tmp / "t"), "--cfg-options", f"data_root={root}/"]


def s_test_truncated(ctx):
    import torch
    root = ctx.coco()
    path = ctx.tmp / "epoch_1.pth"
    torch.save({"meta": {}, "state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:3000])
    ctx.reads(path)
    ctx.keep["file"] = path
    return [DENSE_CONFIG, str(path), "--work-dir", str(ctx.tmp / "t"), "--cfg-options", f"data_root={root}/"]


def s_uavdt_bomb(ctx):
    tree = ctx.uavdt()
    frame = tree.root / "UAV-benchmark-M/M0101/img000002.jpg"
    png_bomb(frame)
    ctx.keep["file"] = frame
    return ["--data-root", str(tree.root), "--out", str(ctx.tmp / "ann"), "--no-progress"]


def s_uavdt_truncated_frame(ctx):
    tree = ctx.uavdt()
    frame = tree.root / "UAV-benchmark-M/M0203/img000002.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size * 2 // 3])
    ctx.keep["file"] = frame
    return ["--data-root", str(tree.root), "--out", str(ctx.tmp / "ann"), "--no-progress"]


def s_uavdt_out_under_file(ctx):
    tree = ctx.uavdt()
    blocker = ctx.tmp / "ann"
    blocker.write_text("x")
    ctx.reads(blocker)
    ctx.keep["file"] = blocker / "out"
    return ["--data-root", str(tree.root), "--out", str(ctx.keep["file"]), "--no-progress"]


def s_synthetic_out_under_file(ctx):
    blocker = ctx.tmp / "data"
    blocker.write_text("x")
    ctx.reads(blocker)
    ctx.keep["file"] = blocker / "coco"
    return ["coco", "--out", str(ctx.keep["file"]), "--n-train", "1", "--n-val", "1"]


def s_visualize_bomb(ctx):
    image = png_bomb(ctx.tmp / "bomb.png")
    ctx.reads(image)
    ctx.keep["file"] = image
    return ["--checkpoint", str(ctx.export()), str(image), "--out", str(ctx.tmp / "figures")]


# -- pretraining: data roots, view options, the work folder's lock, resumes
GENERATE = {"data.generate": dict(n_images=4, size=64, seed=0)}


def s_pretrain_generate_into(kind):
    def setup(ctx):
        images = ctx.images(4)
        for marker in (".flsl-generated", ".complete"):   # a folder of the user's own images
            (images / marker).unlink()
        ctx.keep["images"] = images
        cfg = ctx.pretrain_config(**GENERATE)
        target = images if kind == "user" else ctx.tmp / "mount"
        if kind == "empty":
            target.mkdir()
        ctx.reads(target)
        ctx.keep["file"] = target
        return [str(cfg), "--work-dir", str(ctx.tmp / "wd"), "--cfg-options", f"data.root={target}"]
    return setup


def s_pretrain_root_is_file(ctx):
    cfg = ctx.pretrain_config()
    image = next(ctx.keep.get("images", ctx.tmp / "images").rglob("*.jpg"))
    ctx.keep["file"] = image
    return [str(cfg), "--work-dir", str(ctx.tmp / "wd"), "--cfg-options", f"data.root={image}"]


def s_pretrain_too_few_images(ctx):
    ctx.keep["file"] = ctx.tmp / "images"
    return s_pretrain_option("data.batch_size_per_gpu=8")(ctx)


def _lock_of(pid: int) -> str:
    import socket

    from pretrain.lock import _start_time
    return json.dumps({"pid": pid, "host": socket.gethostname(), "started": _start_time(pid),
                       "command": "python tools/pretrain_flsl.py (another run)"})


def s_pretrain_locked(ctx):
    import os
    work = ctx.tmp / "wd"
    work.mkdir()
    (work / "run.lock").write_text(_lock_of(os.getpid()))   # the test process: alive, not the tool
    ctx.reads(work / "run.lock")
    ctx.keep["file"] = work
    return [str(ctx.pretrain_config()), "--work-dir", str(work)]


def s_pretrain_stale_lock(ctx):
    import subprocess
    work = ctx.tmp / "wd"
    work.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()                                              # ended and reaped: its id is free
    (work / "run.lock").write_text(_lock_of(gone.pid))
    ctx.keep["file"] = work / "run.lock"
    return [str(ctx.pretrain_config()), "--work-dir", str(work)]


def s_pretrain_resume_changed(option):
    """A training checkpoint of the tiny config (2 epochs), then the tool with ``option``."""
    def setup(ctx):
        from mmengine.config import Config

        from pretrain.trainer import Trainer
        cfg_path = ctx.pretrain_config(**{"train.epochs": 2})
        work = ctx.tmp / "work"
        Trainer(Config.fromfile(str(cfg_path)), work, resume=None).save()
        latest = work / "latest.pth"
        ctx.reads(latest, Path(str(latest) + ".sha256"))
        ctx.keep["file"] = latest
        extra = option(ctx) if callable(option) else option
        return [str(cfg_path), "--work-dir", str(work), "--cfg-options", extra]
    return setup


def _other_images(ctx):
    from synthetic.images import write_image_folder
    other = write_image_folder(ctx.tmp / "other_images", n_images=5, size=64, seed=2, n_classes=1)
    ctx.reads(other)
    return f"data.root={other}"


def s_pretrain_wide_image(ctx):
    from PIL import Image
    images = ctx.images(4)
    ctx.keep["images"] = images
    wide = images / "class_000" / "scan_16bit.png"
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)).save(wide)
    ctx.keep["file"] = wide
    # one batch holds every image, so the 16-bit one is read in the first iteration
    return [str(ctx.pretrain_config(**{"data.batch_size_per_gpu": 5})), "--work-dir", str(ctx.tmp / "wd")]


# -- DAVIS: output locations, a full disk, two checkpoints, an unfinished run
def s_davis_out_is_file(ctx):
    d = ctx.davis()
    out = ctx.tmp / "pred.txt"
    out.write_text("a file where the predictions folder should go\n")
    ctx.reads(out)
    ctx.keep["file"] = out
    return _davis_args(ctx, d, "--out", str(out))


def s_davis_out_long_name(ctx):
    d = ctx.davis()
    ctx.keep["file"] = ctx.tmp / ("p" * 300)
    return _davis_args(ctx, d, "--out", str(ctx.keep["file"]))


def s_davis_disk_full(ctx):
    d = ctx.davis()
    ctx.limit_file_size = 700    # the record (about 450 bytes) fits, no label-map PNG (900) does
    ctx.keep["file"] = ctx.tmp / "pred" / d.sequences[0] / "00000.png"
    return _davis_args(ctx, d, "--out", str(ctx.tmp / "pred"))


def s_davis_other_checkpoint(ctx):
    from core.errors import cli_main

    from .test_bad_inputs import load_tool
    d = ctx.davis()
    out = ctx.tmp / "pred"
    first = ctx.export("a.safetensors")
    assert cli_main(load_tool("davis_propagate.py").main, _davis_args(ctx, d, "--out", str(out))) == 0
    ctx.reads(out)
    ctx.keep["file"] = out
    ctx.keep["ckpt"] = ctx.export("b.safetensors", seed=1)
    assert first != ctx.keep["ckpt"]
    return _davis_args(ctx, d, "--out", str(out))


def s_davis_eval_unfinished(ctx):
    from core.errors import cli_main

    from .test_bad_inputs import load_tool
    d = ctx.davis()
    out = ctx.tmp / "pred"
    assert cli_main(load_tool("davis_propagate.py").main, _davis_args(ctx, d, "--out", str(out))) == 0
    record = json.loads((out / "predictions.json").read_text())
    record["sequences"] = []   # as a run stopped while writing the sequence leaves it
    (out / "predictions.json").write_text(json.dumps(record))
    ctx.reads(out)
    ctx.keep["file"] = out / d.sequences[0]
    return ["--data-root", str(d.root), "--results", str(out)]


# -- UAVDT ground truth
def s_uavdt_gt(edit):
    def setup(ctx):
        tree = ctx.uavdt()
        gt = tree.root / "UAV-benchmark-MOTD_v1.0/GT/M0101_gt_whole.txt"
        gt.write_text(edit(gt.read_text()))
        ctx.keep["file"] = gt
        return ["--data-root", str(tree.root), "--out", str(ctx.tmp / "ann"), "--no-progress"]
    return setup


def s_uavdt_out_in_root(ctx):
    tree = ctx.uavdt()
    ctx.keep["file"] = tree.root / "UAV-benchmark-M" / "annotations"
    return ["--data-root", str(tree.root), "--out", str(ctx.keep["file"]), "--no-progress"]


def s_uavdt_out_is_root(ctx):
    tree = ctx.uavdt()
    ctx.keep["file"] = tree.root
    return ["--data-root", str(tree.root), "--out", str(tree.root), "--no-progress"]


# -- results store, leaderboard, probes
def s_damaged_store(command):
    def setup(ctx):
        store = ctx.tmp / "results.db"
        store.write_bytes(b"a text file where the results store should be" * 4)
        ctx.reads(store)
        ctx.keep["file"] = store
        return [*command(ctx), "--store", str(store)]
    return setup


def s_probe_missing_data(ctx):
    ctx.keep["file"] = ctx.tmp / "ade"
    return ["--checkpoint", str(ctx.export()), "--data-root", str(ctx.keep["file"]), "--out", str(ctx.tmp / "probe"),
            "--protocol", "linear", "--dataset", "ade20k"]


def s_probe_unwritable_kernel_cache(ctx):
    """The kernel cache's root is a regular file (root ignores permission bits, so a file stands in
    for a read-only home): the probe runs with PyTorch's loss after one warning."""
    from synthetic.ade import write_ade
    ctx.keep["file"] = ctx.tmp / "cache-root"
    ctx.keep["file"].write_text("a file, not a folder\n")
    ctx.env["FLSL_CACHE_DIR"] = str(ctx.keep["file"])
    ade = write_ade(ctx.tmp / "ade", n_train=2, n_val=1, height=48, width=64)
    ctx.reads(ade, ctx.keep["file"])
    return ["--checkpoint", str(ctx.export()), "--data-root", str(ade), "--out", str(ctx.tmp / "probe"),
            "--protocol", "linear", "--dataset", "ade20k", "--cfg-options", "train.iters=1", "train.warmup_iters=1",
            "train.batch_size=1", "train.short_side=32", "train.crop_size=(32,32)", "test.short_side=32",
            "test.crop_size=(32,32)", "test.stride=(22,22)", "train.views=1", "train.seeds=[0]",
            f"cache.root={ctx.tmp / 'features'}"]


def _file(ctx):
    return str(ctx.keep["file"])


def _key(key):
    return lambda ctx: key


# ------------------------------------------------------------------------------ the registry
CASES = [
    # --- tools/pretrain.py
    Case("pretrain-unknown-key", "pretrain_flsl.py", "`--cfg-options train.epochz=2` (misspelt key)",
         "error: train.epochz: unknown key in --cfg-options (did you mean train.epochs?)",
         s_pretrain_option("train.epochz=2"), _key("train.epochz"), mode="subprocess"),
    Case("pretrain-epochs-abc", "pretrain_flsl.py", "`--cfg-options train.epochs=abc`",
         "error: train.epochs='abc' (--cfg-options): expected an integer, as the config's 1",
         s_pretrain_option("train.epochs=abc"), _key("train.epochs"), mode="subprocess"),
    Case("pretrain-epochs-0", "pretrain_flsl.py", "`train.epochs=0` (used to export a random encoder)",
         "error: train.epochs: must be an integer >= 1, got 0 (<config>)",
         s_pretrain_option("train.epochs=0"), _key("train.epochs"), mode="subprocess"),
    Case("pretrain-batch-0", "pretrain_flsl.py", "`data.batch_size_per_gpu=0`",
         "error: data.batch_size_per_gpu: must be an integer >= 1, got 0 (<config>)",
         s_pretrain_option("data.batch_size_per_gpu=0"), _key("data.batch_size_per_gpu"), mode="subprocess"),
    Case("pretrain-unknown-arch", "pretrain_flsl.py", "`model.arch=vit_nonsense`",
         "error: model.arch: must be a timm ViT name such as 'vit_small_patch16_224', got 'vit_nonsense' (<config>)",
         s_pretrain_option("model.arch=vit_nonsense"), _key("model.arch"), mode="subprocess"),
    Case("pretrain-on-corrupt", "pretrain_flsl.py", "`data.on_corrupt=ignore`",
         "error: data.on_corrupt: must be one of 'error', 'skip', got 'ignore' (<config>)",
         s_pretrain_option("data.on_corrupt=ignore"), _key("data.on_corrupt"), mode="subprocess"),
    Case("pretrain-config-syntax", "pretrain_flsl.py", "a config file with a syntax error",
         "error: <broken.py>: cannot be read (SyntaxError: '(' was never closed (<file>, line 1))",
         s_pretrain_syntax, _file, mode="subprocess"),
    Case("pretrain-workdir-under-file", "pretrain_flsl.py", "`--work-dir` under a regular file",
         "error: <file>/run1 (--work-dir): cannot be created: <file> is a file, not a folder",
         s_pretrain_workdir_under_file, _file, mode="subprocess"),
    Case("pretrain-resume-corrupt", "pretrain_flsl.py", "resuming from a `latest.pth` with 4 KB of flipped bytes",
         "error: <work>/latest.pth: SHA-256 <digest>... does not match latest.pth.sha256 (<digest>...): the "
         "file changed after it was written (corrupted, truncated or replaced; if you replaced it on purpose, "
         "delete latest.pth.sha256); no other checkpoint in <work> has a matching digest",
         s_pretrain_resume_corrupt, _file, mode="subprocess"),
    Case("pretrain-disk-full", "pretrain_flsl.py", "the disk fills while a checkpoint is written (file-size limit)",
         "error: <work>/latest.pth: writing the checkpoint failed (<reason>; <n> MiB free on that disk); the "
         "previous checkpoint is unchanged",
         s_pretrain_disk_full, _file, mode="subprocess"),
    Case("pretrain-bomb", "pretrain_flsl.py", "a PNG declaring 30000x30000 pixels in the data (decompression bomb)",
         "error: cannot read image <images>/bomb.png: Image size (900000000 pixels) exceeds limit of "
         "<limit> pixels, could be decompression bomb DOS attack.",
         s_pretrain_bomb("error"), _file, mode="subprocess"),
    Case("pretrain-bomb-skip", "pretrain_flsl.py", "the same with `data.on_corrupt=skip`: skipped, training goes on",
         "<time> warning: skipping unreadable image (replaced by the next one): cannot read image <images>/bomb.png: "
         "Image size (900000000 pixels) exceeds limit of <limit> pixels, could be decompression bomb DOS attack.",
         s_pretrain_bomb("skip"), _file, status=0, mode="subprocess"),
    Case("pretrain-generate-into-user-folder", "pretrain_flsl.py",
         "`data.root=DIR` (the user's images) on a config with `data.generate` (used to overwrite them)",
         "error: <images> (data.root, with data.generate set): exists and holds files the generator did not "
         "write; generated data is written only into a folder the generator creates (or one it marked with "
         ".flsl-generated): give a path that does not exist yet; to train on the images there instead, drop "
         "the generator: --cfg-options data.generate=None",
         s_pretrain_generate_into("user"), _file),
    Case("pretrain-generate-into-empty-folder", "pretrain_flsl.py",
         "an existing empty `data.root` (an unmounted mount point) with `data.generate` (used to be filled)",
         "error: <mount> (data.root, with data.generate set): exists and is empty; generated data is written "
         "only into a folder the generator creates (or one it marked with .flsl-generated): give a path that "
         "does not exist yet; to train on the images there instead, drop the generator: --cfg-options "
         "data.generate=None",
         s_pretrain_generate_into("empty"), _file),
    Case("pretrain-root-is-file", "pretrain_flsl.py", "`data.root` naming a regular file",
         "error: <image>.jpg (data.root): is a file, not a folder of images",
         s_pretrain_root_is_file, _file),
    Case("pretrain-too-few-images", "pretrain_flsl.py", "4 images and `data.batch_size_per_gpu=8`",
         "error: <images> (data.root): 4 image(s), fewer than one global batch (data.batch_size_per_gpu=8 x 1 "
         "process(es)); add images or lower data.batch_size_per_gpu",
         s_pretrain_too_few_images, _file),
    Case("pretrain-depth-0", "pretrain_flsl.py", "`model.arch_kwargs.depth=0` (used to export an encoder "
         "without blocks)",
         "error: model.arch_kwargs: depth must be an integer >= 1, got 0, got <kwargs> (<config>)",
         s_pretrain_option("model.arch_kwargs.depth=0"), _key("model.arch_kwargs")),
    Case("pretrain-teacher-scale-reversed", "pretrain_flsl.py", "`data.views.teacher_scale=[1.0,0.5]`",
         "error: data.views: teacher_scale must be a list [low, high] with 0 < low <= high <= 1, got [1.0, 0.5], "
         "got <views> (<config>)",
         s_pretrain_option("data.views.teacher_scale=[1.0,0.5]"), _key("data.views")),
    Case("pretrain-global-size-8", "pretrain_flsl.py", "`data.views.global_size=8` (half a patch)",
         "error: data.views.global_size: must be a multiple of the patch size 16 (model.arch "
         "'vit_tiny_patch16_224'), got 8 (<config>)",
         s_pretrain_option("data.views.global_size=8"), _key("data.views.global_size")),
    Case("pretrain-global-size-65", "pretrain_flsl.py", "`data.views.global_size=65`",
         "error: data.views.global_size: must be a multiple of the patch size 16 (model.arch "
         "'vit_tiny_patch16_224'), got 65 (<config>)",
         s_pretrain_option("data.views.global_size=65"), _key("data.views.global_size")),
    Case("pretrain-global-window-100", "pretrain_flsl.py", "`data.views.global_window=100`",
         "error: data.views.global_window: a 96-pixel view has 6x6 tokens of 16 pixels, fewer than the "
         "sampling window 100 (data.views.global_size / global_window) (<config>)",
         s_pretrain_option("data.views.global_window=100"), _key("data.views.global_window")),
    Case("pretrain-patch-size-7", "pretrain_flsl.py", "`model.arch_kwargs.patch_size=7` (96-pixel views)",
         "error: data.views.global_size: must be a multiple of the patch size 7 (model.arch_kwargs.patch_size), "
         "got 96 (<config>)",
         s_pretrain_option("model.arch_kwargs.patch_size=7"), _key("model.arch_kwargs.patch_size")),
    Case("pretrain-work-dir-locked", "pretrain_flsl.py", "`--work-dir` of a run still going (its `run.lock`)",
         "error: <wd> (--work-dir): in use by running process <pid> (python tools/pretrain_flsl.py (another "
         "run)); wait for it to end, stop it, or choose another --work-dir",
         s_pretrain_locked, _file, mode="subprocess"),
    Case("pretrain-stale-lock", "pretrain_flsl.py", "`run.lock` of a run that was killed: taken over",
         "<time> warning: <wd>/run.lock: taking over the lock of process <pid>, which is no longer running "
         "(an interrupted run)",
         s_pretrain_stale_lock, _file, status=0, mode="subprocess"),
    Case("pretrain-resume-fewer-epochs", "pretrain_flsl.py", "resuming a 2-epoch run with `train.epochs=1` "
         "(used to report it complete and export the longer run's teacher)",
         "error: <work>/latest.pth: holds a run of 2 epochs (0 of 2 iterations done), the config now asks for "
         "train.epochs=1; the learning-rate, momentum and temperature schedules span the whole run, so the "
         "resumed run would follow neither: train.epochs=2 to keep it, or start afresh with --no-resume or "
         "another --work-dir",
         s_pretrain_resume_changed("train.epochs=1"), _file, mode="subprocess"),
    Case("pretrain-resume-other-data", "pretrain_flsl.py", "resuming with another `data.root`",
         "error: <work>/latest.pth: was trained on <images> (4 images), data.root <other> holds other images "
         "(5, another file list); point data.root at the run's images to keep it, or start afresh with "
         "--no-resume or another --work-dir",
         s_pretrain_resume_changed(_other_images), _file, mode="subprocess"),
    Case("pretrain-resume-changed-head", "pretrain_flsl.py", "resuming with `model.out_dim` changed",
         "error: <work>/latest.pth (student): does not match the model of the config: shape mismatches: "
         "head.last_layer.weight: checkpoint (64, 32) vs model (32, 32)",
         s_pretrain_resume_changed("model.out_dim=32"), _file, mode="subprocess"),
    Case("pretrain-16-bit-image", "pretrain_flsl.py", "a 16-bit PNG among the images (used to be clipped to "
         "white)",
         "<time> warning: <images>/class_000/scan_16bit.png: 16-bit image (mode I;16) scaled from 16 to 8 bits "
         "for training; convert the data set to 8-bit images to silence this",
         s_pretrain_wide_image, _file, status=0, mode="subprocess"),
    # --- exports and conversion
    Case("export-student-single", "export_backbone.py", "`--which student` on a file holding one encoder",
         "error: <enc.safetensors>: holds a single encoder (no 'student' entry), so there is no student to "
         "choose; --which student applies to training checkpoints",
         s_export_student_single, _file),
    Case("export-out-under-file", "export_backbone.py", "`--out` under a regular file",
         "error: <notes.txt>/o.safetensors (--out): cannot be created: <notes.txt> is a file, not a folder",
         s_export_out_under_file, _file),
    Case("export-out-is-source", "export_backbone.py", "`--out` equal to the file being read",
         "error: <enc.safetensors> (--out): would write into the input <enc.safetensors>; choose an output "
         "outside the data and checkpoints the tool reads",
         s_export_out_is_source, _file),
    Case("export-malformed-spec", "export_backbone.py", "a .safetensors whose `flsl_spec` metadata is not JSON",
         "error: <bad_spec.safetensors>: malformed flsl_spec metadata (JSONDecodeError: <detail>)",
         s_export_malformed_spec, _file),
    Case("export-corrupt", "export_backbone.py", "an export with flipped bytes (its .sha256 kept)",
         "error: <enc.safetensors>: SHA-256 <digest>... does not match enc.safetensors.sha256 (<digest>...): "
         "the file changed after it was written (corrupted, truncated or replaced; if you replaced it on "
         "purpose, delete enc.safetensors.sha256); no other checkpoint in <dir> has a matching digest",
         s_export_corrupt, _file),
    Case("convert-nan", "convert_checkpoint.py", "an encoder holding NaN weights",
         "error: <enc.safetensors>: 1 tensor(s) hold NaN or infinite values (blocks.0.mlp.fc1.weight)",
         s_convert_nan, _file),
    Case("convert-int8", "convert_checkpoint.py", "an encoder with integer (quantised) weights",
         "error: <quantised.pth>: 1 encoder tensor(s) are not floating point (blocks.0.attn.qkv.weight "
         "(int8)): a quantised or integer checkpoint; dequantise it to float first",
         s_convert_int8, _file),
    Case("convert-ambiguous-family", "convert_checkpoint.py",
         "a class-token ViT without a head (DINO's and a headless timm ViT's layout)",
         "error: <backbone.pth>: it holds a class-token ViT with a learned 17-entry table (class slot) and "
         "no classifier head: <why>, so the family cannot be told from the content: it is one of dino "
         "<(title)>, timm <(title)>. Say which with --family NAME (family= in Python and backbone "
         "configs), e.g. --family dino",
         s_convert_ambiguous, _file),
    Case("convert-truncated", "convert_checkpoint.py", "a .pth cut in half (no digest beside it)",
         "error: <dino_vits16.pth>: not a readable checkpoint, truncated or corrupted (PytorchStreamReader "
         "failed reading zip archive: failed finding central directory)",
         s_convert_truncated, _file),
    Case("convert-pickled-code", "convert_checkpoint.py", "a .pth whose pickle would call `os.system` "
         "(used to be called truncated or corrupted)",
         "error: <vits16_from_a_forum.pth>: cannot be loaded safely (weights_only=True): it holds the Python "
         "object posix.system, which only full unpickling can rebuild. If you trust the file, convert it once "
         "with tools/convert_checkpoint.py --trust-pickle.",
         s_convert_pickled_code, _file),
    # --- DAVIS
    Case("davis-out-annotations", "davis_propagate.py", "`--out DAVIS/Annotations/480p` (the ground truth)",
         "error: <DAVIS>/Annotations/480p (--out): would write into the input <DAVIS>/Annotations; choose an "
         "output outside the data and checkpoints the tool reads",
         s_davis_out("Annotations/480p"), _file),
    Case("davis-out-frames", "davis_propagate.py", "`--out` inside `DAVIS/JPEGImages`",
         "error: <DAVIS>/JPEGImages/480p/<seq> (--out): would write into the input <DAVIS>/JPEGImages; "
         "choose an output outside the data and checkpoints the tool reads",
         s_davis_out("JPEGImages/480p/{seq}"), _file),
    Case("davis-batch-size-zero", "davis_propagate.py", "`--batch-size 0`",
         "error: argument --batch-size: 0 must be at least 1 (see davis_propagate.py --help)",
         s_davis_option("--batch-size", "0"), _key("--batch-size"), mode="subprocess"),
    Case("davis-split-climbs", "davis_propagate.py", "`--split ../val` (a split name leaving its folder)",
         "error: argument --split: '../val' is not a plain name (letters, digits, '_', '.', '-'; no '/' or "
         "'..') (see davis_propagate.py --help)",
         s_davis_option("--split", "../val"), _key("--split"), mode="subprocess"),
    Case("davis-truncated-frame", "davis_propagate.py", "a JPEG frame cut short",
         "error: <DAVIS>/JPEGImages/480p/<seq>/00002.jpg: truncated JPEG frame (no end-of-image marker in its "
         "last <n> bytes of <n>); re-extract or re-download it",
         s_davis_truncated_frame, _file),
    Case("davis-empty-first", "davis_propagate.py", "a first-frame annotation with no object",
         "error: <DAVIS>/Annotations/480p/<seq>/00000.png: the first-frame annotation holds no object (only "
         "background 0 and void 255); there is nothing to propagate or score",
         s_davis_empty_first, _file),
    Case("davis-stray-id", "davis_propagate.py", "one stray pixel of id 200 in the first annotation (legal)",
         "warning: <DAVIS>/Annotations/480p/<seq>/00000.png: first-frame ids 1, 200: 198 of the ids 1..200 are "
         "absent, so 198 objects with empty masks are scored (each J = F = 1 when predicted empty), as the "
         "official evaluation does; check for stray pixels if that is not intended",
         s_davis_stray_id, _file, status=0),
    Case("davis-nan", "davis_propagate.py", "an encoder with NaN weights",
         "error: <nan.safetensors>: 1 tensor(s) hold NaN or infinite values (blocks.0.mlp.fc1.weight)",
         s_davis_nan, _file),
    Case("davis-bomb", "davis_propagate.py", "an annotation PNG declaring 30000x30000 pixels",
         "error: <DAVIS>/Annotations/480p/<seq>/00001.png: unreadable annotation (Image size (900000000 "
         "pixels) exceeds limit of <limit> pixels, could be decompression bomb DOS attack.)",
         s_davis_bomb_annotation, _file),
    Case("davis-config-type", "davis_propagate.py", "`neighborhood = '12'` (a string) in the protocol config",
         "error: neighborhood: expected an integer, got '12' (<davis_cfg.py>)",
         s_davis_config_type, _key("neighborhood")),
    Case("davis-eval-into-annotations", "davis_eval.py", "`--results DAVIS/Annotations/480p`",
         "error: <DAVIS>/Annotations/480p (--results): would write into the input <DAVIS>/Annotations; choose "
         "an output outside the data and checkpoints the tool reads",
         s_davis_eval_into_annotations, _file),
    Case("davis-out-is-file", "davis_propagate.py", "`--out` naming an existing file",
         "error: <pred.txt> (--out): is a file; a folder is needed here",
         s_davis_out_is_file, _file),
    Case("davis-out-long-name", "davis_propagate.py", "`--out` with a 300-byte name",
         "error: <pred> (--out): a name of 300 bytes (pppppppppppppppppppppppp...), more than the 255 the "
         "file system allows",
         s_davis_out_long_name, _file),
    Case("davis-out-in-data-root", "davis_propagate.py", "`--out` inside the DAVIS folder (beside its "
         "subfolders)",
         "error: <DAVIS>/pred (--out): would write into the input <DAVIS>; choose an output outside the data "
         "and checkpoints the tool reads",
         s_davis_out("pred"), _file),
    Case("davis-disk-full", "davis_propagate.py", "the disk fills while label maps are written (file-size "
         "limit; used to leave 0-byte PNGs)",
         "error: <pred>/<seq>/00000.png: cannot be written (File too large); nothing was written",
         s_davis_disk_full, _file, mode="subprocess"),
    Case("davis-other-checkpoint", "davis_propagate.py", "`--out` holding predictions of another checkpoint",
         "error: <pred> (--out): holds predictions made otherwise (checkpoint: '<a>.safetensors' there, "
         "'<b>.safetensors' now; checkpoint_sha256: '<digest>' there, '<digest>' now); give another folder, or "
         "delete this one to replace them",
         s_davis_other_checkpoint, _file),
    Case("davis-eval-unfinished", "davis_eval.py", "predictions of a sequence its run did not finish",
         "error: <pred>/<seq>: not recorded as complete in <pred>/predictions.json (its run, of <enc>, did not "
         "finish it; 1 of 1 sequences missing); run davis_propagate for them into this folder",
         s_davis_eval_unfinished, _file),
    # --- dense (MMDetection)
    Case("coco-category-list", "train.py", "`category_id` given as a list `[1]`",
         "error: <coco>/annotations/instances_train.json: annotations[0] (id <n>): category_id must be an "
         "integer, found [1]",
         s_coco_edit(_set("category_id", [1])), _file, needs=("mmdet",)),
    Case("coco-category-dangling", "train.py", "`category_id` 99, not among the file's categories",
         "error: <coco>/annotations/instances_train.json: annotations[0] (id <n>) refers to category_id 99, "
         "not listed in the file",
         s_coco_edit(_set("category_id", 99)), _file, needs=("mmdet",)),
    Case("coco-string-bbox", "train.py", "a `bbox` given as the string \"10 20 30 40\"",
         "error: <coco>/annotations/instances_train.json: annotations[0] (id <n>) needs a 4-number 'bbox' "
         "[x, y, width, height], found '10 20 30 40'",
         s_coco_edit(_set("bbox", "10 20 30 40")), _file, needs=("mmdet",)),
    Case("coco-bad-rle", "train.py", "an RLE whose runs do not cover its mask",
         "error: <coco>/annotations/instances_train.json: annotations[0] (id <n>): segmentation RLE 'counts' "
         "cover 30 pixels with 0 negative run(s); a 64x80 mask has 5120",
         s_coco_edit(_set("segmentation", {"size": [64, 80], "counts": [10, 20]})), _file, needs=("mmdet",)),
    Case("coco-unreadable-image", "train.py", "a listed image that is not an image",
         "error: <coco>/train/<name>.jpg: unreadable image listed in <coco>/annotations/instances_train.json "
         "(cannot identify image file <name>)",
         s_coco_edit(_unreadable_image), _file, needs=("mmdet",)),
    Case("coco-truncated-image", "train.py", "a listed JPEG image cut short (its header intact)",
         "error: <coco>/train/<name>.jpg: truncated JPEG image listed in <coco>/annotations/instances_train.json "
         "(no end-of-image marker in its last <n> bytes of <n>); re-extract or re-download it",
         s_coco_edit(_truncated_image), _file, needs=("mmdet",)),
    Case("coco-all-boxes-unusable", "train.py", "every box zero-area, negative or outside the image",
         "error: <coco>/annotations/instances_train.json: none of the <n> boxes is usable (zero or negative "
         "size, zero area, or outside the image; first: annotations[0] (id <n>) bbox [10, 10, 0, 5] in a "
         "80x64 image); training would see no object",
         s_coco_edit(_all_boxes_unusable), _file, needs=("mmdet",)),
    Case("coco-no-annotations", "train.py", "a training file with `\"annotations\": []` (used to stop with "
         "a traceback on an empty data set)",
         "error: <coco>/annotations/instances_train.json: holds no annotation (\"annotations\": []); training "
         "would see no object",
         s_coco_edit(_no_annotations), _file, needs=("mmdet",)),
    Case("ade-unreadable-label", "train.py", "an ADE20K label map that is not an image (MMSegmentation)",
         "error: <ade>/annotations/training/<name>.png: unreadable label map (cannot identify image file <name>)",
         s_ade_unreadable_label, _file, needs=("mmseg",)),
    Case("dense-max-epochs-abc", "train.py", "`--cfg-options train_cfg.max_epochs=abc`",
         "error: train_cfg.max_epochs='abc' (--cfg-options): expected an integer, as the config's 1",
         s_dense_option("train_cfg.max_epochs=abc"), _key("train_cfg.max_epochs"), needs=("mmdet",)),
    Case("test-encoder-as-checkpoint", "test.py", "an encoder .safetensors given as the detector checkpoint",
         "error: <enc.safetensors>: does not match the model of the config: missing keys (<n>): <keys> ... | "
         "unexpected keys (<n>): <keys> ...",
         s_test_encoder_file, _file, mode="subprocess", needs=("mmdet",)),
    Case("test-truncated", "test.py", "a truncated `epoch_1.pth`",
         "error: <epoch_1.pth>: not a readable checkpoint, truncated or corrupted (PytorchStreamReader failed "
         "reading zip archive: failed finding central directory)",
         s_test_truncated, _file, mode="subprocess", needs=("mmdet",)),
    # --- UAVDT and generated data
    Case("uavdt-bomb", "uavdt2coco.py", "a frame declaring 30000x30000 pixels",
         "error: <uavdt>/UAV-benchmark-M/M0101/img000002.jpg: cannot read the image (Image size (900000000 "
         "pixels) exceeds limit of <limit> pixels, could be decompression bomb DOS attack.)",
         s_uavdt_bomb, _file),
    Case("uavdt-truncated-frame", "uavdt2coco.py", "a JPEG frame cut short (its header intact)",
         "error: <uavdt>/UAV-benchmark-M/M0203/img000002.jpg: truncated JPEG frame (no end-of-image marker "
         "in its last <n> bytes of <n>); re-extract or re-download it",
         s_uavdt_truncated_frame, _file),
    Case("uavdt-out-under-file", "uavdt2coco.py", "`--out` under a regular file",
         "error: <ann>/out (--out): cannot be created: <ann> is a file, not a folder",
         s_uavdt_out_under_file, _file),
    Case("uavdt-empty-ground-truth", "uavdt2coco.py", "an empty `_gt_whole.txt` (used to convert to a "
         "sequence without boxes)",
         "error: <uavdt>/UAV-benchmark-MOTD_v1.0/GT/M0101_gt_whole.txt: holds no box; every sequence of the "
         "release has boxes, so the file was cut or not copied: copy it again from the release",
         s_uavdt_gt(lambda text: ""), _file),
    Case("uavdt-duplicated-line", "uavdt2coco.py", "a ground-truth line written twice (used to double the "
         "box)",
         "warning: <uavdt>/UAV-benchmark-MOTD_v1.0/GT/M0101_gt_whole.txt:<n>: 1 duplicated line(s) dropped, "
         "each box counted once (the first is line 1 repeated: <line>)",
         s_uavdt_gt(lambda text: text + text.splitlines()[0] + "\n"), _file, status=0),
    Case("uavdt-out-in-frames", "uavdt2coco.py", "`--out` inside the frames folder it reads",
         "error: <uavdt>/UAV-benchmark-M/annotations (--out): would write into the input "
         "<uavdt>/UAV-benchmark-M; choose an output outside the data and checkpoints the tool reads",
         s_uavdt_out_in_root, _file),
    Case("uavdt-out-is-root", "uavdt2coco.py", "`--out` equal to the UAVDT folder",
         "error: <uavdt> (--out): is the UAVDT folder itself; give the COCO files a folder of their own (the "
         "configs read <uavdt>/annotations)",
         s_uavdt_out_is_root, _file),
    Case("synthetic-out-under-file", "make_synthetic.py", "`--out` under a regular file",
         "error: <data>/coco (--out): cannot be created: <data> is a file, not a folder",
         s_synthetic_out_under_file, _file),
    # --- results store, leaderboard, probes
    Case("results-damaged-store", "results.py", "`--store` naming a file that is not a results store",
         "error: <results.db>: damaged or not a results store (no SQLite header); move it aside to start a "
         "new store",
         s_damaged_store(lambda ctx: ["list"]), _file),
    Case("leaderboard-damaged-store", "leaderboard.py", "`build --store` naming a file that is not a "
         "results store",
         "error: <results.db>: damaged or not a results store (no SQLite header); move it aside to start a "
         "new store",
         s_damaged_store(lambda ctx: ["build", "--out", str(ctx.tmp / "site")]), _file),
    Case("probe-missing-data-root", "probe.py", "`--data-root` that does not exist",
         "error: <ade> (--data-root): not a folder",
         s_probe_missing_data, _file),
    Case("probe-unwritable-kernel-cache", "probe.py", "`FLSL_CACHE_DIR` that cannot hold the loss kernel's "
         "build (a read-only home)",
         "warning: seg_ce.c could not be built in <cache>/native (<reason>): it runs as plain PyTorch, slower",
         s_probe_unwritable_kernel_cache, _file, status=0, mode="subprocess"),
    # --- figures
    Case("visualize-bomb", "visualize.py", "an image declaring 30000x30000 pixels",
         "error: <bomb.png>: cannot read image (Image size (900000000 pixels) exceeds limit of <limit> "
         "pixels, could be decompression bomb DOS attack.)",
         s_visualize_bomb, _file),
]


# ------------------------------------------------------------------------------ docs/errors.md
DOC = REPO / "docs" / "errors.md"


def render_doc() -> str:
    lines = [
        "# Bad inputs and what the tools answer",
        "",
        "Generated from `tests/reliability/cases.py` (`python -m tests.reliability.cases --write`); every",
        "row is a test of `tests/reliability/test_bad_inputs.py` that runs the tool on that input and",
        "checks the exit status, that the last `error:` (or `warning:`) line matches the message shown",
        "(`<...>` stands for a path of the test's folder, a digest or a count) and names the file or key,",
        "and that no file the tool reads changed. Errors end the tool with exit status 2; warnings",
        "(legal but suspicious input) let it finish with 0.",
        "",
        "| tool | bad input | exit | message |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        msg = c.message.replace("|", "\\|")
        lines.append(f"| `{c.tool}` | {c.bad_input} | {c.status} | `{msg}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    if "--write" in sys.argv:
        DOC.write_text(render_doc())
        print(f"wrote {DOC}")
    else:
        print(render_doc())
