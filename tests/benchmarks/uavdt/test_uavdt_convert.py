"""UAVDT parsing, validation and COCO conversion on generated release trees."""
import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.uavdt import convert as uavdt
from core.files import write_json_atomic
from synthetic.uavdt import write_uavdt_tree

NAMES = {1: "car", 2: "truck", 3: "bus"}  # the release's category numbers


def _by_image(coco):
    images = {im["id"]: im for im in coco["images"]}
    boxes, crowd = {}, {}
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        key = (im["sequence"], im["frame"])
        (crowd if a["iscrowd"] else boxes).setdefault(key, []).append(a)
    return images, boxes, crowd


def test_boxes_categories_and_ids_match_the_ground_truth(uavdt_tree):
    seqs = uavdt_tree.split["train"]
    coco, summary = uavdt.convert(uavdt_tree.root, seqs)
    assert [(c["id"], c["name"]) for c in coco["categories"]] == [(1, "car"), (2, "truck"),
                                                                  (3, "bus")]
    images, boxes, _ = _by_image(coco)
    # every frame of every sequence, once, in sequence then frame order, ids from 1
    expected_frames = [(s, f) for s in seqs for f in range(1, uavdt_tree.n_frames[s] + 1)]
    assert [(im["sequence"], im["frame"]) for im in coco["images"]] == expected_frames
    assert [im["id"] for im in coco["images"]] == list(range(1, len(expected_frames) + 1))
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    for im in coco["images"]:
        assert im["file_name"] == f"UAV-benchmark-M/{im['sequence']}/img{im['frame']:06d}.jpg"
    n_written = 0
    for seq in seqs:
        rows = uavdt_tree.boxes[seq]
        for f in range(1, uavdt_tree.n_frames[seq] + 1):
            want = sorted((int(r[1]), NAMES[int(r[8])], [int(v) for v in r[2:6]], int(r[6]),
                           int(r[7])) for r in rows[rows[:, 0] == f])
            got = sorted((a["target_id"], NAMES[a["category_id"]], a["bbox"], a["out_of_view"],
                          a["occlusion"]) for a in boxes.get((seq, f), []))
            assert got == want
            for a in boxes.get((seq, f), []):
                assert a["area"] == a["bbox"][2] * a["bbox"][3]
            n_written += len(want)
    all_rows = np.concatenate([uavdt_tree.boxes[s] for s in seqs])
    assert summary.boxes == {NAMES[c]: int((all_rows[:, 8] == c).sum()) for c in (1, 2, 3)}
    assert set(summary.boxes.values()) != {0}
    assert summary.frames == len(expected_frames) and summary.sequences == 2
    assert sum(summary.boxes.values()) == n_written


def test_all_three_categories_are_generated(uavdt_tree):
    cats = np.concatenate([b[:, 8] for b in uavdt_tree.boxes.values()])
    assert set(cats.tolist()) == {1, 2, 3}


def test_image_sizes_are_read_from_each_file(tmp_path):
    tmp_path = tmp_path / "uavdt"  # a generator writes only into a folder it creates
    tree = write_uavdt_tree(tmp_path, train=("M0101", "M0201"), test=(), n_frames=3,
                            size=(160, 96), sizes={"M0201": (176, 88)}, seed=1)
    # one frame saved at another size: the converter must open every file, not guess
    path = tmp_path / "UAV-benchmark-M/M0101/img000002.jpg"
    Image.open(path).crop((0, 0, 150, 90)).save(path)
    coco, _ = uavdt.convert(tmp_path, ["M0101", "M0201"])
    sizes = {(im["sequence"], im["frame"]): (im["width"], im["height"]) for im in coco["images"]}
    for (seq, frame), size in sizes.items():
        with Image.open(tmp_path / f"UAV-benchmark-M/{seq}/img{frame:06d}.jpg") as im:
            assert size == im.size
    assert sizes[("M0101", 2)] == (150, 90)
    assert sizes[("M0101", 1)] == (160, 96) and sizes[("M0201", 3)] == (176, 88)


@pytest.mark.parametrize("every", [2, 4])
def test_every_kth_frame(uavdt_tree, every):
    coco, summary = uavdt.convert(uavdt_tree.root, ["M0101", "M0203"], every=every)
    images, boxes, crowd = _by_image(coco)
    kept = list(range(1, 7, every))  # frames 1, 1 + k, ...
    assert [(im["sequence"], im["frame"]) for im in coco["images"]] == \
        [(s, f) for s in ("M0101", "M0203") for f in kept]
    assert {k[1] for k in boxes} <= set(kept) and {k[1] for k in crowd} == set(kept)
    n_rows = sum(int(np.isin(uavdt_tree.boxes[s][:, 0], kept).sum()) for s in ("M0101", "M0203"))
    assert sum(len(v) for v in boxes.values()) == n_rows == sum(summary.boxes.values())
    assert coco["info"]["every"] == every


def test_every_must_be_positive(uavdt_tree):
    with pytest.raises(uavdt.UAVDTError, match="--every"):
        uavdt.convert(uavdt_tree.root, ["M0101"], every=0)


def test_ignore_regions_written_once_per_category_as_crowd(uavdt_tree):
    coco, summary = uavdt.convert(uavdt_tree.root, ["M0101", "M0201"])
    _, _, crowd = _by_image(coco)
    n_regions = 0
    for seq in ("M0101", "M0201"):
        for row in uavdt_tree.ignore[seq]:
            x, y, w, h = (int(v) for v in row[2:6])
            anns = crowd[(seq, int(row[0]))]
            assert sorted(a["category_id"] for a in anns) == [1, 2, 3]
            for a in anns:
                assert a["iscrowd"] == 1 and a["bbox"] == [x, y, w, h] and a["area"] == w * h
                assert a["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
            n_regions += 1
    assert summary.ignore_regions == n_regions > 0
    assert sum(len(v) for v in crowd.values()) == 3 * n_regions
    # the generator's parked vehicles inside the regions are not ground truth
    for seq in ("M0101", "M0201"):
        region = uavdt_tree.ignore[seq][0, 2:6]
        for r in uavdt_tree.boxes[seq]:
            ix = max(0, min(r[2] + r[4], region[0] + region[2]) - max(r[2], region[0]))
            iy = max(0, min(r[3] + r[5], region[1] + region[3]) - max(r[3], region[1]))
            assert ix * iy <= 0.5 * r[4] * r[5]


def test_pycocotools_reads_the_output(uavdt_tree, tmp_path):
    from pycocotools.coco import COCO
    coco, _ = uavdt.convert(uavdt_tree.root, ["M0203"])
    path = tmp_path / "t.json"
    write_json_atomic(coco, path)
    api = COCO(str(path))
    assert api.getCatIds() == [1, 2, 3]
    assert len(api.getImgIds()) == 6
    crowd = api.loadAnns(api.getAnnIds(iscrowd=True))
    assert len(crowd) == 3 * len(uavdt_tree.ignore["M0203"])
    ann = crowd[0]
    mask = api.annToMask(ann)
    x, y, w, h = ann["bbox"]
    # the polygon covers the region's pixels and nothing far outside it
    assert mask[y + 1:y + h - 1, x + 1:x + w - 1].all()
    assert abs(int(mask.sum()) - w * h) <= 2 * (w + h)


def test_boxes_are_clipped_to_the_image_or_dropped(fresh_tree):
    gt = fresh_tree.root / uavdt.GT_DIR / "M0101_gt_whole.txt"
    with gt.open("a") as f:
        f.write("2,900,120,60,20,30,2,1,1\n")      # partly outside a 128x72 image
        f.write("2,901,-40,-30,10,10,3,1,2\n")     # entirely outside
    coco, summary = uavdt.convert(fresh_tree.root, ["M0101"])
    anns = {a["target_id"]: a for a in coco["annotations"] if not a["iscrowd"]}
    assert anns[900]["bbox"] == [120, 60, 8, 12] and anns[900]["area"] == 96
    assert 901 not in anns
    assert summary.clipped_boxes == 1 and summary.dropped_boxes == 1


# ------------------------------------------------------------------------------- validation
def _insert_line(path, lineno, text):
    lines = path.read_text().splitlines()
    lines.insert(lineno - 1, text)
    path.write_text("\n".join(lines) + "\n")


BAD_LINES = [
    ("gt_whole", "1,5,10,10,20,12,1,1", "expected 9 comma-separated columns, found 8"),
    ("gt_whole", "1,5,10,10,20,12,1,1,1,7", "found 10"),
    ("gt_whole", "1,5,10,ten,20,12,1,1,1", "column 4 is not a finite number"),
    ("gt_whole", "1,5,10,10,nan,12,1,1,1", "column 5 is not a finite number"),
    ("gt_whole", "1,5,10,1_0,20,12,1,1,1", "column 4 is not a finite number"),
    ("gt_whole", "1,5,10,10,-20,12,1,1,1", "width and height must be > 0"),
    ("gt_whole", "1,5,10,10,20,0,1,1,1", "width and height must be > 0"),
    ("gt_whole", "5,5,10,10,20,12,1,1,1", "frame index not among the sequence's 4 images"),
    ("gt_whole", "0,5,10,10,20,12,1,1,1", "frame index not among"),
    ("gt_whole", "1.5,5,10,10,20,12,1,1,1", "frame index is not an integer"),
    ("gt_whole", "1,5,10,10,20,12,1,1,4", "unknown object_category"),
    ("gt_whole", "1,5,10,10,20,12,1,1,0", "unknown object_category"),
    ("gt_ignore", "9,-1,0,0,30,20,-1,-1,-1", "frame index not among"),
    ("gt_ignore", "1,-1,0,0,30,20,-1,-1", "expected 9"),
    ("gt_ignore", "1,-1,0,0,-30,20,-1,-1,-1", "width and height must be > 0"),
]


@pytest.mark.parametrize("kind,line,message", BAD_LINES)
def test_malformed_line_names_file_and_line(fresh_tree, kind, line, message):
    path = fresh_tree.root / uavdt.GT_DIR / f"M0203_{kind}.txt"
    n_lines = len(path.read_text().splitlines())
    lineno = min(3, n_lines + 1)
    _insert_line(path, lineno, line)
    with pytest.raises(uavdt.UAVDTError) as info:
        uavdt.convert(fresh_tree.root, ["M0101", "M0203"])
    msg = str(info.value)
    assert msg.startswith(f"{path}:{lineno}: ") and message in msg
    assert "\n" not in msg


def test_the_first_bad_line_is_reported_whatever_its_fault(fresh_tree):
    path = fresh_tree.root / uavdt.GT_DIR / "M0101_gt_whole.txt"
    _insert_line(path, 4, "1,5,10,10,-20,12,1,1,1")   # size: checked before the category
    _insert_line(path, 2, "1,6,10,10,20,12,1,1,5")    # category, on an earlier line
    with pytest.raises(uavdt.UAVDTError, match=r"M0101_gt_whole.txt:2: unknown object_category"):
        uavdt.convert(fresh_tree.root, ["M0101"])


def test_ignore_category_column_is_not_interpreted(fresh_tree):
    path = fresh_tree.root / uavdt.GT_DIR / "M0101_gt_ignore.txt"
    _insert_line(path, 1, "1,-1,0,0,30,20,-1,-1,7")
    coco, summary = uavdt.convert(fresh_tree.root, ["M0101"])
    assert summary.ignore_regions == len(fresh_tree.ignore["M0101"]) + 1


def test_blank_lines_are_skipped_and_line_numbers_count_them(fresh_tree):
    path = fresh_tree.root / uavdt.GT_DIR / "M0101_gt_whole.txt"
    text = path.read_text()
    path.write_text("\n\n" + text + "\n")
    coco, _ = uavdt.convert(fresh_tree.root, ["M0101"])
    assert sum(1 for a in coco["annotations"] if not a["iscrowd"]) == len(fresh_tree.boxes["M0101"])
    path.write_text("\n\n" + text + "1,2,3\n")
    n = len(text.splitlines()) + 3
    with pytest.raises(uavdt.UAVDTError, match=rf"M0101_gt_whole.txt:{n}: expected 9"):
        uavdt.convert(fresh_tree.root, ["M0101"])


def test_missing_files_name_the_sequence(fresh_tree):
    (fresh_tree.root / uavdt.GT_DIR / "M0101_gt_whole.txt").unlink()
    with pytest.raises(uavdt.UAVDTError, match=r"M0101_gt_whole.txt: ground truth of sequence"):
        uavdt.convert(fresh_tree.root, ["M0101"])
    with pytest.raises(uavdt.UAVDTError, match=r"M0999: image folder of sequence M0999"):
        uavdt.convert(fresh_tree.root, ["M0999"])
    # an absent ignore file is allowed: no regions
    (fresh_tree.root / uavdt.GT_DIR / "M0203_gt_ignore.txt").unlink()
    _, summary = uavdt.convert(fresh_tree.root, ["M0203"])
    assert summary.ignore_regions == 0


# ------------------------------------------------------------------------------------ split
def test_split_precedence_file_then_release_then_default(tmp_path, uavdt_tree):
    split, source = uavdt.resolve_split(uavdt_tree.root)
    assert split == {"train": ["M0101", "M0201"], "test": ["M0203"]}
    assert source.endswith("M_attr")
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"train": ["M0203"], "test": ["M0101"], "note": "x"}))
    assert uavdt.resolve_split(uavdt_tree.root, f) == ({"train": ["M0203"], "test": ["M0101"]},
                                                      str(f))
    bare = write_uavdt_tree(tmp_path / "bare", train=("M0101",), test=(), n_frames=1,
                            write_attr=False)
    split, source = uavdt.resolve_split(bare.root)
    assert source == str(uavdt.DEFAULT_SPLIT)
    assert len(split["train"]) == 30 and len(split["test"]) == 20
    assert "M0101" in split["train"] and "M1401" in split["test"]
    assert not set(split["train"]) & set(split["test"])


@pytest.mark.parametrize("content,message", [
    ('{"train": ["M0101"]}', "key 'test' must be a list"),
    ('{"train": ["M0101"], "test": ["M0101"]}', "in both train and test: M0101"),
    ('{"train": ["M0101", "M0101"], "test": []}', "lists a sequence twice"),
    ('["M0101"]', "expected a JSON object"),
    ('{"train": [', "not valid JSON"),
])
def test_bad_split_files(tmp_path, content, message):
    f = tmp_path / "split.json"
    f.write_text(content)
    with pytest.raises(uavdt.UAVDTError) as info:
        uavdt.load_split(f)
    assert str(info.value).startswith(str(f)) and message in str(info.value)


# -------------------------------------------------------------------------------- generator
def test_generator_is_seeded(tmp_path):
    a = write_uavdt_tree(tmp_path / "a", train=("M0101",), test=(), n_frames=2, seed=4)
    b = write_uavdt_tree(tmp_path / "b", train=("M0101",), test=(), n_frames=2, seed=4)
    c = write_uavdt_tree(tmp_path / "c", train=("M0101",), test=(), n_frames=2, seed=5)
    rel = "UAV-benchmark-M/M0101/img000002.jpg"
    assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes()
    assert (a.root / rel).read_bytes() != (c.root / rel).read_bytes()
    assert np.array_equal(a.boxes["M0101"], b.boxes["M0101"])
    gt = (a.root / uavdt.GT_DIR / "M0101_gt_whole.txt").read_text()
    assert gt == (b.root / uavdt.GT_DIR / "M0101_gt_whole.txt").read_text()


def test_generated_vehicles_stand_out_from_the_ground(uavdt_tree):
    """Annotated boxes hold the drawn vehicles: their pixels differ from the same place in a
    frame where the vehicle has moved away (vehicles move by at least one pixel a frame)."""
    rows = uavdt_tree.boxes["M0101"]
    frames = [np.asarray(Image.open(uavdt_tree.root / f"UAV-benchmark-M/M0101/img{f:06d}.jpg"),
                         dtype=np.float32) for f in (1, 6)]
    diffs = []
    for r in rows[(rows[:, 0] == 1) & (rows[:, 7] == 1)]:
        x, y, w, h = r[2:6]
        diffs.append(np.abs(frames[0][y:y + h, x:x + w] - frames[1][y:y + h, x:x + w]).mean())
    assert len(diffs) >= 3 and np.median(diffs) > 10
