"""End to end on generated COCO-format data: tools/dist_train.sh trains the real Mask R-CNN config
(shrunk to a tiny ViT) on CPU, tools/dist_test.sh reports bbox / segm AP that pycocotools gives
independently, and a few images are overfitted."""
from __future__ import annotations

import json
import math

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from synthetic.coco import write_coco
from tests.benchmarks.conftest import last_error_line, logged_scalars, run_tool

pytestmark = pytest.mark.slow
CONFIG = "tests/benchmarks/dense/configs/tiny_mask_rcnn.py"
OVERFIT = "tests/benchmarks/dense/configs/tiny_mask_rcnn_overfit.py"


def options(data_root, checkpoint=None, *extra):
    out = ["--cfg-options", f"data_root={data_root}/"]
    if checkpoint is not None:
        out.append(f"model.backbone.init_cfg.checkpoint={checkpoint}")
    return out + list(extra)


def pycocotools_stats(ann_file, results_file, iou_type):
    gt = COCO(str(ann_file))
    dt = gt.loadRes(str(results_file))
    ev = COCOeval(gt, dt, iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats  # AP, AP50, AP75, ...


def check_reported_ap(proc, work, ann_file):
    """The printed / saved AP equal pycocotools' on the dumped predictions (MMDetection rounds to
    3 decimals)."""
    metrics = json.loads((work / "test_metrics.json").read_text())
    for task in ("bbox", "segm"):
        stats = pycocotools_stats(ann_file, work / f"preds.{task}.json", task)
        for suffix, value in (("", stats[0]), ("_50", stats[1]), ("_75", stats[2])):
            assert metrics[f"coco/{task}_mAP{suffix}"] == pytest.approx(value, abs=6e-4)
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"{task} AP "))
        assert line == (f"{task} AP {100 * metrics[f'coco/{task}_mAP']:.1f}  "
                        f"AP50 {100 * metrics[f'coco/{task}_mAP_50']:.1f}  "
                        f"AP75 {100 * metrics[f'coco/{task}_mAP_75']:.1f}")
    return metrics


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp("coco") / "coco", n_train=8, n_val=4, height=128, width=160, seed=0)


@pytest.fixture(scope="module")
def trained(coco, tiny16_ckpt, tmp_path_factory, repo_root):
    work = tmp_path_factory.mktemp("work_coco")
    proc = run_tool(repo_root, "dist_train.sh", CONFIG, 1, "--work-dir", work,
                    *options(coco, tiny16_ckpt))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc


def test_dist_train_runs_on_cpu_and_loads_the_encoder(trained):
    work, proc = trained
    assert (work / "epoch_1.pth").is_file()
    log = proc.stdout + proc.stderr
    assert "FLSLViT: loaded all 53 encoder tensors" in log
    losses = [r["loss"] for r in logged_scalars(work) if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)  # 8 images / batch 2
    # auto_scale_lr: lr 2e-4 given for a total batch of 8, this run has 1 process x 2 images
    assert "LR is set based on batch size of 8 and the current batch size is 2" in log


def test_dist_test_reports_coco_ap_from_pycocotools(trained, coco, repo_root, tiny16_ckpt):
    work, _ = trained
    out = work / "test"
    store = work / "results.db"
    proc = run_tool(repo_root, "dist_test.sh", CONFIG, work / "epoch_1.pth", 1, "--work-dir", out, "--store", store,
                    *options(coco, None, f"test_evaluator.outfile_prefix={out / 'preds'}"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = check_reported_ap(proc, out, coco / "annotations" / "instances_val.json")
    # the evaluation is recorded in the results store: the encoder it was trained from, in percent
    from core.results import Store
    with Store(store, create=False) as st:
        (run,) = st.runs()
    assert (run["kind"], run["benchmark"], run["protocol_default"]) == ("dense", "coco", True)
    assert list(run["metrics"]["bbox_AP"].values()) == [pytest.approx(100 * metrics["coco/bbox_mAP"])]
    assert run["checkpoint_path"] == str(tiny16_ckpt) and run["family"] and run["architecture"]
    assert run["inputs"][str(work / "epoch_1.pth")] and run["source"] == str(out / "test_metrics.json")


def test_overfitting_a_few_images(coco, tiny16_ckpt, tmp_path, repo_root):
    four = write_coco(tmp_path / "four", n_train=4, n_val=1, height=128, width=160, seed=7, max_objects=3)
    work = tmp_path / "work"
    proc = run_tool(repo_root, "dist_train.sh", OVERFIT, 1, "--work-dir", work, *options(four, tiny16_ckpt))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    losses = [r["loss"] for r in logged_scalars(work) if "loss" in r]
    # 100 epochs of 2 iterations, logged at each epoch end as the mean of the last <= 10 iterations
    assert len(losses) == 100
    first, last = losses[0], losses[-1]  # iterations 1-2 against 191-200
    assert first / last > 5.0, (first, last, losses[::10])
    # evaluating on the memorised images: high AP, and equal to pycocotools' own computation
    out = work / "test"
    train_json = four / "annotations" / "instances_train.json"
    proc = run_tool(repo_root, "dist_test.sh", OVERFIT, work / "epoch_100.pth", 1, "--work-dir", out,
                    *options(four, None, "test_dataloader.dataset.ann_file=annotations/instances_train.json",
                             "test_dataloader.dataset.data_prefix.img=train/",
                             f"test_evaluator.ann_file={train_json}",
                             f"test_evaluator.outfile_prefix={out / 'preds'}"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = check_reported_ap(proc, out, train_json)
    assert metrics["coco/bbox_mAP"] > 0.5 and metrics["coco/segm_mAP"] > 0.5


# ---------------------------------------------------------------- bad input
@pytest.fixture
def damaged(coco, tmp_path):
    import shutil
    root = tmp_path / "coco"
    shutil.copytree(coco, root)
    return root


def test_malformed_json_is_reported_with_file_and_line(damaged, tiny16_ckpt, repo_root):
    ann = damaged / "annotations" / "instances_train.json"
    text = ann.read_text()
    ann.write_text(text[: len(text) // 2])
    proc = run_tool(repo_root, "dist_train.sh", CONFIG, 1, "--work-dir", damaged / "w",
                    *options(damaged, tiny16_ckpt))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_error_line(proc).startswith(f"error: {ann}: invalid JSON at line 1 column ")


def test_listed_but_missing_image_is_named(damaged, tiny16_ckpt, repo_root):
    victim = damaged / "val" / "000002.jpg"
    victim.unlink()
    proc = run_tool(repo_root, "train.py", CONFIG, "--work-dir", damaged / "w", *options(damaged, tiny16_ckpt))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_error_line(proc) == (f"error: {damaged / 'annotations' / 'instances_val.json'}: 1 listed "
                                     f"image(s) missing, first: {victim}")


def test_missing_checkpoint_is_named(coco, tmp_path, repo_root):
    absent = tmp_path / "no_such_encoder.safetensors"
    proc = run_tool(repo_root, "train.py", CONFIG, "--work-dir", tmp_path / "w", *options(coco, absent))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_error_line(proc) == (f"error: backbone checkpoint not found: {absent} (set it with "
                                     "--cfg-options model.backbone.init_cfg.checkpoint=PATH)")
    # without the up-front checks the backbone itself refuses it, inside the runner
    proc = run_tool(repo_root, "train.py", CONFIG, "--work-dir", tmp_path / "w", "--no-data-check",
                    *options(coco, absent))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert last_error_line(proc) == f"error: checkpoint not found: {absent}"
