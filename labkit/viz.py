"""Plots for the labs (matplotlib): images, masks, blends, confusion matrices, curves, detections.

Every function returns its Figure (or widget) and never calls ``plt.show``. Palettes are a list of
RGB tuples or a (K,3) uint8 array; ``ignore_index`` pixels are drawn black.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "blend",
    "browse_predictions",
    "colorize_mask",
    "default_palette",
    "draw_detections",
    "plot_confusion_matrix",
    "plot_history",
    "plot_per_class_iou",
    "show_images",
    "show_masks",
]

ArrayLike = torch.Tensor | np.ndarray


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def default_palette(num_classes: int) -> np.ndarray:
    """(K,3) uint8 distinct colours (matplotlib tab20, repeated)."""
    cmap = plt.get_cmap("tab20")
    colors = [cmap(i % 20)[:3] for i in range(num_classes)]
    return (np.asarray(colors).reshape(-1, 3) * 255).round().astype(np.uint8)


def _palette(palette: Any, num_classes: int | None = None) -> np.ndarray:
    if palette is None:
        return default_palette(num_classes or 20)
    pal = _numpy(palette)
    if pal.ndim != 2 or pal.shape[1] != 3:
        raise ValueError(f"palette must be (K, 3) RGB, got shape {pal.shape}")
    if pal.dtype != np.uint8:
        if pal.min() < 0 or pal.max() > 255:
            raise ValueError("palette values must lie in [0, 255]")
        pal = pal.round().astype(np.uint8)
    return pal


def _image_hwc(
    image: Any, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """(H,W,3) float in [0,1] from (3,H,W)/(1,H,W)/(H,W) tensors or (H,W,3) arrays (uint8 or float)."""
    x = _numpy(image)
    channel_first = isinstance(image, torch.Tensor) or x.shape[-1] not in (1, 3)
    if x.ndim == 3 and x.shape[0] in (1, 3) and channel_first:
        x = x.transpose(1, 2, 0)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected an image (3,H,W) or (H,W,3), got shape {tuple(np.shape(image))}"
        )
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if std is not None:
        x = x * np.asarray(std, dtype=np.float64).reshape(1, 1, -1)
    if mean is not None:
        x = x + np.asarray(mean, dtype=np.float64).reshape(1, 1, -1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.clip(x, 0.0, 1.0)


def _as_list(images: Any) -> list[Any]:
    """A batch (B,3,H,W) / (B,H,W,3) or a single image (3,H,W) / (H,W,3) / (H,W) as a list of images."""
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim <= 3:
        return [images]
    return list(images)


def _grid(n: int, ncols: int, size: float = 2.5, *, figsize: tuple[float, float] | None = None):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize or (size * ncols, size * nrows), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def show_images(
    images: Any,
    *,
    titles: Sequence[str] | None = None,
    nrow: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Grid of images (B,3,H,W) (or a list), ``nrow`` per row, unnormalised by ``x * std + mean``."""
    items = _as_list(images)
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"{len(titles)} titles for {len(items)} images")
    fig, axes = _grid(len(items), nrow, figsize=figsize)
    for i, (ax, img) in enumerate(zip(axes.flat, items)):
        ax.imshow(_image_hwc(img, mean, std))
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    return fig


def colorize_mask(
    mask: ArrayLike, palette: Any = None, ignore_index: int | None = 255
) -> np.ndarray:
    """Class mask (H,W) -> (H,W,3) uint8 RGB: class k gets palette[k], ignore_index black."""
    m = _numpy(mask).astype(np.int64)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    ignored = m == ignore_index if ignore_index is not None else np.zeros(m.shape, dtype=bool)
    pal = _palette(palette, int(m[~ignored].max()) + 1 if (~ignored).any() else 1)
    bad = (~ignored) & ((m < 0) | (m >= len(pal)))
    if bad.any():
        raise ValueError(
            f"mask values {sorted(set(m[bad].tolist()))[:10]} have no colour in a {len(pal)}-colour palette"
        )
    out = pal[np.where(ignored, 0, m)]
    out[ignored] = 0
    return out


def blend(image: Any, mask_rgb: Any, alpha: float = 0.7) -> np.ndarray:
    """alpha * image + (1 - alpha) * mask_rgb as (H,W,3) uint8; image (3,H,W) / (H,W,3), mask_rgb (H,W,3)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = _image_hwc(image) * 255.0
    mrgb = _numpy(mask_rgb)
    if mrgb.dtype != np.uint8:
        mrgb = _image_hwc(mrgb) * 255.0
    if img.shape != mrgb.shape:
        raise ValueError(f"image {img.shape} and mask_rgb {mrgb.shape} differ in size")
    out = alpha * img + (1.0 - alpha) * mrgb.astype(np.float64)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _labels(x: Any) -> np.ndarray:
    """(H,W) labels from a mask (H,W) or logits (K,H,W)."""
    a = _numpy(x)
    return a.argmax(0) if a.ndim == 3 else a


def _legend(fig: Figure, palette: np.ndarray, class_names: Sequence[str] | None) -> None:
    if class_names:
        handles = [
            Patch(color=palette[i] / 255.0, label=name)
            for i, name in enumerate(class_names[: len(palette)])
        ]
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(len(handles), 6),
            fontsize=8,
            frameon=False,
        )


def show_masks(
    images: Any,
    masks: Any,
    preds: Any | None = None,
    *,
    palette: Any = None,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = 255,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """One row per sample: image (B,3,H,W), target mask (B,H,W), prediction (B,H,W) or logits (B,K,H,W)."""
    imgs, gts = list(images), list(masks)
    prs = list(preds) if preds is not None else None
    if len(imgs) != len(gts) or (prs is not None and len(prs) != len(imgs)):
        raise ValueError("images, masks and preds must have the same length")
    k = len(class_names) if class_names else None
    pal = _palette(
        palette, k or max(int(_numpy(m)[_numpy(m) != ignore_index].max(initial=0)) + 1 for m in gts)
    )
    ncols = 2 if prs is None else 3
    fig, axes = _grid(len(imgs) * ncols, ncols, size=3.0)
    for i in range(len(imgs)):
        row = axes[i]
        row[0].imshow(_image_hwc(imgs[i], mean, std))
        row[1].imshow(colorize_mask(_labels(gts[i]), pal, ignore_index))
        if prs is not None:
            row[2].imshow(colorize_mask(_labels(prs[i]), pal, ignore_index))
        if i == 0:
            for ax, title in zip(row, ("image", "target", "prediction")):
                ax.set_title(title)
    _legend(fig, pal, class_names)
    fig.tight_layout(rect=(0, 0.05 if class_names else 0, 1, 1))
    return fig


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
    records = list(getattr(history, "records", history))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        drawn = False
        for name in (f"train_{key}", f"val_{key}", key):
            pts = [(r.get("epoch", i + 1), r[name]) for i, r in enumerate(records) if name in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=name.split("_")[0] if name != key else key)
                drawn = True
        if not drawn:
            ax.text(
                0.5, 0.5, f"no '{key}' in history", ha="center", va="center", transform=ax.transAxes
            )
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if drawn:
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
    series = {label: _numpy(per_class_iou).astype(np.float64)}
    for name, values in (compare or {}).items():
        series[name] = _numpy(values).astype(np.float64)
    k = len(series[label])
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


def draw_detections(
    image: Any,
    boxes: Any,
    labels: Any,
    scores: Any | None = None,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    *,
    palette: Any = None,
) -> Figure:
    """Image (3,H,W) with xyxy boxes (N,4), labels (N,) and scores (N,) >= score_threshold drawn on it."""
    b = _numpy(boxes).reshape(-1, 4).astype(np.float64)
    lab = _numpy(labels).reshape(-1).astype(np.int64)
    sc = None if scores is None else _numpy(scores).reshape(-1).astype(np.float64)
    if len(lab) != len(b) or (sc is not None and len(sc) != len(b)):
        raise ValueError(
            f"{len(b)} boxes, {len(lab)} labels, {None if sc is None else len(sc)} scores"
        )
    pal = _palette(palette, max(len(class_names or ()), int(lab.max(initial=0)) + 1))
    img = _image_hwc(image)
    fig, ax = plt.subplots(figsize=(6, 6 * img.shape[0] / max(img.shape[1], 1)))
    ax.imshow(img)
    ax.axis("off")
    for i in range(len(b)):
        if sc is not None and sc[i] < score_threshold:
            continue
        x0, y0, x1, y1 = b[i]
        color = pal[lab[i] % len(pal)] / 255.0
        ax.add_patch(
            Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2)
        )
        name = (
            class_names[lab[i]]
            if class_names is not None and lab[i] < len(class_names)
            else str(lab[i])
        )
        text = name if sc is None else f"{name} {sc[i]:.2f}"
        ax.text(
            x0,
            y0,
            text,
            fontsize=8,
            color="white",
            va="bottom",
            bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "edgecolor": "none"},
        )
    fig.tight_layout()
    return fig


def _prediction_panels(
    image: Any,
    target: Any,
    pred: Any,
    palette: np.ndarray,
    *,
    alpha: float = 0.7,
    ignore_index: int | None = 255,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    img = (_image_hwc(image, mean, std) * 255).round().astype(np.uint8)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    panels = (
        ("image", img),
        ("target", blend(img, colorize_mask(_labels(target), palette, ignore_index), alpha)),
        ("prediction", blend(img, colorize_mask(_labels(pred), palette, ignore_index), alpha)),
    )
    for ax, (title, picture) in zip(axes, panels):
        ax.imshow(picture)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def browse_predictions(
    images: Any,
    targets: Any,
    preds: Any,
    palette: Any = None,
    *,
    ignore_index: int | None = 255,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
):
    """ipywidgets browser: image, target and prediction blends with index and alpha sliders; returns the widget."""
    import ipywidgets as widgets
    from IPython.display import clear_output, display

    if not (len(images) == len(targets) == len(preds)) or len(images) == 0:
        raise ValueError("images, targets and preds must be non-empty and of the same length")
    pal = _palette(palette, 256)
    index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="index")
    alpha = widgets.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="image alpha")
    out = widgets.Output()

    def render(*_: Any) -> None:
        with out:
            clear_output(wait=True)
            fig = _prediction_panels(
                images[index.value],
                targets[index.value],
                preds[index.value],
                pal,
                alpha=alpha.value,
                ignore_index=ignore_index,
                mean=mean,
                std=std,
            )
            display(fig)
            plt.close(fig)

    index.observe(render, names="value")
    alpha.observe(render, names="value")
    render()
    return widgets.VBox([widgets.HBox([index, alpha]), out])


# ------------------------------------------------------------------------- lab 01: CAMs, curves


def cam_overlay(image: Any, cam: Any, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """(H,W,3) float RGB: (1 - alpha) * image + alpha * cmap(cam); cam (H,W) in [0,1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = _image_hwc(image)
    c = _numpy(cam).astype(np.float64)
    if c.ndim == 3 and c.shape[0] == 1:
        c = c[0]
    if c.shape != img.shape[:2]:
        raise ValueError(f"cam {c.shape} and image {img.shape[:2]} differ in size")
    heat = plt.get_cmap(cmap)(np.clip(np.nan_to_num(c), 0.0, 1.0))[..., :3]
    return (1.0 - alpha) * img + alpha * heat


def show_cams(
    images: Any,
    cams: Any,
    *,
    alpha: float = 0.5,
    titles: Sequence[str] | None = None,
    nrow: int = 8,
    cmap: str = "jet",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Grid of class-activation maps (B,H,W) in [0,1] overlaid on their images (B,C,H,W)."""
    items, maps = _as_list(images), list(_numpy(cams).reshape(-1, *np.shape(cams)[-2:]))
    if len(items) != len(maps):
        raise ValueError(f"{len(items)} images for {len(maps)} maps")
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"{len(titles)} titles for {len(items)} images")
    fig, axes = _grid(len(items), nrow, size=1.8, figsize=figsize)
    for i, (ax, img, cam) in enumerate(zip(axes.flat, items, maps, strict=False)):
        ax.imshow(cam_overlay(img, cam, alpha=alpha, cmap=cmap))
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
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


__all__ += ["cam_overlay", "plot_curves", "plot_grouped_bars", "show_cams"]


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


__all__ += ["plot_roc"]
