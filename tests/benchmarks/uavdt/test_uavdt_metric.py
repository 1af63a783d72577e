"""UAVDTMetric (CocoMetric + AP at IoU 0.7) on converted synthetic ground truth with hand-made
predictions, evaluated by pycocotools through the real metric."""
import numpy as np
import pytest

from benchmarks.uavdt import convert as uavdt
from core.files import write_json_atomic

pytest.importorskip("mmdet")
torch = pytest.importorskip("torch")
from benchmarks.uavdt.metric import UAVDTMetric  # noqa: E402

CLASSES = ("car", "truck", "bus")


@pytest.fixture(scope="module")
def gt(uavdt_tree, tmp_path_factory):
    """COCO file of the test sequence (6 frames) and the parsed json."""
    coco, _ = uavdt.convert(uavdt_tree.root, uavdt_tree.split["test"])
    path = tmp_path_factory.mktemp("uavdt_metric") / "uavdt_test.json"
    write_json_atomic(coco, path)
    return path, coco


def _evaluate(ann_file, images, dets_per_image):
    """Run the metric; ``dets_per_image[img_id]`` = list of (x, y, w, h, score, category_id)."""
    metric = UAVDTMetric(ann_file=str(ann_file), metric="bbox", classwise=True,
                         proposal_nums=(1, 10, 100))
    metric.dataset_meta = dict(classes=CLASSES)
    samples = []
    for im in images:
        dets = np.array(dets_per_image.get(im["id"], []), dtype=np.float64).reshape(-1, 6)
        xyxy = np.concatenate([dets[:, :2], dets[:, :2] + dets[:, 2:4]], axis=1)
        samples.append(dict(
            img_id=im["id"], ori_shape=(im["height"], im["width"]),
            pred_instances=dict(bboxes=torch.tensor(xyxy, dtype=torch.float32),
                                scores=torch.tensor(dets[:, 4], dtype=torch.float32),
                                labels=torch.tensor(dets[:, 5] - 1, dtype=torch.int64))))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def _perfect(coco, score=0.9):
    dets = {}
    for a in coco["annotations"]:
        if not a["iscrowd"]:
            dets.setdefault(a["image_id"], []).append((*a["bbox"], score, a["category_id"]))
    return dets


def _iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _free_spot(coco, image, size=(12, 8)):
    """A box of ``size`` in ``image`` that touches no annotation (box or ignore region)."""
    anns = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"]]
    w, h = size
    for y in range(0, image["height"] - h, 2):
        for x in range(0, image["width"] - w, 2):
            if all(_iou((x, y, w, h), b) == 0 for b in anns):
                return (x, y, w, h)
    raise AssertionError("no free spot in the image")


def test_detection_in_ignore_region_is_not_a_false_positive(gt):
    ann_file, coco = gt
    images = coco["images"]
    base = _perfect(coco)
    image = images[0]
    region = next(a["bbox"] for a in coco["annotations"]
                  if a["iscrowd"] and a["image_id"] == image["id"])
    x, y, w, h = region
    inside = (x + 2, y + 2, min(12, w - 4), min(8, h - 4))  # wholly inside the region
    outside = _free_spot(coco, image, inside[2:])

    def with_extra(box):
        dets = {k: list(v) for k, v in base.items()}
        # one confident detection of every class, ranked above every true positive
        dets.setdefault(image["id"], []).extend((*box, 0.99, c) for c in (1, 2, 3))
        return dets

    clean = _evaluate(ann_file, images, base)
    ignored = _evaluate(ann_file, images, with_extra(inside))
    counted = _evaluate(ann_file, images, with_extra(outside))
    keys = ["coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75", "coco/bbox_mAP_70",
            "coco/car_precision", "coco/car_mAP_70"]
    # perfect boxes: AP 1 (the ignore regions are not car ground truth that nobody detects)
    assert all(clean[k] == 1.0 for k in keys)
    assert ignored.keys() == clean.keys()
    assert all(ignored[k] == clean[k] or (np.isnan(ignored[k]) and np.isnan(clean[k]))
               for k in clean)
    # the same detections outside the region are false positives ahead of every true one
    for k in keys:
        assert counted[k] < clean[k]


def _ioa(det, region):
    """Intersection over the detection's area (COCO's overlap with a crowd region)."""
    ix = max(0.0, min(det[0] + det[2], region[0] + region[2]) - max(det[0], region[0]))
    iy = max(0.0, min(det[1] + det[3], region[1] + region[3]) - max(det[1], region[1]))
    return ix * iy / (det[2] * det[3])


def _plain_ap(gt_boxes, regions, dets, thr):
    """101-point interpolated AP of one class (the COCO definition), written out plainly.

    ``gt_boxes[img]``: list of (x, y, w, h); ``regions[img]``: ignore regions; ``dets``: list of
    (img, (x, y, w, h), score). Greedy matching in score order, each det to the unmatched ground
    truth of highest IoU >= thr; an unmatched det covered >= thr by an ignore region is dropped.
    """
    n_gt = sum(len(v) for v in gt_boxes.values())
    if n_gt == 0:
        return None
    used = {img: [False] * len(v) for img, v in gt_boxes.items()}
    tp = []
    for img, box, _ in sorted(dets, key=lambda d: -d[2]):
        best, best_iou = -1, thr
        for j, g in enumerate(gt_boxes.get(img, [])):
            iou = _iou(box, g)
            if not used[img][j] and iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            used[img][best] = True
        elif any(_ioa(box, r) >= thr for r in regions.get(img, [])):
            continue
        tp.append(best >= 0)
    tp = np.array(tp, dtype=float)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    for i in range(len(precision) - 2, -1, -1):  # precision envelope
        precision[i] = max(precision[i], precision[i + 1])
    total = 0.0
    for r in np.linspace(0, 1, 101):
        idx = np.searchsorted(recall, r, side="left")
        total += precision[idx] if idx < len(precision) else 0.0
    return total / 101


def test_ap_at_iou_07_matches_a_plain_computation(gt):
    ann_file, coco = gt
    rng = np.random.default_rng(0)
    gt_boxes = {c: {} for c in (1, 2, 3)}
    regions = {}
    dets = {c: [] for c in (1, 2, 3)}
    per_image = {}
    for a in coco["annotations"]:
        if a["iscrowd"]:
            if a["category_id"] == 1:
                regions.setdefault(a["image_id"], []).append(a["bbox"])
            continue
        x, y, w, h = a["bbox"]
        c, img = a["category_id"], a["image_id"]
        gt_boxes[c].setdefault(img, []).append((x, y, w, h))
        # half the detections shifted by a quarter of the width: IoU 0.6 (a hit at 0.5, a miss
        # at 0.7); a few ground truths are missed altogether
        roll = rng.random()
        if roll < 0.1:
            continue
        box = (x + 0.25 * w, y, w, h) if roll < 0.55 else (x, y, w, h)
        score = float(rng.uniform(0.1, 1.0))
        dets[c].append((img, box, score))
        per_image.setdefault(img, []).append((*box, score, c))
    got = _evaluate(ann_file, coco["images"], per_image)
    for thr, key in ((0.7, "bbox_mAP_70"), (0.5, "bbox_mAP_50")):
        per_class = {c: _plain_ap(gt_boxes[c], regions, dets[c], thr) for c in (1, 2, 3)}
        present = [v for v in per_class.values() if v is not None]
        assert got[f"coco/{key}"] == pytest.approx(np.mean(present), abs=6e-4)
        if thr == 0.7:
            for c, name in zip((1, 2, 3), CLASSES):
                if per_class[c] is not None:
                    assert got[f"coco/{name}_mAP_70"] == pytest.approx(per_class[c], abs=6e-4)
    assert got["coco/bbox_mAP_70"] < got["coco/bbox_mAP_50"]  # the shifted boxes count at 0.5 only


def test_metric_refuses_other_iou_types_and_thresholds(gt):
    ann_file, _ = gt
    with pytest.raises(ValueError, match="boxes only"):
        UAVDTMetric(ann_file=str(ann_file), metric=["bbox", "segm"])
    with pytest.raises(ValueError, match="strict_iou"):
        UAVDTMetric(ann_file=str(ann_file), strict_iou=1.5)
