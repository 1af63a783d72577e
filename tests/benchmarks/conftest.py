"""Fixtures for the dense-benchmark tests: tiny encoders and checkpoints in every supported
layout, written here from the documented key layouts (dense.md, "Checkpoints consumed")."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from pretrain.checkpoint import export_encoder
from pretrain.encoder import build_encoder

TINY16 = dict(depth=4, img_size=64)               # vit_tiny: width 192, 3 heads, patch 16
TINY8 = dict(depth=4, img_size=64, patch_size=8)


def tiny_encoder(patch: int = 16, seed: int = 0, **overrides):
    """A tiny FLSL encoder with random (non-default) weights everywhere, position embedding included."""
    torch.manual_seed(seed)
    model = build_encoder("vit_tiny_patch16_224", **{**(TINY16 if patch == 16 else TINY8), **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model.eval()


def with_class_token(state: dict, seed: int = 1) -> dict:
    """DINO-style layout: add a class token and a class slot in front of the position embedding."""
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    c = state["pos_embed"].shape[-1]
    out["cls_token"] = torch.randn(1, 1, c, generator=g)
    out["pos_embed"] = torch.cat([torch.randn(1, 1, c, generator=g), state["pos_embed"]], dim=1)
    return out


def write_format(fmt: str, model, folder: Path, student=None) -> Path:
    """Write ``model``'s weights as ``fmt``; returns the file. ``student`` (another encoder) fills
    the student entry where the format has one."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    c = state["pos_embed"].shape[-1]
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
    if fmt == "flsl-authors":  # {"student": {"module.backbone.*"}, "teacher": {"backbone.*"}}
        sstate = {k: v.detach().clone() for k, v in (student or model).state_dict().items()}
        head = {"head.mlp.0.weight": torch.randn(8, c), "head.last_layer.weight_g": torch.ones(16, 1)}
        teacher = {f"backbone.{k}": v for k, v in with_class_token(state).items()}
        teacher.update(head)
        stud = {f"module.backbone.{k}": v for k, v in with_class_token(sstate).items()}
        stud.update({f"module.{k}": v for k, v in head.items()})
        path = folder / "flsl_vit_tiny_checkpoint.pth"
        torch.save({"student": stud, "teacher": teacher, "epoch": 3,
                    "args": argparse.Namespace(arch="vit_tiny", patch_size=16)}, path)
        return path
    if fmt == "dino":  # a bare ViT state dict with class token and 1+N positions
        path = folder / "dino_deittiny16_pretrain.pth"
        torch.save(with_class_token(state), path)
        return path
    if fmt == "ibot":  # {"state_dict": ViT with class token + iBOT's mask embedding}
        sd = with_class_token(state)
        sd["masked_embed"] = torch.zeros(1, c)
        path = folder / "ibot_checkpoint_teacher.pth"
        torch.save({"state_dict": sd}, path)
        return path
    if fmt in ("timm", "timm-safetensors"):  # timm VisionTransformer with class token and head
        sd = with_class_token(state)
        sd["head.weight"], sd["head.bias"] = torch.randn(7, c), torch.zeros(7)
        if fmt == "timm":
            path = folder / "vit_tiny_timm.pth"
            torch.save(sd, path)
        else:
            from safetensors.torch import save_file
            path = folder / "model.safetensors"
            save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        return path
    raise ValueError(fmt)


FORMATS = ("flsl-export", "flsl-train", "flsl-authors", "dino", "ibot", "timm", "timm-safetensors")


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
