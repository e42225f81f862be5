"""Tests for labkit/tasks.py: task objects (loss + metric) and make_task."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labkit.tasks import (
    ClassificationTask,
    DetectionTask,
    SegmentationTask,
    make_task,
)


def test_make_task_by_name_and_object():
    seg = make_task("segmentation", num_classes=3, ignore_index=7)
    assert isinstance(seg, SegmentationTask) and seg.num_classes == 3
    assert seg.loss_fn.ignore_index == 7
    assert make_task(seg) is seg
    assert isinstance(make_task("classification"), ClassificationTask)
    assert make_task("detection", num_classes=4) == DetectionTask(num_classes=4)
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("regression")


def test_segmentation_step_upsamples_and_ignores():
    task = SegmentationTask(num_classes=2)
    model = nn.Conv2d(3, 2, 1, stride=2)  # logits at half resolution
    images = torch.rand(2, 3, 8, 8)
    masks = torch.randint(0, 2, (2, 8, 8))
    masks[:, 0] = 255
    step = task.step(model, images, masks, train=True)
    assert step.outputs.shape == (2, 2, 8, 8) and step.loss.ndim == 0
    metric = task.update(task.metric(model, train=True), step.outputs, masks)
    assert set(task.summarize(metric, train=True)) == {"miou", "pixel_accuracy"}
    assert "per_class_iou" in task.summarize(metric, train=False)


def test_segmentation_metric_from_logits_and_empty_pass():
    task = SegmentationTask()  # K read from the logits
    assert task.metric(None, train=False) is None
    metric = task.update(None, torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.int64))
    assert metric.num_classes == 4
    empty = task.summarize(None, train=False)
    assert math.isnan(empty["miou"]) and empty["per_class_iou"] == []
    assert task.summarize(None, train=True) == {}


def test_classification_topk():
    task = ClassificationTask()
    logits = torch.eye(6)[[0, 1, 2, 3]] * 5 - torch.arange(6) * 0.1  # class 5 always last
    metric = task.update(task.metric(None, train=False), logits, torch.tensor([0, 1, 2, 5]))
    assert task.summarize(metric, train=False) == {"top1": 0.75, "top5": 0.75}


def test_detection_reads_classes_from_the_model():
    from labkit.models.detection import tiny_fasterrcnn

    model = tiny_fasterrcnn(num_classes=3, image_size=64)
    task = DetectionTask()
    assert task.metric(model, train=True) is None
    assert task.metric(model, train=False).num_classes == 3
    with pytest.raises(ValueError, match="num_classes is required"):
        task.metric(nn.Linear(1, 1), train=False)
    assert not task.eval_loss and task.summarize(None, train=True) == {}
