"""Plots for the labs (matplotlib): images, masks, blends, detections, class-activation maps here;
charts of numbers (learning curves, confusion matrices, IoU bars, ROC) in :mod:`labkit.plots`,
re-exported, so ``lk.viz`` is the one place to look.

Every function returns its Figure (or widget) and never calls ``plt.show``. Palettes are a list of
RGB tuples or a (K,3) uint8 array; ``ignore_index`` pixels are drawn black.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from labkit import plots
from labkit.plots import (  # noqa: F401  (re-exported: lk.viz is the one place to look)
    _numpy,
    plot_confusion_matrix,
    plot_curves,
    plot_grouped_bars,
    plot_history,
    plot_per_class_iou,
    plot_roc,
)

__all__ = [
    "blend",
    "browse_predictions",
    "colorize_mask",
    "default_palette",
    "draw_detections",
    *plots.__all__,
    "show_images",
    "show_masks",
]

ArrayLike = torch.Tensor | np.ndarray


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


__all__ += ["cam_overlay", "show_cams"]
