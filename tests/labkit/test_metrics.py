"""Tests for labkit/metrics.py against hand-computed cases and torchmetrics."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from labkit.metrics import (
    SegmentationMetric,
    TopKAccuracy,
    confusion_matrix,
    iou_from_confmat,
    topk_accuracy,
)

nan = math.nan


def _random_batches(num_classes, n_batches=4, shape=(2, 24, 32), p_ignore=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        targets = torch.randint(0, num_classes, shape, generator=g)
        # predictions agree with the target 60% of the time so IoUs are far from 0 and 1
        agree = torch.rand(shape, generator=g) < 0.6
        preds = torch.where(agree, targets, torch.randint(0, num_classes, shape, generator=g))
        targets[torch.rand(shape, generator=g) < p_ignore] = 255
        yield preds, targets


# --------------------------------------------------------------------------- hand cases

# targets [0,0,1,1,255,2] vs preds [0,1,1,1,2,0]; the 255 pixel is ignored.
# counted (t,p): (0,0) (0,1) (1,1) (1,1) (2,0) -> confmat rows=target
#   [[1,1,0],
#    [0,2,0],
#    [1,0,0]]
# IoU0 = 1/(2+2-1) = 1/3, IoU1 = 2/(2+3-2) = 2/3, IoU2 = 0/(1+0-0) = 0 -> mIoU 1/3
# pixel acc 3/5; recalls 1/2, 1, 0 -> mean acc 1/2
HAND_T = torch.tensor([[[0, 0, 1], [1, 255, 2]]])
HAND_P = torch.tensor([[[0, 1, 1], [1, 2, 0]]])


def test_hand_case_ignore_index():
    m = SegmentationMetric(3)
    m.update(HAND_P, HAND_T)
    r = m.compute()
    assert r.confmat.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert r.confmat.dtype == torch.int64
    torch.testing.assert_close(
        r.per_class_iou, torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64)
    )
    assert r.miou == pytest.approx(1 / 3)
    assert r.pixel_accuracy == pytest.approx(3 / 5)
    assert r.mean_accuracy == pytest.approx(1 / 2)


def test_absent_class_is_nan_and_excluded_from_mean():
    m = SegmentationMetric(4)  # class 3 never appears in preds nor targets
    m.update(HAND_P, HAND_T)
    r = m.compute()
    assert math.isnan(r.per_class_iou[3])
    assert r.miou == pytest.approx(1 / 3)  # mean over classes 0..2 only
    assert math.isnan(r.per_class_accuracy[3])
    assert r.mean_accuracy == pytest.approx(1 / 2)


def test_class_only_predicted_counts_as_zero():
    # class 2 is predicted once but never in the targets: IoU 0, included in the mean
    targets = torch.tensor([[0, 0, 1, 1]])
    preds = torch.tensor([[0, 0, 1, 2]])
    per_class, miou = iou_from_confmat(confusion_matrix(preds, targets, 3))
    torch.testing.assert_close(per_class, torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64))
    assert miou == pytest.approx(0.5)


def test_single_class_image():
    targets = torch.zeros(1, 5, 5, dtype=torch.long)
    m = SegmentationMetric(3)
    m.update(targets.clone(), targets)
    r = m.compute()
    assert r.per_class_iou[0] == 1.0 and r.per_class_iou[1:].isnan().all()
    assert r.miou == 1.0 and r.pixel_accuracy == 1.0 and r.mean_accuracy == 1.0


@pytest.mark.parametrize(
    "targets", [torch.zeros(0, 4, 4, dtype=torch.long), torch.full((2, 4, 4), 255)]
)
def test_empty_or_all_ignored_gives_nan(targets):
    m = SegmentationMetric(3)
    m.update(torch.zeros_like(targets), targets)
    r = m.compute()
    assert r.confmat.sum() == 0
    assert r.per_class_iou.isnan().all()
    assert math.isnan(r.miou) and math.isnan(r.pixel_accuracy) and math.isnan(r.mean_accuracy)


def test_compute_before_update_is_nan():
    r = SegmentationMetric(2).compute()
    assert r.confmat.shape == (2, 2) and math.isnan(r.miou)


def test_dataset_level_not_mean_of_batches():
    # batch 1: 1 pixel of class 0, right. batch 2: 3 pixels of class 1, one predicted 0.
    b1 = (torch.tensor([[0]]), torch.tensor([[0]]))
    b2 = (torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 1]]))
    m = SegmentationMetric(2)
    for p, t in (b1, b2):
        m.update(p, t)
    # summed confmat [[1,0],[1,2]]: IoU0 = 1/2, IoU1 = 2/3 -> mIoU 7/12
    assert m.compute().miou == pytest.approx(7 / 12)
    # per-batch mIoUs would be 1 and (0 + 2/3)/2 = 1/3 -> their mean 2/3 differs
    per_batch = [iou_from_confmat(confusion_matrix(p, t, 2))[1] for p, t in (b1, b2)]
    assert np.mean(per_batch) == pytest.approx(2 / 3)


def test_logits_and_labels_agree():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 8, 9, generator=g)
    targets = torch.randint(0, 5, (2, 8, 9), generator=g)
    targets[0, 0] = 255
    a = confusion_matrix(logits, targets, 5)
    b = confusion_matrix(logits.argmax(1), targets, 5)
    assert torch.equal(a, b) and a.sum() == targets.numel() - 9


def test_reset_and_device_argument():
    m = SegmentationMetric(3, device="cpu")
    m.update(HAND_P, HAND_T)
    m.reset()
    m.update(HAND_T.clamp(max=2), HAND_T)
    assert m.compute().confmat.sum() == 5 and m.compute().miou == 1.0


@pytest.mark.parametrize("ignore_index", [0, -1, None, 100])
def test_other_ignore_indices(ignore_index):
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(0, 4, (3, 10, 10), generator=g)
    preds = torch.randint(0, 4, (3, 10, 10), generator=g)
    if ignore_index is not None and ignore_index != 0:
        targets[:, :2] = ignore_index
    keep = (
        torch.ones_like(targets, dtype=torch.bool)
        if ignore_index is None
        else targets != ignore_index
    )
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(targets[keep].tolist(), preds[keep].tolist()):
        expected[t, p] += 1
    assert torch.equal(confusion_matrix(preds, targets, 4, ignore_index=ignore_index), expected)


def test_uint8_targets():
    preds, targets = next(_random_batches(5))
    a = confusion_matrix(preds, targets, 5)
    b = confusion_matrix(preds.to(torch.uint8), targets.to(torch.uint8), 5)
    assert torch.equal(a, b)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [[5, 7], [-3], [10**12]])
def test_bad_target_values_named(bad):
    targets = torch.zeros(1, 2, 4, dtype=torch.long)
    targets[0, 0, : len(bad)] = torch.tensor(bad)
    targets[0, 1, 0] = 255  # ignored: allowed
    with pytest.raises(ValueError, match="targets contain values") as err:
        confusion_matrix(torch.zeros_like(targets), targets, 3)
    assert f"values {bad}" in str(err.value)
    assert "ignore_index=255" in str(err.value)


def test_negative_target_without_ignore_index():
    targets = torch.tensor([[0, -1, 1]])
    with pytest.raises(ValueError, match=r"values \[-1\]"):
        confusion_matrix(torch.zeros_like(targets), targets, 2, ignore_index=None)
    assert confusion_matrix(torch.zeros_like(targets), targets, 2, ignore_index=-1).sum() == 2


def test_bad_inputs():
    t = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="preds contain labels"):
        confusion_matrix(torch.full_like(t, 3), t, 3)
    with pytest.raises(ValueError, match="do not match"):
        confusion_matrix(torch.zeros(2, 4, 5, dtype=torch.long), t, 3)
    with pytest.raises(ValueError, match="num_classes=3"):
        confusion_matrix(torch.randn(2, 4, 4, 4), t, 3)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(t, t.float(), 3)
    with pytest.raises(TypeError, match="integer class labels"):
        confusion_matrix(t.float(), t, 3)


# --------------------------------------------------------------------------- torchmetrics


def test_against_torchmetrics_over_batches():
    k = 6
    ours = SegmentationMetric(k)
    tm_none = MulticlassJaccardIndex(k, average="none", ignore_index=255)
    tm_macro = MulticlassJaccardIndex(k, average="macro", ignore_index=255)
    tm_cm = MulticlassConfusionMatrix(k, ignore_index=255)
    for preds, targets in _random_batches(k, n_batches=5):
        ours.update(preds, targets)
        for m in (tm_none, tm_macro, tm_cm):
            m.update(preds, targets)
    r = ours.compute()
    assert torch.equal(r.confmat, tm_cm.compute())
    assert not r.per_class_iou.isnan().any()
    torch.testing.assert_close(r.per_class_iou.float(), tm_none.compute(), rtol=1e-6, atol=1e-6)
    assert r.miou == pytest.approx(tm_macro.compute().item(), abs=1e-6)
    assert 0.2 < r.miou < 0.9


def test_against_torchmetrics_with_absent_class():
    # class 4 is absent from preds and targets: we say NaN, torchmetrics says 0 (per class)
    k = 5
    ours = SegmentationMetric(k)
    tm_none = MulticlassJaccardIndex(k, average="none", ignore_index=255)
    for preds, targets in _random_batches(4, n_batches=3, seed=3):
        ours.update(preds, targets)
        tm_none.update(preds, targets)
    r = ours.compute()
    ref = tm_none.compute()
    assert math.isnan(r.per_class_iou[4]) and ref[4] == 0
    torch.testing.assert_close(r.per_class_iou[:4].float(), ref[:4], rtol=1e-6, atol=1e-6)
    assert r.miou == pytest.approx(ref[:4].mean().item(), abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_matches_cpu():
    preds, targets = next(_random_batches(7))
    m = SegmentationMetric(7)
    m.update(preds.cuda(), targets.cuda())
    assert m.confmat.device.type == "cuda"
    assert torch.equal(m.compute().confmat, confusion_matrix(preds, targets, 7))
    logits = torch.randn(2, 7, 5, 5)
    t = torch.randint(0, 7, (2, 5, 5))
    assert torch.equal(
        confusion_matrix(logits.cuda(), t.cuda(), 7).cpu(), confusion_matrix(logits, t, 7)
    )


# --------------------------------------------------------------------------- top-k


def test_topk_hand_case():
    logits = torch.tensor(
        [
            [0.1, 0.5, 0.4, 0.0],  # target 1: top-1 hit
            [0.6, 0.1, 0.3, 0.0],  # target 2: 2nd guess -> top-2 hit
            [0.1, 0.2, 0.3, 0.4],  # target 0: last guess -> only top-4
        ]
    )
    targets = torch.tensor([1, 2, 0])
    acc = topk_accuracy(logits, targets, ks=(1, 2, 3, 4, 5))
    assert acc == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 2 / 3, 4: 1.0, 5: 1.0})


def test_topk_streaming_against_torchmetrics():
    g = torch.Generator().manual_seed(4)
    ours = TopKAccuracy(ks=(1, 5))
    tm1 = MulticlassAccuracy(num_classes=10, top_k=1, average="micro")
    tm5 = MulticlassAccuracy(num_classes=10, top_k=5, average="micro")
    all_logits, all_targets = [], []
    for n in (7, 13, 1):
        logits = torch.randn(n, 10, generator=g)
        targets = torch.randint(0, 10, (n,), generator=g)
        ours.update(logits, targets)
        tm1.update(logits, targets)
        tm5.update(logits, targets)
        all_logits.append(logits)
        all_targets.append(targets)
    acc = ours.compute()
    assert acc[1] == pytest.approx(tm1.compute().item())
    assert acc[5] == pytest.approx(tm5.compute().item())
    assert acc == pytest.approx(topk_accuracy(torch.cat(all_logits), torch.cat(all_targets)))
    ours.reset()
    assert math.isnan(ours.compute()[1])


def test_topk_errors():
    with pytest.raises(ValueError, match="class indices"):
        topk_accuracy(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        topk_accuracy(torch.randn(2, 3, 1), torch.tensor([0, 1]))
