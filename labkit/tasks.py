"""Training tasks: how a batch becomes a loss, and which metric scores the outputs.

A task object holds a loss and a metric, so that the loops in :mod:`labkit.train` know nothing about
segmentation, classification or detection (torchvision's ``references`` pass a criterion; here the
criterion comes with its metric). ``make_task("segmentation", num_classes=3)`` builds one by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from labkit.metrics import DetectionAP, SegmentationMetric, TopKAccuracy

__all__ = [
    "ClassificationTask",
    "DetectionTask",
    "SegmentationTask",
    "Step",
    "Task",
    "TaskName",
    "make_task",
]

TaskName = Literal["segmentation", "classification", "detection"]


@dataclass(frozen=True)
class Step:
    """One batch through a task: the scalar loss (None where not computed), the outputs to score
    (logits (B,K,...) or detections; None when nothing is scored) and named loss terms."""

    loss: torch.Tensor | None
    outputs: Any
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def _logits(output: Any) -> torch.Tensor:
    """Logits from a model output: a tensor, a dict with "out" (torchvision), an object with ``.logits`` (HF)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("out", "logits"):
            if key in output:
                return output[key]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in model output of type {type(output).__name__}")


def _match_size(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Logits (B,K,h,w) upsampled bilinearly to the mask size (B,H,W) when they differ."""
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
    return logits


class Task:
    """What a training loop asks of a task; subclasses set the loss and the metric."""

    name: str = ""
    eval_loss: bool = True  # whether ``evaluate`` reports a loss

    def step(self, model: nn.Module, inputs: Any, targets: Any, *, train: bool) -> Step:
        """Forward one batch: loss, outputs to score and loss terms."""
        raise NotImplementedError

    def metric(self, model: nn.Module, *, train: bool) -> Any:
        """A fresh metric for one pass (None: none yet, or none in this phase)."""
        raise NotImplementedError

    def update(self, metric: Any, outputs: Any, targets: Any) -> Any:
        """Add one batch to ``metric``; returns the metric (created here when it needs the outputs)."""
        if outputs is not None and metric is not None:
            metric.update(outputs.detach().float(), targets)
        return metric

    def summarize(self, metric: Any, *, train: bool) -> dict[str, Any]:
        """The metric's numbers for one pass."""
        raise NotImplementedError


@dataclass
class SegmentationTask(Task):
    """Cross-entropy over pixels (``ignore_index`` skipped) on logits (B,K,H,W) upsampled to the
    masks (B,H,W); mIoU and pixel accuracy (``num_classes`` None: K read from the logits)."""

    num_classes: int | None = None
    ignore_index: int = 255
    loss_fn: Callable | None = None
    name = "segmentation"

    def __post_init__(self) -> None:
        if self.loss_fn is None:
            self.loss_fn = nn.CrossEntropyLoss(ignore_index=self.ignore_index)

    def step(self, model: nn.Module, inputs: Any, targets: Any, *, train: bool) -> Step:
        logits = _match_size(_logits(model(inputs)), targets)
        return Step(self.loss_fn(logits, targets), logits)

    def metric(self, model: nn.Module, *, train: bool) -> SegmentationMetric | None:
        if not self.num_classes:
            return None
        return SegmentationMetric(self.num_classes, ignore_index=self.ignore_index)

    def update(self, metric: Any, outputs: Any, targets: Any) -> Any:
        if metric is None:
            metric = SegmentationMetric(outputs.shape[1], ignore_index=self.ignore_index)
        return super().update(metric, outputs, targets)

    def summarize(self, metric: Any, *, train: bool) -> dict[str, Any]:
        if metric is None:  # no batch seen
            return {} if train else dict(miou=math.nan, pixel_accuracy=math.nan,
                                         mean_accuracy=math.nan, per_class_iou=[])
        result = metric.compute()
        if train:
            return {"miou": result.miou, "pixel_accuracy": result.pixel_accuracy}
        return result.as_dict()


@dataclass
class ClassificationTask(Task):
    """Cross-entropy on logits (B,K) against class indices (B,); top-1 and top-5 accuracy."""

    loss_fn: Callable | None = None
    name = "classification"

    def __post_init__(self) -> None:
        if self.loss_fn is None:
            self.loss_fn = nn.CrossEntropyLoss()

    def step(self, model: nn.Module, inputs: Any, targets: Any, *, train: bool) -> Step:
        logits = _logits(model(inputs))
        return Step(self.loss_fn(logits, targets), logits)

    def metric(self, model: nn.Module, *, train: bool) -> TopKAccuracy:
        return TopKAccuracy((1, 5))

    def summarize(self, metric: Any, *, train: bool) -> dict[str, Any]:
        return {f"top{k}": v for k, v in metric.compute().items()}


@dataclass
class DetectionTask(Task):
    """torchvision detectors: training sums the model's loss dict (terms kept by name); evaluation
    scores the list of predicted dicts with VOC AP@0.5 (``num_classes`` None: read from the model)."""

    num_classes: int | None = None
    name = "detection"
    eval_loss = False

    def step(self, model: nn.Module, inputs: Any, targets: Any, *, train: bool) -> Step:
        if not train:
            return Step(None, model(list(inputs)))
        loss_dict = model(list(inputs), list(targets))
        terms = {k: v.detach() for k, v in loss_dict.items()}
        return Step(sum(loss_dict.values()), None, terms)

    def metric(self, model: nn.Module, *, train: bool) -> DetectionAP | None:
        if train:
            return None
        return DetectionAP(self.num_classes or _detection_classes(model))

    def update(self, metric: Any, outputs: Any, targets: Any) -> Any:
        if metric is not None and outputs is not None:
            metric.update(outputs, list(targets))
        return metric

    def summarize(self, metric: Any, *, train: bool) -> dict[str, Any]:
        if metric is None:
            return {}
        result = metric.compute()
        return {"map": result.map, "per_class_ap": result.per_class_ap.tolist()}


def _detection_classes(model: nn.Module) -> int:
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    cls_score = getattr(predictor, "cls_score", None)
    if isinstance(cls_score, nn.Linear):
        return cls_score.out_features
    raise ValueError("num_classes is required for detection (could not read model.roi_heads)")


_TASKS = {"segmentation": SegmentationTask, "classification": ClassificationTask,
          "detection": DetectionTask}


def make_task(
    task: Task | str,
    *,
    num_classes: int | None = None,
    ignore_index: int = 255,
    loss_fn: Callable | None = None,
) -> Task:
    """A task object from its name ("segmentation", "classification", "detection"); a Task is
    returned as it is (its own options apply). Detection ignores ``loss_fn`` and ``ignore_index``."""
    if isinstance(task, Task):
        return task
    if task not in _TASKS:
        raise ValueError(f"task must be one of {tuple(_TASKS)} or a labkit.tasks.Task, got {task!r}")
    if task == "segmentation":
        return SegmentationTask(num_classes, ignore_index, loss_fn)
    if task == "classification":
        return ClassificationTask(loss_fn)
    return DetectionTask(num_classes)
