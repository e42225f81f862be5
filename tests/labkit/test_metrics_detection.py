"""Tests for labkit/metrics_detection.py: VOC AP against py-faster-rcnn's voc_eval, box matches."""

import math

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from labkit.metrics_detection import (
    DetectionAP,
    box_iou,
    voc_ap,
)

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


def test_reexported_by_labkit_metrics():
    import labkit.metrics
    import labkit.metrics_detection

    for name in labkit.metrics_detection.__all__:
        assert getattr(labkit.metrics, name) is getattr(labkit.metrics_detection, name)
