"""Teaching figures of lab 02 (IoU as overlap of a toy trimap and its prediction, a confusion matrix).

Collected by ``book/figures.py``; each function writes ``lab02_<what>.png`` with :func:`figures.save`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from figures import save
from matplotlib.colors import ListedColormap

from labkit.data.pets import PETS_CLASSES

IGNORE = 255
PET_COLOURS = ["#e08214", "#8073ac", "#fee0b6"]  # pet, background, border
IGNORE_COLOUR = "#bdbdbd"

def toy_trimap(size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A toy target trimap and a plausible prediction, ``(size, size)`` class ids (255 ignored)."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size * 0.55, xx - size * 0.45)
    target = np.full((size, size), 1, dtype=np.int64)  # background
    target[r < size * 0.33] = 2  # border ring
    target[r < size * 0.27] = 0  # pet
    target[:2, -6:] = IGNORE  # an unlabelled corner
    r_pred = np.hypot(yy - size * 0.5, xx - size * 0.5)
    preds = np.full((size, size), 1, dtype=np.int64)
    preds[r_pred < size * 0.30] = 0  # shifted, slightly too large pet, border mostly missed
    preds[(r_pred >= size * 0.30) & (r_pred < size * 0.32) & (xx < size * 0.5)] = 2
    return target, preds


def confusion(target: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts, rows = target class, columns = predicted class; ignored pixels dropped."""
    keep = target != IGNORE
    flat = target[keep] * num_classes + preds[keep]
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def _show_mask(ax: plt.Axes, mask: np.ndarray, title: str) -> None:
    cmap = ListedColormap([*PET_COLOURS, IGNORE_COLOUR])
    shown = np.where(mask == IGNORE, len(PETS_CLASSES), mask)
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=len(PETS_CLASSES), interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def lab02_iou_overlap(outdir: Path) -> None:
    target, preds = toy_trimap()
    cls = 0  # pet
    valid = target != IGNORE
    tp = valid & (target == cls) & (preds == cls)
    fp = valid & (target != cls) & (preds == cls)
    fn = valid & (target == cls) & (preds != cls)
    overlap = np.zeros(target.shape, dtype=np.int64)  # 0 true negative
    overlap[tp], overlap[fp], overlap[fn], overlap[~valid] = 1, 2, 3, 4
    iou = tp.sum() / (tp.sum() + fp.sum() + fn.sum())

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    _show_mask(axes[0], target, "target")
    _show_mask(axes[1], preds, "prediction")
    colours = ["#f7f7f7", "#1a9850", "#d73027", "#4575b4", IGNORE_COLOUR]
    axes[2].imshow(overlap, cmap=ListedColormap(colours), vmin=0, vmax=4, interpolation="nearest")
    axes[2].set_title(
        f"pet: IoU = TP/(TP+FP+FN)\n= {tp.sum()}/({tp.sum()}+{fp.sum()}+{fn.sum()}) = {iou:.2f}"
    )
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    labels = ["TN", "TP", "FP", "FN", "ignored"]
    axes[2].legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    for ax in axes[:2]:
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in [*PET_COLOURS, IGNORE_COLOUR]]
        ax.legend(handles, [*PETS_CLASSES, "ignored"], loc="upper center",
                  bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False, fontsize=8)  # fmt: skip
    save(fig, outdir, "lab02_iou_overlap.png")


def lab02_confusion(outdir: Path) -> None:
    target, preds = toy_trimap()
    k = len(PETS_CLASSES)
    cm = confusion(target, preds, k)
    tp = np.diag(cm)
    iou = tp / (cm.sum(0) + cm.sum(1) - tp)
    pixel_acc = tp.sum() / cm.sum()

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            colour = "white" if cm[i, j] > cm.max() / 2 else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks(range(k), PETS_CLASSES)
    ax.set_yticks(range(k), [f"{c}\nIoU {v:.2f}" for c, v in zip(PETS_CLASSES, iou, strict=True)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("target class")
    ax.set_title(
        f"pixel accuracy {pixel_acc:.2f}, mIoU {iou.mean():.2f}, worst-class IoU {iou.min():.2f}"
    )
    save(fig, outdir, "lab02_confusion.png")


FIGURES: dict[str, list[Callable[[Path], None]]] = {"lab02_segmentation": [lab02_iou_overlap, lab02_confusion]}
