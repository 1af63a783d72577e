"""Bad DAVIS input: one clear error naming the file, from the API and from the tools."""
import subprocess

import numpy as np
import pytest
from PIL import Image

from benchmarks.davis.io import (DavisError, default_palette, read_index_png, read_split,
                                 sequence_files, write_index_png)


def test_palette_round_trip(tmp_path):
    m = np.array([[0, 1, 2], [255, 3, 0]], dtype=np.uint8)
    write_index_png(tmp_path / "a.png", m)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "P"
        assert tuple(im.getpalette()[3:6]) == (128, 0, 0)   # DAVIS colour of object 1
    np.testing.assert_array_equal(read_index_png(tmp_path / "a.png"), m)
    pal = default_palette().reshape(-1, 3)
    assert tuple(pal[2]) == (0, 128, 0) and tuple(pal[3]) == (128, 128, 0)


def test_missing_frame(fresh_davis):
    seq = fresh_davis.sequences[0]
    gone = fresh_davis.root / "JPEGImages/480p" / seq / "00002.jpg"
    gone.unlink()
    with pytest.raises(DavisError, match=f"{seq}/00002.jpg: frame missing"):
        sequence_files(fresh_davis.root, seq)


def test_annotation_size_differs_from_frame(fresh_davis):
    seq = fresh_davis.sequences[1]
    ann = fresh_davis.root / "Annotations/480p" / seq / "00003.png"
    write_index_png(ann, np.zeros((64, 90), dtype=np.uint8))
    with pytest.raises(DavisError, match=f"{seq}/00003.png: annotation is 90x64.*00003.jpg is 96x64"):
        sequence_files(fresh_davis.root, seq)


def test_sequence_listed_but_absent(fresh_davis):
    split = fresh_davis.root / "ImageSets/2017/val.txt"
    split.write_text(split.read_text() + "bmx-ghost\n")
    assert read_split(fresh_davis.root)[-1] == "bmx-ghost"
    with pytest.raises(DavisError, match="Annotations/480p/bmx-ghost.*'bmx-ghost'.*not found"):
        sequence_files(fresh_davis.root, "bmx-ghost")


def test_non_palette_png(fresh_davis):
    seq = fresh_davis.sequences[0]
    ann = fresh_davis.root / "Annotations/480p" / seq / "00000.png"
    Image.open(ann).convert("RGB").save(ann)
    with pytest.raises(DavisError, match=f"{seq}/00000.png: annotation is not an indexed palette PNG \\(mode RGB"):
        read_index_png(ann)


def test_missing_split_file(tmp_path):
    with pytest.raises(DavisError, match="ImageSets/2017/val.txt: split file not found"):
        read_split(tmp_path)


def _run(repo_root, python, tool, *args):
    return subprocess.run([python, f"tools/{tool}", *map(str, args)], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)


def test_tools_report_bad_input_without_traceback(repo_root, venv_python, fresh_davis, tiny_checkpoint, tmp_path):
    seq = fresh_davis.sequences[0]
    Image.open(fresh_davis.root / "Annotations/480p" / seq / "00000.png").convert("RGB").save(
        fresh_davis.root / "Annotations/480p" / seq / "00000.png")
    proc = _run(repo_root, venv_python, "davis_propagate.py", "--checkpoint", tiny_checkpoint,
                "--data-root", fresh_davis.root, "--out", tmp_path / "out", "--arch", "vit_tiny",
                "--short-side", "64")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: ") and "00000.png" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "results").mkdir()
    proc = _run(repo_root, venv_python, "davis_eval.py", "--data-root", fresh_davis.root,
                "--results", tmp_path / "results")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: " in proc.stderr and "00000.png" in proc.stderr
