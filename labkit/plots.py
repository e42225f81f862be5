"""Charts of numbers: learning curves, confusion matrices, per-class IoU bars, named curves, grouped
bars, ROC curves. Each returns a matplotlib Figure; re-exported by :mod:`labkit.viz`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = [
    "plot_confusion_matrix",
    "plot_curves",
    "plot_grouped_bars",
    "plot_history",
    "plot_per_class_iou",
    "plot_roc",
]


NOTHING_YET = ("nothing to plot yet: the cells above produced no {what}\n"
               "(is every exercise they use implemented? `lk.check(\"name\")` says)")


def nothing_to_plot(ax: Any, what: str) -> None:
    """Say on ``ax`` that there is no data, and why that usually is, instead of an empty plot."""
    ax.text(0.5, 0.5, NOTHING_YET.format(what=what), ha="center", va="center", fontsize=9,
            wrap=True, transform=ax.transAxes, color="#a33")
    ax.set_xticks([])
    ax.set_yticks([])


def _epoch_axis(ax: Any, xs: Sequence[float]) -> None:
    """Whole-number epoch ticks; one epoch (smoke mode) sits in the middle, not at 0.96..1.04."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo, hi = min(xs), max(xs)
    if hi - lo < 1:
        ax.set_xlim(lo - 1, hi + 1)
        ax.set_xlabel(f"epoch (only {len(set(xs))} epoch recorded: smoke mode?)")


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def plot_confusion_matrix(
    confmat: Any,
    class_names: Sequence[str] | None = None,
    *,
    normalize: str | None = "true",
    annotate: bool | None = None,
) -> Figure:
    """Heat map of a (K,K) confusion matrix (rows = target); normalize "true" (rows), "pred", "all" or None."""
    cm = _numpy(confmat).astype(np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confmat must be (K, K), got {cm.shape}")
    if not np.nansum(np.abs(cm)):
        fig, ax = plt.subplots(figsize=(4.5, 3.0))
        nothing_to_plot(ax, "counts (the confusion matrix is all zeros)")
        return fig
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            cm = cm / cm.sum(1, keepdims=True)
        elif normalize == "pred":
            cm = cm / cm.sum(0, keepdims=True)
        elif normalize == "all":
            cm = cm / cm.sum()
        elif normalize is not None:
            raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}")
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} matrix")
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names, rotation=90)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("target")
    if annotate if annotate is not None else k <= 20:
        top = np.nanmax(cm) if np.isfinite(cm).any() else 1.0
        for i in range(k):
            for j in range(k):
                if np.isfinite(cm[i, j]):
                    text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                    color = "white" if cm[i, j] > 0.5 * top else "black"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    return fig


def plot_history(history: Any, keys: Sequence[str] = ("loss", "miou")) -> Figure:
    """Learning curves per epoch: one panel per key, train_<key> and val_<key> lines."""
    records = list(getattr(history, "records", history) or [])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        xs_all: list[float] = []
        ax.set_title(key)
        ax.set_xlabel("epoch")
        for name in (f"train_{key}", f"val_{key}", key):
            pts = [(r.get("epoch", i + 1), r[name]) for i, r in enumerate(records) if name in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=name.split("_")[0] if name != key else key)
                xs_all += xs
        if not records:
            nothing_to_plot(ax, "training epochs")
        elif not xs_all:
            ax.text(0.5, 0.5, f"no '{key}' in history", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            _epoch_axis(ax, xs_all)
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    return fig


def plot_per_class_iou(
    per_class_iou: Any,
    class_names: Sequence[str] | None = None,
    compare: Mapping[str, Any] | None = None,
    *,
    label: str = "model",
) -> Figure:
    """Bars of per-class IoU (K,), with the ``compare`` series {name: (K,)} side by side; NaN bars left out."""
    series = {label: _numpy(per_class_iou).astype(np.float64).reshape(-1)}
    for name, values in (compare or {}).items():
        series[name] = _numpy(values).astype(np.float64).reshape(-1)
    k = len(series[label])
    if k == 0 or not any(np.isfinite(v).any() for v in series.values()):
        fig, ax = plt.subplots(figsize=(5.0, 3.0))
        nothing_to_plot(ax, "per-class IoU (every value is missing or NaN)")
        return fig
    if any(len(v) != k for v in series.values()):
        raise ValueError("every series must have one value per class")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * k * max(1, len(series) * 0.6) + 2), 3.8))
    x = np.arange(k)
    for s, (name, values) in enumerate(series.items()):
        miou = np.nanmean(values) if np.isfinite(values).any() else math.nan
        ax.bar(
            x + (s - (len(series) - 1) / 2) * width,
            values,
            width,
            label=f"{name} (mIoU {miou:.3f})",
        )
    ax.set_xticks(x, names, rotation=60, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    ax: Any = None,
) -> Figure:
    """Line plot of named curves ``{name: (xs, ys)}`` (e.g. accuracy against shift per model)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
    else:
        fig = ax.figure
    if not any(len(xs) for xs, _ in curves.values()):
        nothing_to_plot(ax, "curves")
    for name, (xs, ys) in curves.items():
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r}: {len(xs)} x values for {len(ys)} y values")
        ax.plot(list(xs), list(ys), marker="o", markersize=3, label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    *,
    ylabel: str = "",
    title: str = "",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Grouped bar chart: one group per outer key, one bar per inner key, labelled with values."""
    groups = list(values)
    series = list(dict.fromkeys(k for g in groups for k in values[g]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(groups) * max(1, len(series)) / 2, 3.5))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        ys = [float(values[g].get(name, math.nan)) for g in groups]
        heights = [0.0 if math.isnan(y) else y for y in ys]  # a missing value: empty bar, "n/a"
        bars = ax.bar(x + (j - (len(series) - 1) / 2) * width, heights, width, label=str(name))
        texts = ["n/a" if math.isnan(y) else f"{y:.2f}" for y in ys]
        ax.bar_label(bars, labels=texts, fontsize=7)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if series:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_roc(roc: Any, class_names: Sequence[str] | None = None, *, title: str = "") -> Figure:
    """One-vs-rest ROC curves (a :class:`labkit.metrics.ROCResult`), AUC in the legend."""
    k = len(roc.fpr)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} ROC curves")
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for c in range(k):
        auc = float(roc.auc[c])
        label = f"{names[c]} (AUC {'n/a' if math.isnan(auc) else f'{auc:.3f}'})"
        ax.plot(_numpy(roc.fpr[c]), _numpy(roc.tpr[c]), label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title or "one-vs-rest ROC (per pixel)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
