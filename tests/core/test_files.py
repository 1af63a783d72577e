"""core.files: atomic writes keep the old file on failure, leave no temporary file, and give
new files the mode the user's umask asks for."""
import json
import os
import stat

import pytest

from core.files import atomic_path, write_json_atomic


def test_write_json_atomic_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json_atomic({"a": 2, "bad": object()}, path)  # fails mid-serialisation
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, tmp_path / "new.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")  # what open(path, "w") gives under the same umask
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "f.bin").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


def test_exception_inside_the_block_keeps_the_destination(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
