"""Propagation + evaluation end to end on the generated set with a tiny random encoder."""
import json
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from benchmarks.davis.features import load_extractor
from benchmarks.davis.io import read_index_png, sequence_files
from benchmarks.davis.metrics import read_csv
from benchmarks.davis.pipeline import propagate_sequence
from benchmarks.davis.propagation import PropagationParams
from speed.reference.davis import reference_global, reference_propagate, reference_scores


def _run(repo_root, python, tool, *args):
    return subprocess.run([python, f"tools/{tool}", *map(str, args)], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def propagated(repo_root, venv_python, davis_small, tiny_checkpoint, tmp_path_factory):
    """tools/davis_propagate.py --evaluate with a config file, as a user runs it."""
    out = tmp_path_factory.mktemp("pred")
    cfg = out.parent / "tiny_davis.py"
    cfg.write_text("_base_ = ['{}']\narch = 'vit_tiny'\npatch_size = 16\nshort_side = 96\n"
                   "batch_size = 4\n".format(repo_root / "configs/davis/_base_/davis_protocol.py"))
    proc = _run(repo_root, venv_python, "davis_propagate.py", "--config", cfg, "--checkpoint",
                tiny_checkpoint, "--data-root", davis_small.root, "--out", out, "--evaluate")
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_propagate_writes_every_frame_and_the_csvs(propagated, davis_small):
    out, stdout = propagated
    for i, seq in enumerate(davis_small.sequences, 1):
        pngs = sorted((out / seq).glob("*.png"))
        assert [p.stem for p in pngs] == [f"{t:05d}" for t in range(davis_small.n_frames[seq])]
        with Image.open(pngs[3]) as im:
            assert im.mode == "P" and im.size == (160, 96)
        np.testing.assert_array_equal(read_index_png(pngs[0]), davis_small.labels[seq][0])
        assert re.search(rf"\[{i}/4\] {seq}: {davis_small.n_frames[seq]} frames in", stdout)
        ids = np.unique(np.stack([read_index_png(p) for p in pngs[1:]]))
        assert set(ids.tolist()) <= set(range(davis_small.n_objects[seq] + 1))
    rows = read_csv(out / "global_results-val.csv")
    assert list(rows[0]) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert all(re.fullmatch(r"-?\d\.\d{3}", v) for v in rows[0].values())
    per = read_csv(out / "per-sequence_results-val.csv")
    assert len(per) == 8 and per[0]["Sequence"] == f"{davis_small.sequences[0]}_1"
    assert "Global results for val" in stdout


def test_eval_tool_gives_the_in_memory_numbers(propagated, repo_root, venv_python, davis_small):
    out, _ = propagated
    before = {p: (out / p).read_text() for p in ("global_results-val.csv", "per-sequence_results-val.csv")}
    doc = json.loads((out / "davis_results.json").read_text())
    proc = _run(repo_root, venv_python, "davis_eval.py", "--data-root", davis_small.root,
                "--results", out, "--split", "val")
    assert proc.returncode == 0, proc.stderr
    for p, text in before.items():
        assert (out / p).read_text() == text
    assert json.loads((out / "davis_results.json").read_text()) == doc
    assert f"{doc['global']['J&F-Mean']:.3f}" in proc.stdout


def test_suite_matches_the_literal_procedures(davis_small, tiny_checkpoint, propagated):
    """The fast path gives the label maps of DINO's procedure written literally, and the
    numbers of the official scoring procedure written literally (speed/reference/davis.py)."""
    ex = load_extractor(tiny_checkpoint, "vit_tiny", 16)
    params = PropagationParams()
    per_seq = []
    for seq in davis_small.sequences[:2]:
        files = sequence_files(davis_small.root, seq)
        fast = [m for _, m in propagate_sequence(ex, files, params, short_side=96, batch_size=3)]
        ref = reference_propagate(ex, files, params, short_side=96)
        for a, b in zip(fast, ref):
            np.testing.assert_array_equal(a, b)
        saved = [read_index_png(propagated[0] / seq / f"{t:05d}.png") for t in range(len(fast))]
        np.testing.assert_array_equal(np.stack(saved), np.stack(fast))
        gt = davis_small.labels[seq]
        per_seq.append((seq, *reference_scores(gt[1:-1], np.stack(fast)[1:-1], davis_small.n_objects[seq])))
    g, per_obj = reference_global(per_seq)
    doc = json.loads((propagated[0] / "davis_results.json").read_text())
    for name, (jm, fm) in per_obj.items():
        assert doc["per_object"][name]["J-Mean"] == pytest.approx(jm, abs=1e-12)
        assert doc["per_object"][name]["F-Mean"] == pytest.approx(fm, abs=1e-12)
