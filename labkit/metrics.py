"""Streaming metrics: segmentation confusion matrix (mIoU), top-k accuracy, one-vs-rest ROC; the
detection metrics (VOC AP, box matches) live in :mod:`labkit.metrics_detection` and are
re-exported here.

Segmentation follows torchvision ``references/segmentation`` (``ConfusionMatrix``): counts are
accumulated over the whole dataset with one ``torch.bincount`` per batch, and IoU is computed once
from the summed confusion matrix (not as a mean of per-batch IoUs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from labkit.metrics_detection import (
    DetectionAP,
    DetectionMatchMetric,
    DetectionResult,
    MatchResult,
    box_iou,
    voc_ap,
)

__all__ = [
    "DetectionAP",
    "DetectionMatchMetric",
    "DetectionResult",
    "MatchResult",
    "ROCResult",
    "SegmentationMetric",
    "SegmentationResult",
    "TopKAccuracy",
    "box_iou",
    "confusion_matrix",
    "iou_from_confmat",
    "roc_one_vs_rest",
    "topk_accuracy",
    "voc_ap",
]

# Largest ``(ignore_index + 1) * num_classes`` for which ignored pixels are counted in spare
# bincount bins instead of being masked out (the bins are sliced off afterwards).
_MAX_SPARE_BINS = 1 << 20


# --------------------------------------------------------------------------- segmentation


def _as_labels(
    preds: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, bool]:
    """Class labels from ``preds`` (labels shaped like ``targets``, or logits with classes in dim 1)."""
    if not isinstance(preds, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"preds and targets must be tensors, got {type(preds).__name__} and {type(targets).__name__}"
        )
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor of class indices, got {targets.dtype}")
    if preds.device != targets.device:
        raise ValueError(f"preds are on {preds.device} but targets are on {targets.device}")
    if preds.ndim == targets.ndim + 1:  # logits (B, K, H, W) against targets (B, H, W)
        if preds.shape[1] != num_classes or preds.shape[:1] + preds.shape[2:] != targets.shape:
            raise ValueError(
                f"logits of shape {tuple(preds.shape)} do not match targets {tuple(targets.shape)} "
                f"with num_classes={num_classes}: expected {(targets.shape[0], num_classes, *targets.shape[1:])}"
            )
        return preds.argmax(dim=1), True
    if preds.shape != targets.shape:
        raise ValueError(
            f"preds of shape {tuple(preds.shape)} do not match targets {tuple(targets.shape)}: pass labels "
            "shaped like targets (B, H, W) or logits (B, K, H, W)"
        )
    if preds.is_floating_point() or preds.is_complex() or preds.dtype == torch.bool:
        raise TypeError(
            f"preds shaped like targets must be integer class labels, got {preds.dtype} "
            "(pass logits as (B, K, H, W))"
        )
    return preds, False


def _check_pred_range(preds: torch.Tensor, num_classes: int) -> None:
    lo, hi = torch.aminmax(preds)
    if lo.item() < 0 or hi.item() >= num_classes:
        bad = torch.unique(preds[(preds < 0) | (preds >= num_classes)])[:10].tolist()
        raise ValueError(f"preds contain labels {bad} outside [0, {num_classes})")


def _bad_targets_error(
    values: Iterable[int], num_classes: int, ignore_index: int | None
) -> ValueError:
    values = sorted(set(values))[:10]
    return ValueError(
        f"targets contain values {values} outside [0, {num_classes}) that are not "
        f"ignore_index={ignore_index}"
    )


def _not_ignored(t: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    return torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index


def confusion_matrix(
    preds: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = 255,
) -> torch.Tensor:
    """Confusion matrix (K, K) int64 of preds (B,H,W) labels or (B,K,H,W) logits vs targets (B,H,W); rows = target."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    k = int(num_classes)
    preds, from_logits = _as_labels(preds, targets, k)
    t = targets.reshape(-1)
    p = preds.reshape(-1)
    kk = k * k
    if t.numel() == 0:
        return torch.zeros(k, k, dtype=torch.int64, device=targets.device)
    if not from_logits:
        _check_pred_range(p, k)
    if t.dtype != torch.int64 and t.dtype != torch.uint8:
        t = t.long()
    if t.dtype == torch.int64:
        # guards the bincount length against wild values (negative values fail inside bincount)
        hi = int(t.max())
        if hi >= k and hi != ignore_index and (hi + 1) * k > _MAX_SPARE_BINS:
            bad = torch.unique(t[(t >= k) & _not_ignored(t, ignore_index)])
            raise _bad_targets_error(bad.tolist(), k, ignore_index)
    spare = ignore_index is None or (
        ignore_index >= k and (ignore_index + 1) * k <= _MAX_SPARE_BINS
    )
    # one fused int64 pass: index = k * target + pred; ignored / out-of-range targets land in bins >= k*k
    idx = torch.add(p if p.dtype == torch.int64 else p.long(), t, alpha=k)
    if not spare:  # ignore_index inside [0, k) or negative: park those pixels in bin k*k
        idx = torch.where(t == ignore_index, kk, idx)
    try:
        counts = torch.bincount(idx, minlength=kk)
    except RuntimeError as err:  # negative targets
        bad = torch.unique(t[(t < 0) & _not_ignored(t, ignore_index)])
        if bad.numel():
            raise _bad_targets_error(bad.tolist(), k, ignore_index) from err
        raise
    if counts.numel() > kk:
        extra = counts[kk:]
        if spare and ignore_index is not None:
            extra = extra.clone()
            lo = ignore_index * k - kk
            extra[lo : lo + k] = 0
        elif not spare:
            extra = extra.clone()
            extra[0] = 0
        if bool(extra.any()):
            bins = torch.nonzero(extra).flatten() + kk
            raise _bad_targets_error((bins // k).tolist(), k, ignore_index)
    return counts[:kk].reshape(k, k)


def iou_from_confmat(confmat: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-class IoU (K,) float64 (NaN where a class is absent from preds and targets) and their nanmean."""
    cm = confmat.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = tp / union  # 0/0 -> NaN for classes never predicted and never present
    valid = ~torch.isnan(iou)
    miou = float(iou[valid].mean()) if bool(valid.any()) else math.nan
    return iou, miou


@dataclass(frozen=True)
class SegmentationResult:
    """What ``SegmentationMetric.compute`` returns; tensors live on the CPU."""

    per_class_iou: torch.Tensor  # (K,) float64, NaN for classes absent from preds and targets
    miou: float  # mean of the non-NaN per-class IoUs (NaN when all are NaN)
    pixel_accuracy: float  # correct / counted pixels (NaN when no pixel was counted)
    mean_accuracy: float  # mean over classes present in targets of per-class recall
    per_class_accuracy: torch.Tensor  # (K,) float64 recall, NaN for classes absent from targets
    confmat: torch.Tensor  # (K, K) int64, rows = target, cols = prediction

    def as_dict(self) -> dict[str, float | list[float]]:
        """Plain floats and lists (for JSON and History)."""
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "mean_accuracy": self.mean_accuracy,
            "per_class_iou": self.per_class_iou.tolist(),
        }


class SegmentationMetric:
    """Dataset-level confusion matrix over ``update(preds, targets)`` calls; ``compute()`` gives IoUs.

    ``preds`` are labels (B,H,W) or logits (B,K,H,W) (argmax over dim 1), ``targets`` (B,H,W) with
    values in [0, K) or ``ignore_index`` (not counted). NaN-aware averaging: a class absent from both
    preds and targets has IoU NaN and is left out of ``miou``; a class absent from targets has
    accuracy NaN and is left out of ``mean_accuracy``; with no counted pixel everything is NaN.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int | None = 255,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.device = None if device is None else torch.device(device)
        self.confmat: torch.Tensor | None = None
        self.reset()

    def reset(self) -> None:
        """Zero the accumulated counts."""
        k = self.num_classes
        self.confmat = (
            None
            if self.device is None
            else torch.zeros(k, k, dtype=torch.int64, device=self.device)
        )

    @torch.no_grad()
    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add preds (B,H,W) labels or (B,K,H,W) logits vs targets (B,H,W) to the counts."""
        cm = confusion_matrix(preds, targets, self.num_classes, self.ignore_index)
        if self.confmat is None:  # device=None: accumulate on the device of the first batch
            self.confmat = cm
        else:
            self.confmat += cm.to(self.confmat.device, non_blocking=True)

    def compute(self) -> SegmentationResult:
        """Per-class IoU, mIoU, pixel accuracy, mean class accuracy and confusion matrix so far."""
        k = self.num_classes
        cm = (
            torch.zeros(k, k, dtype=torch.int64)
            if self.confmat is None
            else self.confmat.detach().cpu()
        )
        iou, miou = iou_from_confmat(cm)
        cmd = cm.double()
        tp = cmd.diagonal()
        total = cmd.sum()
        per_class_acc = tp / cmd.sum(1)
        valid = ~torch.isnan(per_class_acc)
        return SegmentationResult(
            per_class_iou=iou,
            miou=miou,
            pixel_accuracy=float(tp.sum() / total) if total > 0 else math.nan,
            mean_accuracy=float(per_class_acc[valid].mean()) if bool(valid.any()) else math.nan,
            per_class_accuracy=per_class_acc,
            confmat=cm.clone(),
        )


# --------------------------------------------------------------------------- classification


def topk_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Top-k accuracy of logits (N,C) vs targets (N,) for each k in ``ks`` (k > C counts as C)."""
    correct = _topk_correct(logits, targets, ks)
    n = targets.numel()
    return {k: (c / n if n else math.nan) for k, c in correct.items()}


@torch.no_grad()
def _topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int]) -> dict[int, int]:
    if logits.ndim != 2 or targets.ndim != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {tuple(ks)}")
    n, c = logits.shape
    if n == 0:
        return {k: 0 for k in ks}
    if targets.is_floating_point() or bool(((targets < 0) | (targets >= c)).any()):
        bad = targets[(targets < 0) | (targets >= c)].unique()[:10].tolist()
        raise ValueError(f"targets must be class indices in [0, {c}), got {bad or targets.dtype}")
    kmax = min(max(ks), c)
    top = logits.topk(kmax, dim=1).indices  # (N, kmax)
    hit = top == targets[:, None]
    cum = hit.cumsum(dim=1).sum(dim=0)  # (kmax,) hits within the first j+1 guesses
    return {k: int(cum[min(k, c) - 1]) for k in ks}


class TopKAccuracy:
    """Streaming top-k accuracy over ``update(preds, targets)`` with preds logits (N,C), targets (N,)."""

    def __init__(self, ks: Sequence[int] = (1, 5)) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.reset()

    def reset(self) -> None:
        """Zero the counts."""
        self.correct = dict.fromkeys(self.ks, 0)
        self.total = 0

    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of logits (N,C) and targets (N,)."""
        for k, c in _topk_correct(preds, targets, self.ks).items():
            self.correct[k] += c
        self.total += targets.numel()

    def compute(self) -> dict[int, float]:
        """{k: accuracy} so far (NaN before any sample)."""
        return {k: (c / self.total if self.total else math.nan) for k, c in self.correct.items()}


# --------------------------------------------------------------------------- ROC (lab 04)


@dataclass
class ROCResult:
    """One-vs-rest ROC curves: per class ``fpr[c]``, ``tpr[c]`` (increasing, from 0 to 1) and
    ``thresholds[c]`` (decreasing; the first is +inf), and ``auc`` (K,) with NaN for a class
    without positive or without negative pixels."""

    fpr: list[torch.Tensor]
    tpr: list[torch.Tensor]
    thresholds: list[torch.Tensor]
    auc: torch.Tensor


def _binary_roc(scores: torch.Tensor, positive: torch.Tensor):
    # exact ROC of one class: one point per distinct score (as sklearn's roc_curve without
    # dropping collinear points), starting at (0, 0) for the threshold +inf
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], positive[order].double()
    tps, fps = torch.cumsum(y, 0), torch.cumsum(1.0 - y, 0)
    last = torch.ones_like(s, dtype=torch.bool)  # last index of each run of equal scores
    last[:-1] = s[1:] != s[:-1]
    tps, fps, thr = tps[last], fps[last], s[last].double()
    zero = torch.zeros(1, dtype=torch.float64)
    tps, fps = torch.cat([zero, tps]), torch.cat([zero, fps])
    thr = torch.cat([torch.tensor([math.inf], dtype=torch.float64), thr])
    n_pos, n_neg = float(tps[-1]), float(fps[-1])
    tpr = tps / n_pos if n_pos > 0 else torch.full_like(tps, math.nan)
    fpr = fps / n_neg if n_neg > 0 else torch.full_like(fps, math.nan)
    auc = float(torch.trapezoid(tpr, fpr)) if n_pos > 0 and n_neg > 0 else math.nan
    return fpr, tpr, thr, auc


def roc_one_vs_rest(probs: torch.Tensor, targets: torch.Tensor, *,
                    ignore_index: int | None = 255) -> ROCResult:
    """One-vs-rest ROC per class from per-pixel scores: probs (B,K,H,W) or (N,K), targets
    (B,H,W) or (N,) -> :class:`ROCResult` (exact curves, trapezoidal AUC).

    Class ``c`` is positive where the target is ``c``, negative elsewhere; pixels whose target is
    ``ignore_index`` are dropped. Scores are any per-class scores (softmax probabilities
    usually); ties share one point. Memory grows with the number of pixels: pass a subset of a
    large test set.
    """
    if probs.ndim == 4:
        probs = probs.permute(0, 2, 3, 1).reshape(-1, probs.shape[1])  # (B*H*W, K)
        targets = targets.reshape(-1)
    if probs.ndim != 2 or targets.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (B,K,H,W) with targets (B,H,W), or (N,K) with (N,); "
                         f"got {tuple(probs.shape)} and {tuple(targets.shape)}")
    probs, targets = probs.detach().cpu(), targets.detach().cpu().long()
    if ignore_index is not None:
        keep = targets != ignore_index
        probs, targets = probs[keep], targets[keep]
    k = probs.shape[1]
    bad = (targets < 0) | (targets >= k)
    if bool(bad.any()):
        raise ValueError(f"targets must be in [0, {k}) or ignore_index={ignore_index}; found "
                         f"{targets[bad].unique()[:5].tolist()}")
    curves = [_binary_roc(probs[:, c], targets == c) for c in range(k)]
    return ROCResult(fpr=[c[0] for c in curves], tpr=[c[1] for c in curves],
                     thresholds=[c[2] for c in curves],
                     auc=torch.tensor([c[3] for c in curves], dtype=torch.float64))
