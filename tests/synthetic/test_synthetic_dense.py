"""synthetic/{coco,ade}.py, tools/make_synthetic.py and benchmarks/dense/data_check.py."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from benchmarks.dense.data_check import AnnotationError, check_coco, check_seg_folders, load_json
from synthetic.ade import LABELS, write_ade
from synthetic.coco import CLASSES, write_coco


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp("coco") / "coco", n_train=4, n_val=3, height=72, width=104, seed=2)


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory):
    return write_ade(tmp_path_factory.mktemp("ade") / "ade", n_train=3, n_val=2, height=64, width=80, seed=4)


def test_coco_annotations_match_their_masks(coco_root):
    for split, n in (("train", 4), ("val", 3)):
        ann_file = coco_root / "annotations" / f"instances_{split}.json"
        coco = COCO(str(ann_file))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        assert len(coco.imgs) == n and len(coco.anns) >= n
        for img in coco.imgs.values():
            with Image.open(coco_root / split / img["file_name"]) as im:
                assert im.size == (104, 72) and im.mode == "RGB"
        for ann in coco.anns.values():
            m = coco.annToMask(ann).astype(bool)
            assert ann["iscrowd"] == 0 and ann["area"] == m.sum() >= 16
            ys, xs = np.nonzero(m)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        # objects of one image do not overlap (visible masks after occlusion)
        for img_id in coco.imgs:
            masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
            assert max(np.sum(masks, axis=0).max(), 1) == 1
        assert check_coco(ann_file, coco_root / split)["images"] == n


def test_generation_is_deterministic(coco_root, tmp_path):
    again = write_coco(tmp_path / "again", n_train=4, n_val=3, height=72, width=104, seed=2)
    for name in ("instances_train.json", "instances_val.json"):
        assert (again / "annotations" / name).read_bytes() == (coco_root / "annotations" / name).read_bytes()
    other = write_coco(tmp_path / "other", n_train=4, n_val=3, height=72, width=104, seed=3)
    assert (other / "annotations" / "instances_train.json").read_bytes() != \
        (coco_root / "annotations" / "instances_train.json").read_bytes()


def test_ade_layout_and_labels(ade_root):
    assert check_seg_folders(ade_root / "images" / "training", ade_root / "annotations" / "training") == 3
    assert check_seg_folders(ade_root / "images" / "validation", ade_root / "annotations" / "validation") == 2
    for png in (ade_root / "annotations" / "training").glob("*.png"):
        lab = np.array(Image.open(png))
        assert lab.shape == (64, 80) and lab.dtype == np.uint8
        assert set(np.unique(lab)) <= {0, *LABELS.values()} and LABELS["background"] in lab
        # ADE convention: neighbouring labelled pixels of different classes never touch (0 between)
        for a, b in ((lab[:, 1:], lab[:, :-1]), (lab[1:, :], lab[:-1, :])):
            assert not np.any((a != b) & (a > 0) & (b > 0))


def test_make_synthetic_cli(tmp_path, repo_root):
    script = str(repo_root / "tools" / "make_synthetic.py")
    proc = subprocess.run([sys.executable, script, "coco", "--out", str(tmp_path / "c"), "--n-train", "2",
                           "--n-val", "1", "--height", "48", "--width", "64"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(load_json(tmp_path / "c" / "annotations" / "instances_val.json")["images"]) == 1
    proc = subprocess.run([sys.executable, script, "ade", "--out", str(tmp_path / "a"), "--n-train", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ")


# ---------------------------------------------------------------- bad input
def test_malformed_json_names_file_and_line(tmp_path):
    bad = tmp_path / "instances_train.json"
    bad.write_text('{"images": [\n  {"id": 1, "file_name": "a.jpg"},\n  {"id": 2 "file_name": "b.jpg"}\n]}')
    with pytest.raises(AnnotationError) as err:
        check_coco(bad)
    assert str(err.value).startswith(f"{bad}: invalid JSON at line 3 column")


def test_listed_but_missing_image_is_named(coco_root, tmp_path):
    coco = json.loads((coco_root / "annotations" / "instances_val.json").read_text())
    coco["images"].append({"id": 99, "file_name": "gone.jpg", "height": 72, "width": 104})
    ann = tmp_path / "instances_val.json"
    ann.write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match=f"1 listed image\\(s\\) missing, first: {coco_root / 'val' / 'gone.jpg'}"):
        check_coco(ann, coco_root / "val")


def test_dangling_references_and_missing_keys(coco_root, tmp_path):
    coco = json.loads((coco_root / "annotations" / "instances_val.json").read_text())
    coco["annotations"][0]["image_id"] = 12345
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match=r"annotations\[0\] .* image_id 12345"):
        check_coco(ann)
    ann.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(AnnotationError, match="'categories' missing"):
        check_coco(ann)


def test_missing_label_map_is_named(ade_root, tmp_path):
    import shutil
    root = tmp_path / "ade"
    shutil.copytree(ade_root, root)
    victim = sorted((root / "annotations" / "training").glob("*.png"))[1]
    victim.unlink()
    with pytest.raises(AnnotationError, match=f"label map missing: {victim}"):
        check_seg_folders(root / "images" / "training", root / "annotations" / "training")


@pytest.mark.parametrize("split", ["training", "validation"])
def test_truncated_jpeg_image_is_named(ade_root, tmp_path, split):
    """A JPEG cut short has a valid header (the size check alone would pass it) but no
    end-of-image marker: refused, naming the file; the label maps (PNG) are not affected."""
    import shutil
    root = tmp_path / "ade"
    shutil.copytree(ade_root, root)
    victim = sorted((root / "images" / split).glob("*.jpg"))[-1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(AnnotationError) as info:
        check_seg_folders(root / "images" / split, root / "annotations" / split)
    assert str(info.value).startswith(f"{victim}: truncated JPEG image (no end-of-image marker")
    victim.write_bytes(data + b"\0" * 64)  # complete, with padding after the marker: accepted
    assert check_seg_folders(root / "images" / split, root / "annotations" / split) == \
        len(list((root / "images" / split).glob("*.jpg")))
