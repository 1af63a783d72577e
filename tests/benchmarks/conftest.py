"""Fixtures for the dense-benchmark tests: tiny encoders and checkpoints in the real layouts of
each release, built the way that release builds its files (docs/dense.md, "Checkpoints consumed").

* our export / training state: written by this project's own code;
* the FLSL authors' release: DINO's ViT built, then made class-token free after construction as
  their ``make_vit_noclass`` does (``cls_token`` left in the state dict, unused; ``pos_embed`` cut
  to the N patch entries and overwritten by their fixed sine-cosine table), saved as their
  training loop saves it: ``{"student": DDP "module.backbone.*" / "module.head.*", "teacher":
  "backbone.*" / "head.*", "optimizer", "epoch", "args": argparse.Namespace, "flsl_loss",
  "fp16_scaler"}``;
* DINO: ``dino_deitsmall16_pretrain.pth`` is the bare backbone state dict (class token, 1 + N
  positions); its full checkpoints have the training layout above with ``dino_loss``;
* iBOT: ``checkpoint_teacher.pth`` is ``{"state_dict": backbone}``; full checkpoints have the
  training layout with ``ibot_loss`` and the student's ``masked_embed``;
* timm: a timm ``VisionTransformer``'s own ``state_dict()`` (class token, classifier head), as
  ``.pth`` or hub ``model.safetensors``.

File names are neutral on purpose: formats are detected from the content.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder

TINY16 = dict(depth=4, img_size=64)               # vit_tiny: width 192, 3 heads, patch 16
TINY8 = dict(depth=4, img_size=64, patch_size=8)


def tiny_encoder(patch: int = 16, seed: int = 0, **overrides):
    """A tiny FLSL encoder with random (non-default) weights in every trained tensor; the position
    embedding stays the fixed sine-cosine table, as in a real FLSL encoder."""
    torch.manual_seed(seed)
    model = build_encoder("vit_tiny_patch16_224", **{**(TINY16 if patch == 16 else TINY8), **overrides})
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    return model.eval()


# ---------------------------------------------------------------- release layouts
def authors_sincos_table(width: int, grid: int) -> torch.Tensor:
    """The FLSL authors' fixed table ``[1, grid * grid, width]``: MAE's numpy recipe in float64
    (first half of the channels from the column index, ``[sin, cos]`` per half,
    ``omega = 1 / 10000 ** (k / (width / 4))``), then ``torch.tensor(..., dtype=float32)``."""
    def one_axis(dim, pos):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=float) / (dim / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    g = np.arange(grid, dtype=np.float32)
    cols, rows = np.meshgrid(g, g)            # "w goes first"
    table = np.concatenate([one_axis(width // 2, cols), one_axis(width // 2, rows)], axis=1)
    return torch.tensor(table, dtype=torch.float32)[None]


def dino_vit_state(width: int = 192, depth: int = 2, grid: int = 14, patch: int = 16,
                   seed: int = 1) -> dict:
    """Tensors of DINO's ``VisionTransformer`` (qkv bias, MLP ratio 4, ``num_classes=0``: no head):
    keys and shapes as its ``state_dict()``. Values are random and of "trained" size everywhere
    (LayerNorm scales around 1, non-zero biases, a class token and positions that matter)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.05, mean=0.0):
        return mean + std * torch.randn(*shape, generator=g)
    c = width
    state = {"cls_token": rnd(1, 1, c, std=1.0), "pos_embed": rnd(1, 1 + grid * grid, c, std=0.5),
             "patch_embed.proj.weight": rnd(c, 3, patch, patch, std=0.02),
             "patch_embed.proj.bias": rnd(c, std=0.02)}
    for i in range(depth):
        p = f"blocks.{i}."
        state.update({
            p + "norm1.weight": rnd(c, std=0.1, mean=1.0), p + "norm1.bias": rnd(c),
            p + "attn.qkv.weight": rnd(3 * c, c, std=0.08), p + "attn.qkv.bias": rnd(3 * c),
            p + "attn.proj.weight": rnd(c, c), p + "attn.proj.bias": rnd(c),
            p + "norm2.weight": rnd(c, std=0.1, mean=1.0), p + "norm2.bias": rnd(c),
            p + "mlp.fc1.weight": rnd(4 * c, c), p + "mlp.fc1.bias": rnd(4 * c),
            p + "mlp.fc2.weight": rnd(c, 4 * c), p + "mlp.fc2.bias": rnd(c)})
    state.update({"norm.weight": rnd(c, std=0.1, mean=1.0), "norm.bias": rnd(c)})
    return state


def make_class_token_free(state: dict) -> dict:
    """The authors' ``make_vit_noclass`` on a state dict: ``cls_token`` untouched (left in the
    module, unused), ``pos_embed`` cut to the patch entries and overwritten by the fixed table."""
    out = dict(state)
    n = state["pos_embed"].shape[1] - 1
    out["pos_embed"] = authors_sincos_table(state["pos_embed"].shape[-1], int(round(n ** 0.5)))
    return out


def projection_head_state(width: int, out_dim: int = 64, hidden: int = 32, bottleneck: int = 16,
                          seed: int = 2) -> dict:
    """DINOHead / FLSLhead tensors (3-layer MLP, weight-normalised last layer without bias)."""
    g = torch.Generator().manual_seed(seed)
    return {"mlp.0.weight": torch.randn(hidden, width, generator=g), "mlp.0.bias": torch.zeros(hidden),
            "mlp.2.weight": torch.randn(hidden, hidden, generator=g), "mlp.2.bias": torch.zeros(hidden),
            "mlp.4.weight": torch.randn(bottleneck, hidden, generator=g), "mlp.4.bias": torch.zeros(bottleneck),
            "last_layer.weight_g": torch.ones(out_dim, 1),
            "last_layer.weight_v": torch.randn(out_dim, bottleneck, generator=g)}


def training_file(student: dict, teacher: dict, loss_key: str, loss_state: dict, args) -> dict:
    """A DINO-family training checkpoint as their loops save it: the student wrapped in DDP
    (``module.`` prefix), the teacher not (no batch norm, no DDP), both MultiCropWrapper /
    ModelWrapper modules (``backbone.`` and ``head.``)."""
    width = teacher["pos_embed"].shape[-1]
    head = projection_head_state(width)
    stud = {f"module.backbone.{k}": v for k, v in student.items()}
    stud.update({f"module.head.{k}": v.clone() for k, v in head.items()})
    teach = {f"backbone.{k}": v for k, v in teacher.items()}
    teach.update({f"head.{k}": v.clone() for k, v in head.items()})
    n_params = len(stud)
    optimizer = {"state": {i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(1),
                               "exp_avg_sq": torch.zeros(1)} for i in range(2)},
                 "param_groups": [{"lr": 1e-4, "weight_decay": 0.04, "params": list(range(n_params - 10))},
                                  {"lr": 1e-4, "weight_decay": 0.0, "params": list(range(n_params - 10, n_params))}]}
    return {"student": stud, "teacher": teach, "optimizer": optimizer, "epoch": 300, "args": args,
            loss_key: loss_state, "fp16_scaler": {"scale": 65536.0, "growth_factor": 2.0,
                                                  "backoff_factor": 0.5, "growth_interval": 2000,
                                                  "_growth_tracker": 17}}


def _authors_args(**kw):
    return argparse.Namespace(arch="vit_small", patch_size=16, out_dim=4096, norm_last_layer=True,
                              use_fp16=True, warmup_epochs=0.1, epochs=300, sin_cos_pos_emb=True, **kw)


def write_format(fmt: str, model, folder: Path, student=None) -> Path:
    """Write the class-token-free FLSL encoder ``model`` in layout ``fmt`` (``flsl-export``,
    ``flsl-train`` or ``flsl-authors``); returns the file. ``student`` (another encoder) fills
    the student entry where the layout has one."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "flsl-export":
        path = folder / "flsl_export.safetensors"
        export_encoder(model, path)
        return path
    if fmt == "flsl-train":  # our pretraining state: teacher / student / meta with the architecture
        path = folder / "latest.pth"
        sstate = (student or model).state_dict()
        torch.save({"teacher": {f"backbone.{k}": v for k, v in state.items()},
                    "student": {f"backbone.{k}": v.detach().clone() for k, v in sstate.items()},
                    "meta": {"flsl_spec": model.flsl_spec.to_json(), "epoch": 1}}, path)
        return path
    if fmt == "flsl-authors":
        # DINO's ViT made class-token free: the class token stays, untrained (trunc-normal init)
        g = torch.Generator().manual_seed(11)
        c = state["pos_embed"].shape[-1]
        grid = int(round(state["pos_embed"].shape[1] ** 0.5))
        table = authors_sincos_table(c, grid)
        torch.testing.assert_close(table, state["pos_embed"], rtol=0, atol=1e-6)  # a real FLSL table
        sstate = {k: v.detach().clone() for k, v in (student or model).state_dict().items()}
        teacher = {"cls_token": 0.02 * torch.randn(1, 1, c, generator=g), **state, "pos_embed": table}
        stud = {"cls_token": teacher["cls_token"].clone(), **sstate, "pos_embed": table.clone()}
        path = folder / "checkpoint.pth"
        torch.save(training_file(stud, teacher, "flsl_loss",
                                 {"volume_maximization.prior": torch.full((1, 64), -4.1589)},
                                 _authors_args()), path)
        return path
    raise ValueError(fmt)


FORMATS = ("flsl-export", "flsl-train", "flsl-authors")


@dataclasses.dataclass
class Release:
    """A written release file and what the source network is."""
    path: Path
    kind: str            # one of RELEASES
    family: str          # "dino" (DINO's ViT), "authors" (class-token-free FLSL), "timm"
    state: dict          # the source network's encoder tensors (the teacher where there are two)
    heads: int = 3
    timm_model: object = None   # the timm module itself, for "timm" files


RELEASES = ("dino", "dino-train", "ibot", "ibot-train", "timm", "timm-safetensors", "authors")


def write_release(kind: str, folder: Path, depth: int = 2, grid: int = 14, seed: int = 1) -> Release:
    """Write a ViT-Tiny/16 (width 192, 3 heads, ``depth`` blocks, ``grid`` x ``grid`` stored
    positions) in the layout of release ``kind`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("model.safetensors" if kind == "timm-safetensors" else "checkpoint.pth")
    if kind.startswith("timm"):
        import timm
        torch.manual_seed(seed)
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7, depth=depth,
                                  img_size=grid * 16)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
            model.cls_token.normal_()
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        if kind == "timm":
            torch.save(state, path)
        else:
            from safetensors.torch import save_file
            save_file(state, str(path))
        return Release(path, kind, "timm", state, timm_model=model.eval())
    teacher = dino_vit_state(192, depth, grid, seed=seed)
    student = dino_vit_state(192, depth, grid, seed=seed + 100)
    if kind == "dino":
        torch.save(teacher, path)
        return Release(path, kind, "dino", teacher)
    if kind == "dino-train":
        torch.save(training_file(student, teacher, "dino_loss", {"center": torch.zeros(1, 64)},
                                 argparse.Namespace(arch="vit_small", patch_size=16)), path)
        return Release(path, kind, "dino", teacher)
    if kind == "ibot":
        torch.save({"state_dict": teacher}, path)
        return Release(path, kind, "dino", teacher)
    if kind == "ibot-train":
        student["masked_embed"] = torch.zeros(1, 192)
        torch.save(training_file(student, teacher, "ibot_loss",
                                 {"center": torch.zeros(1, 64), "center2": torch.zeros(1, 64)},
                                 argparse.Namespace(arch="vit_small", patch_size=16)), path)
        return Release(path, kind, "dino", teacher)
    if kind == "authors":
        teacher, student = make_class_token_free(teacher), make_class_token_free(student)
        torch.save(training_file(student, teacher, "flsl_loss",
                                 {"volume_maximization.prior": torch.full((1, 64), -4.1589)},
                                 _authors_args()), path)
        return Release(path, kind, "authors", teacher)
    raise ValueError(kind)


@pytest.fixture(scope="session")
def tiny16():
    return tiny_encoder(16)


@pytest.fixture(scope="session")
def tiny16_ckpt(tiny16, tmp_path_factory) -> Path:
    return write_format("flsl-export", tiny16, tmp_path_factory.mktemp("tiny16"))


@pytest.fixture(scope="session")
def tiny8():
    return tiny_encoder(8)


@pytest.fixture(scope="session")
def tiny8_ckpt(tiny8, tmp_path_factory) -> Path:
    return write_format("flsl-export", tiny8, tmp_path_factory.mktemp("tiny8"))


# ---------------------------------------------------------------- running the tools
def run_tool(repo_root: Path, *args, timeout: int = 600):
    """Run ``tools/<script>`` (a .sh through bash, a .py with this interpreter) from the repo root."""
    import os
    import subprocess
    import sys
    script = repo_root / "tools" / args[0]
    cmd = ["bash", str(script)] if script.suffix == ".sh" else [sys.executable, str(script)]
    # one thread: tiny models gain little from two, and a busy machine makes OpenMP threads
    # wait on each other (10x slower iterations were measured with two threads under load)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore::FutureWarning")
    return subprocess.run(cmd + [str(a) for a in args[1:]], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=timeout)


def logged_scalars(work_dir: Path) -> list[dict]:
    """The scalar records MMEngine's LocalVisBackend wrote (one JSON object per logging step)."""
    import json
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    assert files, f"no scalars.json under {work_dir}"
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]


def last_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""
