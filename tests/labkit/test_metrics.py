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
from torchvision.ops import box_iou as tv_box_iou

from labkit.metrics import (
    DetectionAP,
    SegmentationMetric,
    TopKAccuracy,
    box_iou,
    confusion_matrix,
    iou_from_confmat,
    topk_accuracy,
    voc_ap,
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


# --------------------------------------------------------------------------- detection


def _reference_voc_ap(rec, prec, use_07_metric):
    """The loop of py-faster-rcnn voc_eval.voc_ap (thresholds np.arange(0.0, 1.1, 0.1))."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


@pytest.mark.parametrize("use_07_metric", [True, False])
def test_voc_ap_matches_reference_loop(use_07_metric):
    rng = np.random.default_rng(0)
    for _ in range(20):
        hits = rng.random(15) < 0.5
        npos = int(hits.sum()) + int(rng.integers(0, 3)) or 1
        tp = np.cumsum(hits)
        fp = np.cumsum(~hits)
        rec, prec = tp / npos, tp / np.maximum(tp + fp, 1e-12)
        ours = voc_ap(rec, prec, use_07_metric=use_07_metric)
        assert ours == pytest.approx(_reference_voc_ap(rec, prec, use_07_metric))


def test_voc07_ap_thresholds_as_voc_eval():
    # py-faster-rcnn's voc_eval.py (and detectron2) sample recall at np.arange(0.0, 1.1, 0.1), whose
    # 0.3 is 0.30000000000000004: a recall of exactly 0.3 does not reach it (exact tenths gave 4/11).
    rec, prec = np.array([0.1, 0.2, 0.3]), np.ones(3)
    assert voc_ap(rec, prec, use_07_metric=True) == pytest.approx(3 / 11)  # 0.2727
    assert voc_ap(rec, prec, use_07_metric=True) == pytest.approx(_reference_voc_ap(rec, prec, True))


def test_detection_ap_voc07_one_image_ten_boxes():
    # 10 ground-truth boxes, 16 detections by score: 3 hits, 6 misses, 7 hits -> recall 0.3 at
    # precision 1, then at most 10/16. voc_eval.py: (3 + 8 * 0.625) / 11 = 0.7273 (exact tenths: 0.7614).
    gt = [[20 * i, 0, 20 * i + 10, 10] for i in range(10)]
    miss = [[500, 500, 510, 510]] * 6
    boxes = gt[:3] + miss + gt[3:]
    m = DetectionAP(2, use_07_metric=True)
    m.update([_det(boxes, np.linspace(1, 0.1, 16).tolist(), [1] * 16)],
             [{"boxes": torch.tensor(gt, dtype=torch.float32), "labels": torch.ones(10, dtype=torch.int64)}])
    assert m.compute().map == pytest.approx(8 / 11)  # 0.7273


def test_box_iou_continuous_coordinates():
    a = np.array([[0, 0, 10, 10], [0, 0, 1, 1]], dtype=float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    assert box_iou(a, b)[0, 0] == pytest.approx(50 / 150)  # no +1: VOC would give 66/176
    np.testing.assert_allclose(box_iou(a, b), tv_box_iou(torch.tensor(a), torch.tensor(b)).numpy())


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


G1, G2, G3 = [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]


def test_detection_ap_difficult_hand_case():
    # class 1: G1, G2 normal, G3 difficult -> npos = 2.
    # detections by score: d1 on G1 (TP), d2 on G3 (difficult: neither), d3 nowhere (FP), d4 on G2 (TP)
    # cumulative tp = 1,1,1,2  fp = 0,0,1,1 -> rec = .5,.5,.5,1  prec = 1,1,.5,2/3
    # 11-point: t = 0..0.5 (6 thresholds) max prec 1; t = 0.6..1 (5) max prec 2/3 -> (6 + 10/3)/11 = 28/33
    # all-point: envelope 1 on (0, .5], 2/3 on (.5, 1] -> .5 * 1 + .5 * 2/3 = 5/6
    target = {
        "boxes": torch.tensor([G1, G2, G3], dtype=torch.float32),
        "labels": torch.tensor([1, 1, 1]),
        "difficult": torch.tensor([False, False, True]),
    }
    pred = _det(
        [[1, 0, 10, 10], [40, 41, 50, 50], [60, 60, 70, 70], [20, 21, 30, 30]],
        [0.9, 0.8, 0.7, 0.6],
        [1] * 4,
    )
    for use_07, expected in ((True, 28 / 33), (False, 5 / 6)):
        m = DetectionAP(2, use_07_metric=use_07)
        m.update([pred], [target])
        r = m.compute()
        assert r.per_class_ap[1].item() == pytest.approx(expected)
        assert math.isnan(r.per_class_ap[0])  # background: no ground truth
        assert r.map == pytest.approx(expected)
        assert r.num_gt.tolist() == [0, 2]


def test_detection_ap_duplicates_are_false_positives():
    # two GT; d1 on G1 (TP), d2 duplicate on G1 (FP), d3 on G2 (TP)
    # rec = .5,.5,1  prec = 1,.5,2/3 -> all-point .5 + .5 * 2/3 = 5/6 (it would be 1 if the duplicate were ignored)
    target = {"boxes": torch.tensor([G1, G2], dtype=torch.float32), "labels": torch.tensor([1, 1])}
    pred = _det([G1, [0, 0, 10, 9], G2], [0.9, 0.8, 0.7], [1, 1, 1])
    m = DetectionAP(2)
    m.update([pred], [target])
    assert m.compute().map == pytest.approx(5 / 6)


def test_detection_ap_classes_without_gt_and_multi_image():
    # image A: class 1 G1; image B: class 1 G2 and class 2 G3. Class 3: detections only (no GT).
    targets = [
        {"boxes": torch.tensor([G1], dtype=torch.float32), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([G2, G3], dtype=torch.float32), "labels": torch.tensor([1, 2])},
    ]
    # class 1 in score order: B-G2 0.95 (TP), A-miss 0.9 (FP), A-G1 0.5 (TP) -> rec .5,.5,1 prec 1,.5,2/3 -> 5/6
    # class 2: no detection -> AP 0. class 3: no GT -> NaN, excluded. mAP = (5/6 + 0) / 2
    preds = [
        _det([[100, 100, 110, 110], G1, G1], [0.9, 0.5, 0.8], [1, 1, 3]),
        _det([G2], [0.95], [1]),
    ]
    m = DetectionAP(4)
    m.update(preds[:1], targets[:1])
    m.update(preds[1:], targets[1:])
    r = m.compute()
    assert r.per_class_ap[1].item() == pytest.approx(5 / 6)
    assert r.per_class_ap[2].item() == 0.0
    assert math.isnan(r.per_class_ap[0]) and math.isnan(r.per_class_ap[3])
    assert r.map == pytest.approx(5 / 12)


def test_detection_iou_threshold_is_strict():
    # IoU exactly 0.5 does not match (VOC: ov > 0.5)
    target = {"boxes": torch.tensor([G1], dtype=torch.float32), "labels": torch.tensor([1])}
    m = DetectionAP(2)
    m.update([_det([[0, 0, 10, 5]], [0.9], [1])], [target])
    assert m.compute().map == 0.0
    m = DetectionAP(2, iou_threshold=0.4)
    m.update([_det([[0, 0, 10, 5]], [0.9], [1])], [target])
    assert m.compute().map == 1.0


def test_detection_ap_empty_and_errors():
    m = DetectionAP(3)
    assert math.isnan(m.compute().map)
    with pytest.raises(ValueError, match="outside"):
        m.update([_det([G1], [0.9], [5])], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])
    with pytest.raises(ValueError, match="predictions for"):
        m.update([], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])


# --------------------------------------------------------------------------- DetectionMatchMetric


def _match_det(boxes, labels, scores):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "scores": torch.tensor(scores, dtype=torch.float32)}


def test_match_metric_hand_case():
    from labkit.metrics import DetectionMatchMetric

    # image 1: gt A [0,0,10,10] (class 1) found by an exact box of class 1 (IoU 1);
    #          gt B [20,20,30,30] (class 2) best covered by [20,20,30,25] of class 3 (IoU 0.5,
    #          not > 0.5: not localised) and a low-score exact box (ignored, score 0.4)
    # image 2: gt C [0,0,10,10] (class 2) found by [0,0,10,8] of class 1 (IoU 0.8, wrong class);
    #          gt D difficult (not counted)
    # image 3: gt E, no detection at all (IoU 0)
    m = DetectionMatchMetric(iou_threshold=0.5, score_threshold=0.5)
    m.update([_match_det([[0, 0, 10, 10], [20, 20, 30, 25], [20, 20, 30, 30]], [1, 3, 2],
                   [0.9, 0.8, 0.4])],
             [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
               "labels": torch.tensor([1, 2])}])
    m.update([_match_det([[0, 0, 10, 8]], [1], [0.7]), _match_det([], [], [])],
             [{"boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]),
               "labels": torch.tensor([2, 1]), "difficult": torch.tensor([False, True])},
              {"boxes": torch.tensor([[5.0, 5, 9, 9]]), "labels": torch.tensor([3])}])
    r = m.compute()
    assert r.num_boxes == 4
    assert r.miou == pytest.approx((1.0 + 0.5 + 0.8 + 0.0) / 4)
    assert r.localised == pytest.approx(2 / 4)  # A and C
    assert r.accuracy == pytest.approx(1 / 2)  # A right, C wrong class


def test_match_metric_empty_and_reset():
    from labkit.metrics import DetectionMatchMetric

    m = DetectionMatchMetric()
    r = m.compute()
    assert r.num_boxes == 0 and math.isnan(r.miou) and math.isnan(r.accuracy)
    m.update([_match_det([], [], [])], [{"boxes": torch.tensor([[0.0, 0, 4, 4]]),
                                   "labels": torch.tensor([1])}])
    r = m.compute()
    assert r.miou == 0.0 and r.localised == 0.0 and math.isnan(r.accuracy)
    m.reset()
    assert m.compute().num_boxes == 0
    with pytest.raises(ValueError, match="predictions for"):
        m.update([], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])
    with pytest.raises(ValueError, match="target has 2 boxes, 1 labels"):
        m.update([_match_det([], [], [])], [{"boxes": torch.zeros(2, 4),
                                            "labels": torch.tensor([1])}])
    with pytest.raises(ValueError, match="prediction has 1 boxes, 2 scores"):
        m.update([_match_det([[0, 0, 1, 1]], [1], [0.9, 0.8])],
                 [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])


def test_match_metric_iou_agrees_with_torchvision():
    from labkit.metrics import DetectionMatchMetric

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(6, 2, generator=g) * 50
    gt = torch.cat([xy, xy + 5 + torch.rand(6, 2, generator=g) * 20], 1)
    dxy = torch.rand(9, 2, generator=g) * 50
    dt = torch.cat([dxy, dxy + 5 + torch.rand(9, 2, generator=g) * 20], 1)
    m = DetectionMatchMetric(score_threshold=0.0)
    m.update([{"boxes": dt, "labels": torch.ones(9, dtype=torch.int64),
               "scores": torch.rand(9, generator=g)}],
             [{"boxes": gt, "labels": torch.ones(6, dtype=torch.int64)}])
    best = tv_box_iou(gt, dt).max(dim=1).values
    assert m.compute().miou == pytest.approx(float(best.mean()), rel=1e-5)
    assert m.compute().localised == pytest.approx(float((best > 0.5).float().mean()))
