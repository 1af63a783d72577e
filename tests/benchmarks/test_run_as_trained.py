"""Every checkpoint runs as the network it was trained as (docs/dense.md, docs/davis.md).

Release layouts of DINO, iBOT, timm and the FLSL authors (tests/benchmarks/conftest.py) go through
the MMDetection and MMSegmentation backbone (block outputs before the adapter) and the DAVIS
feature extractor; both must equal an independent forward of the source family's ViT:

* DINO / iBOT: speed/reference/vit.py, DINO's ViT written out in float64 (class token prepended,
  ``interpolate_pos_encoding`` with the +0.1 scale factor);
* the authors' release: the same without the class token (their ``make_vit_noclass``);
* timm: timm's own ``VisionTransformer`` (``dynamic_img_size``: timm's resampling).

at the stored 224 px and at a non-square size, relative difference <= 1e-5.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.davis.features import load_extractor
from pretrain.checkpoint import CheckpointError, load_encoder_weights, load_pretrained_encoder, safetensors_metadata
from speed.reference.vit import dino_vit_forward, relative_difference
from tests.benchmarks.conftest import RELEASES, write_release

SIZES = [(224, 224), (160, 256)]
TOLERANCE = 1e-5
EXPECTED = {"dino": ("dino", True, "dino"), "dino-train": ("dino", True, "dino"),
            "ibot": ("ibot", True, "dino"), "ibot-train": ("ibot", True, "dino"),
            "timm": ("timm", True, "timm"), "timm-safetensors": ("timm", True, "timm"),
            "authors": ("flsl-authors", False, "dino")}


@pytest.fixture(scope="module", params=RELEASES)
def release(request, tmp_path_factory):
    return write_release(request.param, tmp_path_factory.mktemp(request.param))


def reference(release, images):
    """Block outputs (patch tokens) and final features of the source family's own network."""
    if release.family == "timm":
        import timm
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7, depth=2,
                                  dynamic_img_size=True).eval()
        model.load_state_dict(release.state, strict=True)
        outs = []
        hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o[:, 1:])) for b in model.blocks]
        with torch.no_grad():
            final = model.forward_features(images)[:, 1:]
        for h in hooks:
            h.remove()
        return outs, final
    return dino_vit_forward(release.state, images, heads=3, class_token=release.family == "dino")


#: a bare DINO backbone has a headless timm ViT's keys and shapes: its family is named
FAMILY = {"dino": "dino"}


def mm_backbone(scope: str, path, family=None):
    import importlib
    importlib.import_module(f"{scope}.utils").register_all_modules(init_default_scope=False)
    import benchmarks.dense.backbone  # noqa: F401 - registers FLSLViT
    registry = importlib.import_module(f"{scope}.registry").MODELS
    model = registry.build(dict(type="FLSLViT", arch="vit_tiny_patch16_224", out_indices=(0, 1, 0, 1),
                                adapter="single_scale", encoder_kwargs=dict(depth=2), family=family,
                                init_cfg=dict(type="Pretrained", checkpoint=str(path))))
    model.init_weights()
    return model.eval()


def test_detection_is_from_content(release):
    fmt, class_token, positions = EXPECTED[release.kind]
    if release.kind in FAMILY:
        with pytest.raises(CheckpointError, match="--family"):
            load_encoder_weights(release.path)
    loaded = load_encoder_weights(release.path, family=FAMILY.get(release.kind))
    assert (loaded.format, loaded.spec.class_token, loaded.spec.positions) == (fmt, class_token, positions)
    assert ("cls_token" in loaded.state_dict) == class_token
    if release.kind == "authors":
        assert "unused" in loaded.dropped["cls_token"] and loaded.state_dict["pos_embed"].shape[1] == 196


@pytest.mark.parametrize("size", SIZES)
def test_mmdet_backbone_blocks_equal_the_family_network(release, size):
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(3))
    ref_blocks, _ = reference(release, images)
    model = mm_backbone("mmdet", release.path, FAMILY.get(release.kind))
    with torch.no_grad():
        maps = model(images)
    h, w = size[0] // 16, size[1] // 16
    for got, want in zip(maps, [ref_blocks[i] for i in (0, 1, 0, 1)]):
        assert got.shape == (2, 192, h, w)
        rel = relative_difference(got.flatten(2).transpose(1, 2), want)
        assert rel <= TOLERANCE, rel


@pytest.mark.parametrize("size", SIZES)
def test_davis_features_equal_the_family_network(release, size):
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    _, ref_final = reference(release, images)
    extractor = load_extractor(release.path, "vit_tiny", 16, family=FAMILY.get(release.kind))
    got = extractor(images)
    assert got.shape == (2, size[0] // 16 * size[1] // 16, 192)
    rel = relative_difference(got, ref_final)
    assert rel <= TOLERANCE, rel
    assert extractor.rule == {"dino": "dino", "authors": "flsl", "timm": "timm"}[release.family]


def test_the_class_token_and_the_rule_matter():
    """The checks above can fail: DINO's network without its class token, or with timm's
    resampling, differs from DINO's own forward by far more than the tolerance."""
    release = write_release("dino", __import__("pathlib").Path(__import__("tempfile").mkdtemp()))
    images = torch.randn(1, 3, 160, 256, generator=torch.Generator().manual_seed(5))
    _, ref = dino_vit_forward(release.state, images, heads=3)
    no_cls = {**release.state, "pos_embed": release.state["pos_embed"][:, 1:]}
    _, without = dino_vit_forward(no_cls, images, heads=3, class_token=False)
    assert relative_difference(without, ref) > 100 * TOLERANCE
    import timm
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2,
                              dynamic_img_size=True).eval()
    model.load_state_dict(release.state, strict=True)
    with torch.no_grad():
        timm_rule = model.forward_features(images)[:, 1:]
    assert relative_difference(timm_rule, ref) > 100 * TOLERANCE


# ---------------------------------------------------------------- the authors' release end to end
@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    return write_release("authors", tmp_path_factory.mktemp("authors"))


def _tool(repo_root, *args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=repo_root, capture_output=True,
                          text=True, timeout=300)


def test_authors_release_converts_and_runs_in_both_frameworks(authors, tmp_path, repo_root):
    out = tmp_path / "authors.safetensors"
    proc = _tool(repo_root, "tools/convert_checkpoint.py", authors.path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "detected format: flsl-authors" in proc.stdout and "runs as: no class token" in proc.stdout
    assert "cls_token (unused" in proc.stdout and "head.mlp.0.weight" in proc.stdout
    assert "not read: args, epoch, flsl_loss, fp16_scaler, optimizer, student" in proc.stdout
    assert '"class_token"' not in safetensors_metadata(out)["flsl_spec"]   # stays class-token free
    model, loaded = load_pretrained_encoder(out)
    assert model.cls_token is None and loaded.state_dict["pos_embed"].shape == (1, 196, 192)
    for size in SIZES:
        images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(6))
        ref_blocks, _ = reference(authors, images)
        for scope in ("mmdet", "mmseg"):
            for path in (authors.path, out):
                with torch.no_grad():
                    maps = mm_backbone(scope, path)(images)
                assert relative_difference(maps[1].flatten(2).transpose(1, 2), ref_blocks[1]) <= TOLERANCE


def test_authors_release_through_davis_propagate_and_visualize(authors, tmp_path, repo_root):
    from synthetic.davis import write_davis
    davis = write_davis(tmp_path / "DAVIS", n_sequences=1, frames=(4, 4), size=(64, 96), seed=3)
    converted = tmp_path / "authors.safetensors"
    assert _tool(repo_root, "tools/convert_checkpoint.py", authors.path, "--out", converted).returncode == 0
    results = {}
    for name, ckpt in (("release", authors.path), ("export", converted)):
        out = tmp_path / f"pred_{name}"
        proc = _tool(repo_root, "tools/davis_propagate.py", "--checkpoint", ckpt, "--data-root", davis.root,
                     "--out", out, "--arch", "vit_tiny", "--patch-size", "16", "--short-side", "64",
                     "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
        assert "flsl rule" in proc.stdout
        results[name] = {p.name: np.asarray(Image.open(p)) for p in sorted(out.rglob("*.png"))}
    assert results["release"] and results["release"].keys() == results["export"].keys()
    for key in results["release"]:
        np.testing.assert_array_equal(results["release"][key], results["export"][key])

    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(image)
    figures = {}
    for name, ckpt in (("release", authors.path), ("export", converted)):
        out = tmp_path / f"fig_{name}"
        proc = _tool(repo_root, "tools/visualize.py", "--checkpoint", ckpt, image, "--out", out, "--short-side", "64", "--k", "3")
        assert proc.returncode == 0, proc.stderr
        figures[name] = (out / "frame_clusters.png").read_bytes()
    assert "format flsl-authors" in _tool(repo_root, "tools/visualize.py", "--checkpoint", authors.path, image, "--out",
                                          tmp_path / "again", "--short-side", "64", "--k", "3").stdout
    assert figures["release"] == figures["export"]
