"""UAVDT detection metric: MMDetection's COCO metric plus AP at IoU 0.7.

``UAVDTMetric`` (registered in mmdet's ``METRICS``) reports everything ``CocoMetric`` does
(``bbox_mAP``, ``bbox_mAP_50``, ``bbox_mAP_75``, ``bbox_mAP_s/m/l`` and, with ``classwise``,
``<class>_precision`` = per-class AP over IoU 0.50:0.95) and adds the dataset's original
protocol, AP at one IoU threshold (0.7): ``bbox_mAP_70`` and, with ``classwise``,
``<class>_mAP_70``. All AP values are pycocotools' 101-point interpolated AP over the
categories that have ground truth; ``iscrowd`` annotations (UAVDT's ignore regions, see
:mod:`benchmarks.uavdt`) make the detections they contain neither true nor false positives.

maxDets: pycocotools computes the headline AP with 100 detections per image and, in
MMDetection, AP50/AP75/size APs and the per-class APs with the last of ``proposal_nums``
(1000 by default). The UAVDT configs set ``proposal_nums=(1, 10, 100)`` so that every number,
AP@0.7 included (it always uses the last of ``proposal_nums``), is at 100 detections per image.
"""
from __future__ import annotations

import json
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Sequence

import numpy as np
from mmengine.logging import MMLogger

from mmdet.datasets.api_wrappers import COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS


def ap_at_iou(precision: np.ndarray) -> float:
    """Mean of a pycocotools precision slice ``[R, K]`` (recall points x categories) over the
    entries that exist (> -1: categories with ground truth); NaN if there are none."""
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


@METRICS.register_module()
class UAVDTMetric(CocoMetric):
    """``CocoMetric`` (bbox) plus AP at IoU ``strict_iou`` (default 0.7), overall and per class.

    Args:
        strict_iou: the single IoU threshold of the dataset's original protocol.
        **kwargs: passed to :class:`mmdet.evaluation.metrics.CocoMetric`.
    """

    def __init__(self, strict_iou: float = 0.7, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < float(strict_iou) < 1.0:
            raise ValueError(f"strict_iou must be in (0, 1), got {strict_iou}")
        if self.metrics != ["bbox"]:
            raise ValueError(f"UAVDTMetric evaluates boxes only (metric='bbox'), got {self.metrics}")
        self.strict_iou = float(strict_iou)

    @property
    def _tag(self) -> str:
        return f"mAP_{int(round(self.strict_iou * 100))}"

    def compute_metrics(self, results: list) -> dict:
        eval_results = OrderedDict(super().compute_metrics(results))
        if self.format_only or not results:
            return eval_results
        logger = MMLogger.get_current_instance()
        _, preds = zip(*results)
        with tempfile.TemporaryDirectory() as tmp:
            files = self.results2json(preds, osp.join(tmp, "results"))
            with open(files["bbox"]) as f:
                detections = json.load(f)
        if not detections:
            logger.error("UAVDTMetric: no detections at all; AP at IoU "
                         f"{self.strict_iou} not computed")
            return eval_results
        precision = self._precision_at(detections)  # [R, K]
        max_dets = self.proposal_nums[-1]
        eval_results[f"bbox_{self._tag}"] = round(ap_at_iou(precision), 3)
        lines = [f"bbox AP at IoU {self.strict_iou} (maxDets={max_dets}): "
                 f"{eval_results[f'bbox_{self._tag}']:.3f}"]
        if self.classwise:
            for k, cat_id in enumerate(self.cat_ids):
                name = self._coco_api.loadCats(cat_id)[0]["name"]
                eval_results[f"{name}_{self._tag}"] = round(ap_at_iou(precision[:, k:k + 1]), 3)
                lines.append(f"  {name}: {eval_results[f'{name}_{self._tag}']:.3f}")
        lines.append(f"maxDets: bbox_mAP at 100; bbox_mAP_50/75/s/m/l, per-class and "
                     f"bbox_{self._tag} at {max_dets} detections per image")
        logger.info("\n".join(lines))
        return eval_results

    def _precision_at(self, detections: Sequence[dict]) -> np.ndarray:
        """pycocotools precision ``[R=101, K]`` at IoU ``strict_iou``, all areas, the last maxDets."""
        coco_dt = self._coco_api.loadRes(list(detections))
        ev = COCOeval(self._coco_api, coco_dt, "bbox")
        ev.params.catIds = list(self.cat_ids)
        ev.params.imgIds = list(self.img_ids)
        ev.params.maxDets = [int(self.proposal_nums[-1])]
        ev.params.iouThrs = np.array([self.strict_iou])
        ev.evaluate()
        ev.accumulate()
        return ev.eval["precision"][0, :, :, 0, 0]


__all__ = ["UAVDTMetric", "ap_at_iou"]
