"""Tests for labkit/data/shapes.py: determinism, targets, and that a tiny net learns it in seconds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit.data import (
    SHAPES_CLASSES,
    ShapesDetection,
    ShapesSegmentation,
    segmentation_transforms,
)


def _confusion(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    k = targets.flatten() * num_classes + preds.flatten()
    return torch.bincount(k, minlength=num_classes**2).reshape(num_classes, num_classes)


def _miou(cm: torch.Tensor) -> float:
    inter = cm.diag().float()
    union = cm.sum(0).float() + cm.sum(1).float() - inter
    return float((inter[union > 0] / union[union > 0]).mean())


def _stack(ds):
    images, masks = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(images), torch.stack(masks)


def test_segmentation_items_and_determinism():
    ds = ShapesSegmentation(8, size=48, seed=3)
    assert len(ds) == 8 and ds.num_classes == len(SHAPES_CLASSES) == 4
    image, mask = ds[5]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert mask.shape == (48, 48) and mask.dtype == torch.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3} and (mask > 0).any()
    again = ShapesSegmentation(20, size=48, seed=3)[5]  # item i does not depend on n
    assert torch.equal(image, again[0]) and torch.equal(mask, again[1])
    other = ShapesSegmentation(8, size=48, seed=4)[5]
    assert not torch.equal(image, other[0])
    with pytest.raises(IndexError):
        ds[8]
    masks = _stack(ShapesSegmentation(32, size=48))[1]
    assert set(masks.unique().tolist()) == {0, 1, 2, 3}


def test_segmentation_with_transforms():
    torch.manual_seed(0)
    ds = ShapesSegmentation(
        2, size=40, transforms=segmentation_transforms(size=32, crop=24, train=True)
    )
    image, mask = ds[0]
    assert image.shape == (3, 24, 24) and mask.shape == (24, 24) and mask.dtype == torch.int64


def test_detection_boxes_match_drawn_shapes():
    det = ShapesDetection(16, size=48, seed=2)
    seg = ShapesSegmentation(16, size=48, seed=2)
    for i in range(len(det)):
        image, target = det[i]
        seg_image, mask = seg[i]
        assert torch.equal(image, seg_image)
        boxes, labels = target["boxes"], target["labels"]
        assert boxes.dtype == torch.float32 and boxes.shape == (len(labels), 4) and len(labels) >= 1
        assert labels.dtype == torch.int64 and labels.min() >= 1 and labels.max() <= 3
        assert target["difficult"].dtype == torch.bool and not target["difficult"].any()
        for (x1, y1, x2, y2), label in zip(boxes.long().tolist(), labels.tolist()):
            inside = mask[y1:y2, x1:x2]
            assert (inside == label).any()
            assert (inside[0] == label).any() and (inside[-1] == label).any()  # tight rows
            assert (inside[:, 0] == label).any() and (inside[:, -1] == label).any()  # tight cols
        assert set(labels.tolist()) == set(mask.unique().tolist()) - {0}


def test_tiny_net_learns_shapes_segmentation():
    torch.manual_seed(0)
    train_x, train_y = _stack(ShapesSegmentation(96, size=32, seed=0))
    val_x, val_y = _stack(ShapesSegmentation(32, size=32, seed=1))
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 4, 1),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):  # a few seconds on 2 CPU cores
        idx = torch.randint(0, len(train_x), (16,))
        loss = nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        preds = model(val_x).argmax(1)
    trained = _miou(_confusion(preds, val_y, 4))
    baseline = _miou(_confusion(torch.zeros_like(val_y), val_y, 4))  # all background
    assert baseline < 0.3
    assert trained > baseline + 0.3, (trained, baseline)


def test_preload_stacks_pairs_in_order():
    import pytest
    import torch

    from labkit.data import ShapesSegmentation, preload

    ds = ShapesSegmentation(5, size=16, seed=3)
    held = preload(ds, desc="test")
    images, masks = held.tensors
    assert images.shape == (5, 3, 16, 16) and masks.shape == (5, 16, 16)
    assert masks.dtype == torch.int64
    for i in range(5):
        assert torch.equal(images[i], ds[i][0]) and torch.equal(masks[i], ds[i][1])
    with pytest.raises(ValueError, match="empty"):
        preload(ShapesSegmentation(0), desc="empty set")
