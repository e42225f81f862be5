"""Lab 02 (segmentation) grading: exercises, deterministic probe inputs, spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

_METRIC_NAMES = ("SegmentationMetric", "iou_from_confmat", "MulticlassJaccardIndex",
                 "torchmetrics", "sklearn", "multiclass_jaccard_index")

EXERCISES = (
    Exercise("confusion_matrix", ("preds", "targets", "num_classes"),
             forbidden=_METRIC_NAMES + ("metrics",)),
    Exercise("mean_iou", ("confmat",), forbidden=_METRIC_NAMES + ("metrics",)),
)


def _labels(rng, shape, num_classes, ignore_frac=0.0):
    x = rng.integers(0, num_classes, size=shape, dtype=np.int64)
    if ignore_frac:
        x[rng.random(shape) < ignore_frac] = 255
    return x


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds."""
    rng = np.random.default_rng(2024)
    calls = []
    # confusion_matrix: a hand-sized case, random with ignore, absent class, all ignored, 1 class
    calls.append(Call("cm_small", "confusion_matrix", {
        "preds": np.array([[[0, 1], [2, 2]]], dtype=np.int64),
        "targets": np.array([[[0, 1], [1, 2]]], dtype=np.int64)}, {"num_classes": 3}))
    calls.append(Call("cm_random", "confusion_matrix", {
        "preds": _labels(rng, (2, 17, 23), 5),
        "targets": _labels(rng, (2, 17, 23), 5, 0.1)}, {"num_classes": 5}))
    calls.append(Call("cm_ignore_other", "confusion_matrix", {
        "preds": _labels(rng, (3, 8, 8), 4),
        "targets": np.where(rng.random((3, 8, 8)) < 0.3, 0, _labels(rng, (3, 8, 8), 4))}, 
        {"num_classes": 4, "ignore_index": 0}))
    calls.append(Call("cm_all_ignored", "confusion_matrix", {
        "preds": _labels(rng, (2, 5, 5), 3),
        "targets": np.full((2, 5, 5), 255, dtype=np.int64)}, {"num_classes": 3}))
    calls.append(Call("cm_absent_class", "confusion_matrix", {
        "preds": _labels(rng, (1, 9, 9), 3),
        "targets": _labels(rng, (1, 9, 9), 3)}, {"num_classes": 6}))
    # mean_iou: hand case, absent classes (NaN), perfect, single class, all zero
    calls.append(Call("iou_small", "mean_iou", {"confmat": np.array(
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=np.int64)}))
    calls.append(Call("iou_absent", "mean_iou", {"confmat": np.array(
        [[5, 1, 0, 0], [2, 7, 0, 0], [0, 0, 0, 0], [0, 3, 0, 4]], dtype=np.int64)}))
    calls.append(Call("iou_single_class", "mean_iou", {"confmat": np.array(
        [[0, 0], [0, 12]], dtype=np.int64)}))
    calls.append(Call("iou_empty", "mean_iou", {"confmat": np.zeros((3, 3), dtype=np.int64)}))
    calls.append(Call("iou_random", "mean_iou", {
        "confmat": rng.integers(0, 50, size=(19, 19)).astype(np.int64)}))
    # dataset-level accumulation over batches (Cityscapes-like: 19 classes, 255 ignored)
    calls.append(Call("pipeline", "pipeline", {
        "preds": _labels(rng, (4, 24, 48), 19),
        "targets": _labels(rng, (4, 24, 48), 19, 0.15)}, {"num_classes": 19}))
    return calls


LAB = LabSpec(
    id="lab02",
    slug="lab02_segmentation",
    title="Semantic segmentation: datasets, mIoU, FCN and U-Net",
    exercises=EXERCISES,
    make_calls=make_calls,
    checks_module="autograder.labs.lab02.checks",
    probes_file=Path(__file__).with_name("probes.py"),
    private_paths=(),
)
