"""The speed-oriented paths give the numbers of the plain ones: the evaluation tool as a whole
process against the official evaluator restated (speed/reference/davis_eval.py), its imports,
parallel scoring against serial scoring, and the threaded propagation against one thread."""
import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.davis.evaluate import Scorer, evaluate_folder
from benchmarks.davis.features import load_extractor
from benchmarks.davis.io import VOID, read_index_png, read_palette, sequence_files, write_index_png
from benchmarks.davis.pipeline import propagate_sequence, propagate_split
from benchmarks.davis.propagation import PropagationParams
from speed.reference import davis_eval


def _shifted(data, out, shift=(2, 3)):
    for seq in data.sequences:
        pal = read_palette(data.root / "Annotations/480p" / seq / "00000.png")
        for t, lab in enumerate(data.labels[seq]):
            m = np.roll(np.where(lab == VOID, 0, lab), shift, axis=(0, 1)).astype(np.uint8)
            write_index_png(out / seq / f"{t:05d}.png", m, pal)
    return out


def test_eval_process_equals_the_official_procedure_and_imports_no_torch(davis_small, repo_root, tmp_path):
    ours, ref = _shifted(davis_small, tmp_path / "ours"), _shifted(davis_small, tmp_path / "ref")
    proc = subprocess.run([sys.executable, "-X", "importtime", "tools/davis_eval.py", "--data-root",
                           str(davis_small.root), "--results", str(ours), "--quiet"],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    # Pillow neither: label maps of the usual layout are decoded by benchmarks/davis/png.py
    assert "numpy" in imported and not imported & {"torch", "mmengine", "cv2", "scipy", "timm", "PIL"}
    proc = subprocess.run([sys.executable, "-m", "speed.reference.davis_eval", "--data-root",
                           str(davis_small.root), "--results", str(ref)],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (ours / name).read_text() == (ref / name).read_text()
    # and the full-precision numbers equal the restated official computation in this process
    g, per_object = davis_eval.reference_evaluate(str(davis_small.root), str(ref))
    doc = json.loads((ours / "davis_results.json").read_text())
    assert doc["global"]["J&F-Mean"] == pytest.approx(g["J&F-Mean"], abs=1e-12)
    for name, (jm, fm) in per_object.items():
        assert doc["per_object"][name]["J-Mean"] == pytest.approx(jm, abs=1e-12)
        assert doc["per_object"][name]["F-Mean"] == pytest.approx(fm, abs=1e-12)


def test_parallel_scoring_equals_serial_and_reports_the_first_bad_sequence(davis_small, tmp_path):
    out = _shifted(davis_small, tmp_path / "pred")
    serial, parallel = evaluate_folder(davis_small.root, out, workers=1), evaluate_folder(davis_small.root, out, workers=4)
    assert [s.name for s in parallel.sequences] == [s.name for s in serial.sequences] == davis_small.sequences
    for a, b in zip(serial.sequences, parallel.sequences):
        np.testing.assert_array_equal(a.J, b.J)
        np.testing.assert_array_equal(a.F, b.F)
    # two damaged sequences: the error names the first one in split order, as a serial run does
    first, later = davis_small.sequences[1], davis_small.sequences[3]
    (out / later / "00002.png").unlink()
    (out / first / "00001.png").unlink()
    with pytest.raises(Exception, match=f"{first}/00001.png: prediction not found"):
        evaluate_folder(davis_small.root, out, workers=4)


_FORKED = """
import json, sys
import numpy as np
from benchmarks.davis import evaluate
root, out = sys.argv[1], sys.argv[2]
assert evaluate._can_fork(), "a fresh interpreter without torch should fork"
serial = evaluate.evaluate_folder(root, out, workers=1)
forked = evaluate.evaluate_folder(root, out, workers=2)  # this process: 0, 2; the child: 1, 3
assert [s.name for s in forked.sequences] == [s.name for s in serial.sequences]
for a, b in zip(serial.sequences, forked.sequences):
    assert np.array_equal(a.J, b.J) and np.array_equal(a.F, b.F), a.name
# the system refuses the second process: the child started is reaped, threads do the work
real_fork, calls = evaluate.os.fork, []
def refusing_fork():
    calls.append(1)
    if len(calls) > 1:
        raise OSError(11, "Resource temporarily unavailable")
    return real_fork()
evaluate.os.fork = refusing_fork
limited = evaluate.evaluate_folder(root, out, workers=3)
evaluate.os.fork = real_fork
assert len(calls) == 2
for a, b in zip(serial.sequences, limited.sequences):
    assert np.array_equal(a.J, b.J) and np.array_equal(a.F, b.F), a.name
errors = []
for bad in sys.argv[3:]:
    try:
        evaluate.evaluate_folder(root, bad, workers=2)
    except evaluate.DavisError as err:
        errors.append(str(err))
print(json.dumps(errors))
"""


def test_forked_scoring_equals_serial_and_reports_the_first_bad_sequence(davis_small, repo_root, tmp_path):
    """The process-parallel path (taken by tools/davis_eval.py: no torch, one thread) in a fresh
    interpreter: the numbers of one worker; with two damaged sequences owned by different
    workers, the error of the first in split order, whether the child's or this process's."""
    out = _shifted(davis_small, tmp_path / "pred")
    seqs = davis_small.sequences
    cases = [(seqs[1], seqs[2]), (seqs[2], seqs[3])]   # child's first, then this process's first
    bad_dirs = []
    for n, (first, later) in enumerate(cases):
        bad = _shifted(davis_small, tmp_path / f"bad{n}")
        (bad / later / "00002.png").unlink()
        (bad / first / "00001.png").unlink()
        bad_dirs.append(str(bad))
    proc = subprocess.run([sys.executable, "-c", _FORKED, str(davis_small.root), str(out), *bad_dirs],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    errors = json.loads(proc.stdout)
    assert len(errors) == 2
    for err, (first, _) in zip(errors, cases):
        assert err.endswith(f"{first}/00001.png: prediction not found"), err


def test_scoring_does_not_fork_once_torch_is_loaded():
    from benchmarks.davis.evaluate import _can_fork
    import torch  # noqa: F401  (loaded in this test process anyway; stated for the reader)
    assert not _can_fork()


def test_threaded_propagation_writes_what_one_thread_computes(davis_small, tiny_checkpoint, tmp_path):
    """Features computed ahead in a helper thread, label maps in another, PNGs written by a
    third: the files hold exactly the label maps of a plain sequential computation."""
    ex = load_extractor(tiny_checkpoint, "vit_tiny", 16)
    params = PropagationParams()
    propagate_split(ex, davis_small.root, tmp_path / "out", params, short_side=96, batch_size=2, log=None)
    for seq in davis_small.sequences:
        files = sequence_files(davis_small.root, seq)
        plain = _sequential(ex, files, params, batch_size=2)
        written = [read_index_png(tmp_path / "out" / seq / f"{p.stem}.png") for p in files.frames]
        np.testing.assert_array_equal(np.stack(written), np.stack(plain))
        threaded = [m for _, m in propagate_sequence(ex, files, params, short_side=96, batch_size=2)]
        np.testing.assert_array_equal(np.stack(threaded), np.stack(plain))


def _sequential(ex, files, params, batch_size):
    """The propagation written without helper threads (the previous form of the pipeline)."""
    import torch
    from benchmarks.davis.pipeline import _read_frames, first_labels
    from benchmarks.davis.propagation import Propagator, soft_to_masks
    p = ex.patch_size
    ann = read_index_png(files.annotations[0])
    out, prop = [ann], None
    for i in range(0, len(files.frames), batch_size):
        x, size = _read_frames(files.frames[i:i + batch_size], 96, 64)
        feats = ex(x).float()
        start = 0
        if prop is None:
            grid = (x.shape[2] // p, x.shape[3] // p)
            prop = Propagator(params, grid, feats[0], first_labels(ann, grid))
            start = 1
        soft = [prop.step(f) for f in feats[start:]]
        if soft:
            soft = torch.stack(soft).transpose(1, 2).reshape(len(soft), -1, *grid)
            out.extend(soft_to_masks(soft, p, size))
    return out


def test_scorer_compute_does_not_record(davis_small, tmp_path):
    out = _shifted(davis_small, tmp_path / "pred")
    scorer = Scorer(davis_small.root)
    seq = davis_small.sequences[0]
    J, F = scorer.compute(seq, lambda stem: (read_index_png(out / seq / f"{stem}.png"), stem))
    assert not scorer.results.sequences and J.shape == F.shape and J.shape[0] == davis_small.n_objects[seq]
