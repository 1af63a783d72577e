"""The generated DAVIS-layout set: layout, determinism and the scenarios it promises."""
import hashlib

import numpy as np

from benchmarks.davis.io import n_objects, read_annotations, read_split, sequence_files
from synthetic.davis import write_davis


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_and_object_counts(davis_small):
    root = davis_small.root
    assert read_split(root) == davis_small.sequences and len(davis_small.sequences) == 4
    for seq in davis_small.sequences:
        files = sequence_files(root, seq)
        n = davis_small.n_frames[seq]
        assert 8 <= n <= 12 and len(files.frames) == len(files.annotations) == n
        assert files.size == (96, 160)
        ann = read_annotations(files)
        np.testing.assert_array_equal(ann, davis_small.labels[seq])
        assert n_objects(ann[0]) == davis_small.n_objects[seq]
        assert set(np.unique(ann[0][ann[0] != 255])) == set(range(davis_small.n_objects[seq] + 1))
    assert sorted(davis_small.n_objects.values()) == [1, 2, 2, 3]


def test_scenarios(davis_small):
    lab = davis_small.labels
    by_kind = {s.split("-", 1)[1]: s for s in davis_small.sequences}
    # a void ring in every annotation of one sequence only
    assert all((lab[by_kind["entering"]] == 255).any(axis=(1, 2)))
    assert [s for s in davis_small.sequences if (lab[s] == 255).any()] == [davis_small.void_sequence]
    # an object leaves the frame for good
    area = (lab[by_kind["leaving"]] == 3).sum(axis=(1, 2))
    assert area[0] > 0 and area[-1] == 0 and area[-3] == 0
    # an object enters: starts cut by the border, grows
    area = (lab[by_kind["entering"]] == 2).sum(axis=(1, 2))
    assert area[-1] > 1.5 * area[0] > 0
    assert (lab[by_kind["entering"]][0][:, -1] == 2).any()
    # occlusion: the first object's visible area dips while the second passes in front
    area = (lab[by_kind["occlusion"]] == 1).sum(axis=(1, 2))
    assert area.min() < 0.8 * area.max()


def test_seeded_and_deterministic(tmp_path):
    a = write_davis(tmp_path / "a", n_sequences=2, frames=(3, 4), size=(48, 64), seed=11)
    b = write_davis(tmp_path / "b", n_sequences=2, frames=(3, 4), size=(48, 64), seed=11)
    c = write_davis(tmp_path / "c", n_sequences=2, frames=(3, 4), size=(48, 64), seed=12)
    assert _digest(a.root) == _digest(b.root) != _digest(c.root)
