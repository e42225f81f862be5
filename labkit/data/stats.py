"""Pixel statistics of segmentation datasets: class frequencies and class weights for the loss.

``class_frequencies`` counts the label values of every mask (ignored pixels left out);
``class_weights`` turns the frequencies into per-class loss weights, e.g. for
``nn.CrossEntropyLoss(weight=...)``: "inverse" (1 / f_c) or "median" (median frequency balancing,
median(f) / f_c, Eigen & Fergus 2015, https://arxiv.org/abs/1411.4734).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["class_frequencies", "class_pixel_counts", "class_weights"]

WEIGHT_SCHEMES = ("inverse", "median")


def _masks_of(item: object) -> torch.Tensor:
    """The mask tensor of one dataset item (image, mask) or batch (images, masks) or a bare mask."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        item = item[1]
    elif isinstance(item, dict):
        item = next((item[k] for k in ("masks", "labels", "targets") if k in item), None)
    if isinstance(item, np.ndarray):
        item = torch.from_numpy(item)
    if not isinstance(item, torch.Tensor):
        raise TypeError(f"expected (image, mask) pairs or mask tensors, got {type(item).__name__}")
    if item.is_floating_point():
        raise TypeError(f"masks must hold integer class ids, got {item.dtype}")
    return item


def class_pixel_counts(
    data: Iterable,
    num_classes: int,
    ignore_index: int | None = 255,
    *,
    progress: bool = True,
) -> np.ndarray:
    """Pixel count per class (K,) int64 over a dataset, a DataLoader or a list of pairs / masks."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    counts = torch.zeros(num_classes, dtype=torch.int64)
    total = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
    for item in tqdm(data, total=total, desc="counting pixels", leave=False, disable=not progress):
        m = _masks_of(item).reshape(-1).long().cpu()
        if ignore_index is not None:
            m = m[m != ignore_index]
        if m.numel() and (int(m.min()) < 0 or int(m.max()) >= num_classes):
            bad = torch.unique(m[(m < 0) | (m >= num_classes)])[:10].tolist()
            raise ValueError(
                f"mask values {bad} are outside [0, {num_classes}) and not "
                f"ignore_index={ignore_index}"
            )
        counts += torch.bincount(m, minlength=num_classes)
    return counts.numpy()


def class_frequencies(
    data: Iterable,
    num_classes: int,
    ignore_index: int | None = 255,
    *,
    progress: bool = True,
) -> np.ndarray:
    """Fraction of the non-ignored pixels in each class (K,) float64, summing to 1 (or all 0)."""
    counts = class_pixel_counts(data, num_classes, ignore_index, progress=progress)
    total = counts.sum()
    if total == 0:
        return np.zeros(num_classes, dtype=np.float64)
    return counts.astype(np.float64) / float(total)


def class_weights(
    freqs: np.ndarray | torch.Tensor | Iterable[float],
    scheme: str = "inverse",
    *,
    normalize: bool = True,
    max_weight: float | None = None,
) -> torch.Tensor:
    """Loss weights (K,) float32 from class frequencies (K,): "inverse" 1/f or "median" median(f)/f.

    Classes with frequency 0 get weight 0 (they never occur as a target); ``median`` uses the
    median of the non-zero frequencies (the lower one of the two middle values for an even
    count, as ``torch.median``). With ``normalize`` the weights are rescaled so that their
    frequency-weighted mean is 1 (the loss keeps its scale on this data); ``max_weight`` then caps
    each weight.
    """
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"scheme must be one of {WEIGHT_SCHEMES}, got {scheme!r}")
    f = torch.as_tensor(np.asarray(freqs, dtype=np.float64))
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"freqs must be a non-empty (K,) vector, got shape {tuple(f.shape)}")
    if bool((f < 0).any()) or not bool(torch.isfinite(f).all()):
        raise ValueError("freqs must be finite and >= 0")
    present = f > 0
    if not bool(present.any()):
        raise ValueError("every frequency is 0: no class to weight")
    w = torch.zeros_like(f)
    if scheme == "inverse":
        w[present] = 1.0 / f[present]
    else:
        w[present] = f[present].median() / f[present]
    if normalize:
        w = w / (w * f / f.sum()).sum()
    if max_weight is not None:
        w = w.clamp(max=max_weight)
    return w.float()
