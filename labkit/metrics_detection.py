"""Detection metrics: PASCAL VOC average precision and box-level matches (accuracy, IoU).

AP follows the PASCAL VOC devkit / py-faster-rcnn ``voc_eval.py`` (greedy matching by score,
difficult boxes neither counted nor penalised; VOC07 11-point or VOC2010+ all-point AP).
Re-exported by :mod:`labkit.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DetectionAP",
    "DetectionMatchMetric",
    "DetectionResult",
    "MatchResult",
    "box_iou",
    "voc_ap",
]


# --------------------------------------------------------------------------- detection


def voc_ap(recall: np.ndarray, precision: np.ndarray, *, use_07_metric: bool) -> float:
    """VOC average precision from cumulative recall (N,) and precision (N,) in score order.

    ``use_07_metric``: VOC2007 11-point interpolation, the mean over 11 thresholds t of the max
    precision at recall >= t, with the thresholds of py-faster-rcnn's ``voc_eval.py`` (also
    detectron2's): ``np.arange(0.0, 1.1, 0.1)``, whose values at 0.3, 0.6 and 0.7 lie slightly above
    the tenth, so numbers compare with published VOC07 results. Otherwise the area under the
    monotone precision envelope (VOC2010+ "all points").
    """
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(f"recall {rec.shape} and precision {prec.shape} differ in length")
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):  # as voc_eval.py: not exact tenths (0.3 -> 0.30000000000000004)
            above = rec >= t
            ap += (float(prec[above].max()) if above.any() else 0.0) / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope, non-increasing
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU (N, M) of xyxy boxes (N,4) and (M,4) in continuous coordinates (no VOC +1)."""
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area1 = np.clip(b1[:, 2:] - b1[:, :2], 0, None).prod(-1)
    area2 = np.clip(b2[:, 2:] - b2[:, :2], 0, None).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _np(x: torch.Tensor | np.ndarray | Sequence, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


@dataclass(frozen=True)
class DetectionResult:
    """What ``DetectionAP.compute`` returns."""

    per_class_ap: torch.Tensor  # (K,) float64, NaN for classes without (non-difficult) ground truth
    map: float  # mean AP over classes with ground truth (NaN when none has)
    num_gt: torch.Tensor  # (K,) int64 non-difficult ground-truth boxes per class


def _detection_arrays(pred: Mapping, target: Mapping) -> tuple[tuple[np.ndarray, ...],
                                                                tuple[np.ndarray, ...]]:
    """One image's target (boxes, labels, difficult) and prediction (boxes, scores, labels) as
    NumPy arrays; ValueError when the lengths within either disagree."""
    boxes = _np(target["boxes"], np.float64).reshape(-1, 4)
    labels = _np(target["labels"], np.int64).reshape(-1)
    difficult = target.get("difficult")
    difficult = (np.zeros(len(labels), dtype=bool) if difficult is None
                 else _np(difficult, bool).reshape(-1))
    if not (len(boxes) == len(labels) == len(difficult)):
        raise ValueError(
            f"target has {len(boxes)} boxes, {len(labels)} labels, {len(difficult)} difficult flags"
        )
    dboxes = _np(pred["boxes"], np.float64).reshape(-1, 4)
    scores = _np(pred["scores"], np.float64).reshape(-1)
    dlabels = _np(pred["labels"], np.int64).reshape(-1)
    if not (len(dboxes) == len(scores) == len(dlabels)):
        raise ValueError(
            f"prediction has {len(dboxes)} boxes, {len(scores)} scores, {len(dlabels)} labels"
        )
    return (boxes, labels, difficult), (dboxes, scores, dlabels)


class DetectionAP:
    """PASCAL VOC AP at an IoU threshold, accumulated over ``update(preds, targets)`` calls.

    preds: list of dicts {boxes (N,4) xyxy, scores (N,), labels (N,)} (torchvision detection output);
    targets: list of dicts {boxes (M,4), labels (M,), difficult (M,) bool optional}. As in the VOC
    devkit, detections are matched greedily in descending score order to the unmatched ground truth
    of highest IoU (> ``iou_threshold``); duplicates are false positives; difficult ground truth is
    neither TP nor FP nor counted. IoU uses continuous coordinates (no +1). Classes without
    ground truth (e.g. background 0) get AP NaN and are left out of ``map``.
    """

    def __init__(
        self, num_classes: int, *, iou_threshold: float = 0.5, use_07_metric: bool = False
    ) -> None:
        self.num_classes = int(num_classes)
        self.iou_threshold = float(iou_threshold)
        self.use_07_metric = use_07_metric
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # boxes, labels, difficult
        self._dets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # boxes, scores, labels

    def update(self, preds: Sequence[Mapping], targets: Sequence[Mapping]) -> None:
        """Add one batch: lists of per-image prediction and target dicts."""
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
        for pred, target in zip(preds, targets):
            (boxes, labels, difficult), (dboxes, scores, dlabels) = _detection_arrays(pred, target)
            for name, lab in (("targets", labels), ("preds", dlabels)):
                if lab.size and (lab.min() < 0 or lab.max() >= self.num_classes):
                    raise ValueError(
                        f"{name} labels {sorted(set(lab[(lab < 0) | (lab >= self.num_classes)].tolist()))} "
                        f"outside [0, {self.num_classes})"
                    )
            self._gts.append((boxes, labels, difficult))
            self._dets.append((dboxes, scores, dlabels))

    def _class_ap(self, c: int) -> tuple[float, int]:
        gt = {}
        npos = 0
        for i, (boxes, labels, difficult) in enumerate(self._gts):
            sel = labels == c
            gt[i] = (boxes[sel], difficult[sel], np.zeros(int(sel.sum()), dtype=bool))
            npos += int((~difficult[sel]).sum())
        if npos == 0:
            return math.nan, 0
        img_ids, scores, boxes = [], [], []
        for i, (dboxes, dscores, dlabels) in enumerate(self._dets):
            sel = dlabels == c
            img_ids.append(np.full(int(sel.sum()), i))
            scores.append(dscores[sel])
            boxes.append(dboxes[sel])
        img_ids = np.concatenate(img_ids)
        scores = np.concatenate(scores)
        boxes = np.concatenate(boxes).reshape(-1, 4)
        order = np.argsort(-scores, kind="stable")
        tp = np.zeros(len(order))
        fp = np.zeros(len(order))
        for d, j in enumerate(order):
            gboxes, gdifficult, matched = gt[int(img_ids[j])]
            if len(gboxes) == 0:
                fp[d] = 1
                continue
            ious = box_iou(boxes[j : j + 1], gboxes)[0]
            best = int(ious.argmax())
            if ious[best] > self.iou_threshold:
                if gdifficult[best]:
                    continue  # neither TP nor FP
                if not matched[best]:
                    tp[d] = 1
                    matched[best] = True
                else:
                    fp[d] = 1  # duplicate detection
            else:
                fp[d] = 1
        tp = np.cumsum(tp)
        fp = np.cumsum(fp)
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        return voc_ap(rec, prec, use_07_metric=self.use_07_metric), npos

    def compute(self) -> DetectionResult:
        """Per-class AP (K,) and mAP over classes with ground truth."""
        aps, npos = zip(*(self._class_ap(c) for c in range(self.num_classes)))
        ap = torch.tensor(aps, dtype=torch.float64)
        valid = ~torch.isnan(ap)
        return DetectionResult(
            per_class_ap=ap,
            map=float(ap[valid].mean()) if bool(valid.any()) else math.nan,
            num_gt=torch.tensor(npos, dtype=torch.int64),
        )


# --------------------------------------------------------------------------- detection: matches


@dataclass(frozen=True)
class MatchResult:
    """What ``DetectionMatchMetric.compute`` returns (all over non-difficult ground-truth boxes)."""

    accuracy: float  # class accuracy of the localised boxes (NaN when none is localised)
    miou: float  # mean over boxes of the best IoU with a kept detection (0 when none; NaN: no box)
    localised: float  # fraction of boxes whose best IoU exceeds iou_threshold (NaN: no box)
    num_boxes: int


class DetectionMatchMetric:
    """Box-level accuracy and mean IoU of a detector, complementary to :class:`DetectionAP`.

    For every non-difficult ground-truth box, take the detection (any class, score >=
    ``score_threshold``) of highest IoU with it. ``miou``: the mean of these best IoUs (0 for a box
    with no detection). A box is *localised* when its best IoU is > ``iou_threshold``;
    ``accuracy``: the fraction of localised boxes whose best detection has the right label (the
    classification quality once the box is found); ``localised``: the fraction of boxes localised.
    Detections are not consumed (one detection may serve several boxes), unlike in AP.
    """

    def __init__(self, *, iou_threshold: float = 0.5, score_threshold: float = 0.5) -> None:
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._ious: list[float] = []
        self._correct: list[bool] = []

    def update(self, preds: Sequence[Mapping], targets: Sequence[Mapping]) -> None:
        """Add one batch: lists of per-image prediction and target dicts (as for DetectionAP)."""
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
        for pred, target in zip(preds, targets):
            (boxes, labels, difficult), (dboxes, scores, dlabels) = _detection_arrays(pred, target)
            keep = scores >= self.score_threshold
            dboxes, dlabels = dboxes[keep], dlabels[keep]
            for box, label in zip(boxes[~difficult], labels[~difficult]):
                if len(dboxes) == 0:
                    self._ious.append(0.0)
                    self._correct.append(False)
                    continue
                ious = box_iou(box[None], dboxes)[0]
                best = int(ious.argmax())
                self._ious.append(float(ious[best]))
                self._correct.append(bool(dlabels[best] == label))

    def compute(self) -> MatchResult:
        """Accuracy of the localised boxes, mean best IoU, localised fraction, box count."""
        ious = np.asarray(self._ious, dtype=np.float64)
        correct = np.asarray(self._correct, dtype=bool)
        if len(ious) == 0:
            return MatchResult(math.nan, math.nan, math.nan, 0)
        found = ious > self.iou_threshold
        accuracy = float(correct[found].mean()) if found.any() else math.nan
        return MatchResult(accuracy, float(ious.mean()), float(found.mean()), len(ious))
