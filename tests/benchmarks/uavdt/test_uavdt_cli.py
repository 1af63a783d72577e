"""tools/uavdt2coco.py as a user runs it: a separate process from the repository root."""
import json
import subprocess

import numpy as np

from benchmarks.uavdt.convert import GT_DIR


def _run(repo_root, python, *args):
    return subprocess.run([python, "tools/uavdt2coco.py", *map(str, args), "--no-progress"],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)


def test_cli_writes_both_splits(repo_root, venv_python, uavdt_tree, tmp_path):
    out = tmp_path / "ann"
    proc = _run(repo_root, venv_python, "--data-root", uavdt_tree.root, "--out", out, "--every", 2)
    assert proc.returncode == 0, proc.stderr
    for name, seqs in uavdt_tree.split.items():
        coco = json.loads((out / f"uavdt_{name}.json").read_text())
        assert sorted({im["sequence"] for im in coco["images"]}) == sorted(seqs)
        step = 2 if name == "train" else 1          # --every thins the training split only
        assert coco["info"]["every"] == step
        kept = {(s, f) for s in seqs for f in range(1, uavdt_tree.n_frames[s] + 1, step)}
        n_boxes = sum(int(np.isin(uavdt_tree.boxes[s][:, 0], [f for q, f in kept if q == s]).sum())
                      for s in seqs)
        assert len(coco["images"]) == len(kept)
        assert sum(1 for a in coco["annotations"] if not a["iscrowd"]) == n_boxes
        assert f"{name}: {len(seqs)} sequences, {len(kept)} frames, {n_boxes} boxes" in proc.stdout
    assert "split from" in proc.stdout and "M_attr" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["uavdt_test.json", "uavdt_train.json"]


def test_cli_split_file_overrides_release(repo_root, venv_python, uavdt_tree, tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["M0203"], "test": ["M0101", "M0201"]}))
    out = tmp_path / "ann"
    proc = _run(repo_root, venv_python, "--data-root", uavdt_tree.root, "--out", out,
                "--split-file", split)
    assert proc.returncode == 0, proc.stderr
    train = json.loads((out / "uavdt_train.json").read_text())
    test = json.loads((out / "uavdt_test.json").read_text())
    assert {im["sequence"] for im in train["images"]} == {"M0203"}
    assert {im["sequence"] for im in test["images"]} == {"M0101", "M0201"}


def test_cli_error_is_one_line_and_writes_nothing(repo_root, venv_python, fresh_tree, tmp_path):
    out = tmp_path / "ann"
    out.mkdir()
    old = out / "uavdt_train.json"
    old.write_text('{"old": true}')
    gt = fresh_tree.root / GT_DIR / "M0203_gt_whole.txt"  # the test split, converted second
    lines = gt.read_text().splitlines()
    lines[1] = "1,3,10,10,8,6,1,1,9"
    gt.write_text("\n".join(lines) + "\n")
    proc = _run(repo_root, venv_python, "--data-root", fresh_tree.root, "--out", out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {gt}:2: unknown object_category "
                                                "(expected one of [1, 2, 3]): 1,3,10,10,8,6,1,1,9"]
    assert "Traceback" not in proc.stderr
    # neither split written (the train split was fine), the old file untouched, no temp files
    assert sorted(p.name for p in out.iterdir()) == ["uavdt_train.json"]
    assert old.read_text() == '{"old": true}'


def test_cli_missing_root_and_bad_split(repo_root, venv_python, tmp_path):
    proc = _run(repo_root, venv_python, "--data-root", tmp_path / "nope", "--out", tmp_path / "o")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "nope" in proc.stderr
    split = tmp_path / "s.json"
    split.write_text('{"train": ["M0101"], "test": 3}')
    proc = _run(repo_root, venv_python, "--data-root", tmp_path, "--out", tmp_path / "o",
                "--split-file", split)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {split}: key 'test' must be a list of sequence names"
    assert not (tmp_path / "o").exists()
