"""Generated stand-ins of the probes' data sets (release layouts, converted with the suite's own
converters) and tiny class-token encoders, shared by the probe tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]


def encoder_file(path: Path, seed: int) -> Path:
    from pretrain.checkpoint import export_encoder
    from pretrain.encoder import build_encoder
    torch.manual_seed(seed)
    export_encoder(build_encoder("vit_tiny_patch16_224", depth=4, img_size=64, class_token=True), path)
    return path


@pytest.fixture(scope="session")
def probe_data(tmp_path_factory):
    from benchmarks.probes.datasets import convert_cityscapes, convert_voc_aug
    from synthetic.ade import write_ade
    from synthetic.probes import write_cityscapes, write_nyu, write_spair, write_voc
    base = tmp_path_factory.mktemp("probe_data")
    voc, sbd = write_voc(base / "voc")
    convert_voc_aug(voc, sbd)
    city = write_cityscapes(base / "cityscapes")
    convert_cityscapes(city)
    return {"ade20k": write_ade(base / "ade", n_train=4, n_val=2, height=48, width=64),
            "voc2012": voc, "cityscapes": city, "nyu": write_nyu(base / "nyu", n_train=3, n_test=2),
            "spair": write_spair(base / "spair"),
            "ckpt": encoder_file(base / "enc_a.safetensors", 0), "ckpt_b": encoder_file(base / "enc_b.safetensors", 1)}


@pytest.fixture(scope="session")
def probe_tool():
    """tools/probe.py's ``main``, run in this process through :func:`core.errors.cli_main`."""
    spec = importlib.util.spec_from_file_location("probe_tool", ROOT / "tools" / "probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from core.errors import cli_main
    return lambda argv: cli_main(module.main, [str(a) for a in argv])
