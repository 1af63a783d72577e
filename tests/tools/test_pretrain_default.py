"""The README's main command: `tools/pretrain.sh` with no arguments trains the tiny default on
generated images, then its exported backbone loads through timm with strict key matching."""
import json
import os
import subprocess

import timm
import torch

from pretrain.checkpoint import load_pretrained_encoder, safetensors_metadata
from pretrain.encoder import EncoderSpec, encode


def test_default_pretraining_run_and_timm_load(repo_root, tmp_path):
    work = tmp_path / "default"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", str(repo_root / "tools/pretrain.sh"), "--work-dir", str(work)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # progress display: iteration counter, loss parts, lr, throughput, ETA
    lines = [ln for ln in proc.stdout.splitlines() if "img/s" in ln]
    assert len(lines) >= 5 and all("ms " in ln and "km " in ln and "vmr " in ln and "ETA" in ln for ln in lines)
    records = [json.loads(ln) for ln in (work / "log.jsonl").read_text().splitlines()]
    assert records[-1]["iteration"] == 80
    assert all(torch.isfinite(torch.tensor([r["loss"] for r in records])))
    out = work / "backbone.safetensors"
    spec = EncoderSpec.from_json(safetensors_metadata(out)["flsl_spec"])
    model = timm.create_model(spec.arch, pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(out), custom_load=False), **spec.timm_kwargs())
    ours, info = load_pretrained_encoder(work / "latest.pth")  # the training state's teacher
    assert info.format == "flsl-train"
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().forward_features(x), encode(ours.eval(), x))
    # the exported teacher is trained, not the initial weights (the trainer seeds 0 before building)
    from pretrain.model import FLSLNet
    torch.manual_seed(0)
    initial = FLSLNet(spec, 0.1, 512, 512, 128).backbone.state_dict()
    exported = model.state_dict()
    moved = [k for k in initial if k != "pos_embed" and not torch.equal(initial[k], exported[k])]
    assert len(moved) == len(initial) - 1, "some exported tensors still hold their initial values"
