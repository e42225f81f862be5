"""Teaching figures of lab 07 (Faster R-CNN backbone transfer), made without training.

Merged into ``book/figures.py``'s ``FIGURES``; each function writes ``lab07_<what>.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figures import save  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle  # noqa: E402

_COLOURS = {"ImageNet classifier": "#74add1", "COCO Mask R-CNN": "#4575b4",
            "random": "#fdae61"}
_PARTS = ("backbone body\n(ResNet-50)", "FPN", "RPN", "RoI heads\n(21 classes)")
_INITS = (  # init -> source of each part
    ("imagenet", ("ImageNet classifier", "random", "random", "random")),
    ("coco", ("COCO Mask R-CNN", "COCO Mask R-CNN", "random", "random")),
    ("random", ("random", "random", "random", "random")),
)


def lab07_inits(outdir: Path) -> None:
    """Which part of Faster R-CNN starts from which checkpoint, per backbone_init."""
    fig, ax = plt.subplots(figsize=(8.6, 2.9))
    for row, (init, sources) in enumerate(_INITS):
        y = len(_INITS) - 1 - row
        ax.text(-0.15, y + 0.4, f'"{init}"', ha="right", va="center", fontsize=10,
                family="monospace")
        for col, (part, source) in enumerate(zip(_PARTS, sources, strict=True)):
            ax.add_patch(FancyBboxPatch((col * 2.0, y + 0.05), 1.8, 0.7,
                                        boxstyle="round,pad=0.02", fc=_COLOURS[source],
                                        ec="black", lw=0.6))
            ax.text(col * 2.0 + 0.9, y + 0.4, part, ha="center", va="center", fontsize=8)
            if col < len(_PARTS) - 1:
                ax.annotate("", (col * 2.0 + 2.0, y + 0.4), (col * 2.0 + 1.8, y + 0.4),
                            arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(-1.6, 8.0)
    ax.set_ylim(-0.1, len(_INITS))
    ax.axis("off")
    ax.legend(handles=[Patch(fc=c, ec="black", lw=0.6, label=n) for n, c in _COLOURS.items()],
              loc="upper center", bbox_to_anchor=(0.55, 0.02), ncol=3, fontsize=8, frameon=False)
    ax.set_title("Where each part of the detector starts", fontsize=10)
    save(fig, outdir, "lab07_inits.png", tight_layout=False)


def lab07_roialign(outdir: Path) -> None:
    """RoIPool snaps a proposal to the feature grid; RoIAlign samples it bilinearly."""
    box = (1.3, 0.7, 5.6, 4.2)  # proposal in feature-map cells (x0, y0, x1, y1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, title in zip(axes, ("RoIPool: quantise, then max-pool",
                                "RoIAlign: bilinear samples, no rounding"), strict=True):
        for k in range(8):
            ax.axhline(k, color="#d9d9d9", lw=0.8)
            ax.axvline(k, color="#d9d9d9", lw=0.8)
        x0, y0, x1, y1 = box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="#d7301f", lw=2,
                               label="proposal"))
        ax.set_xlim(0, 7)
        ax.set_ylim(5, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
    # RoIPool: rounded box, 2x2 bins with rounded borders
    qx0, qy0, qx1, qy1 = round(box[0]), round(box[1]), round(box[2]), round(box[3])
    ax = axes[0]
    ax.add_patch(Rectangle((qx0, qy0), qx1 - qx0, qy1 - qy0, fill=True, fc="#fee08b", alpha=0.5,
                           ec="#b35806", lw=2, label="pooled window"))
    mx, my = qx0 + (qx1 - qx0) // 2, qy0 + (qy1 - qy0) // 2
    ax.plot([mx, mx], [qy0, qy1], color="#b35806", lw=1.5)
    ax.plot([qx0, qx1], [my, my], color="#b35806", lw=1.5)
    ax.legend(loc="lower right", fontsize=8)
    # RoIAlign: 2x2 bins of the exact box, 2x2 sample points per bin
    ax = axes[1]
    x0, y0, x1, y1 = box
    bw, bh = (x1 - x0) / 2, (y1 - y0) / 2
    for i in range(2):
        for j in range(2):
            ax.add_patch(Rectangle((x0 + i * bw, y0 + j * bh), bw, bh, fill=False, ec="#4575b4",
                                   lw=1, ls="--"))
            for a in (0.25, 0.75):
                for b in (0.25, 0.75):
                    ax.plot(x0 + (i + a) * bw, y0 + (j + b) * bh, "o", color="#4575b4", ms=4)
    ax.plot([], [], "o", color="#4575b4", ms=4, label="bilinear sample points")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save(fig, outdir, "lab07_roialign.png", tight_layout=False)


def lab07_ap(outdir: Path) -> None:
    """Precision-recall of a toy ranked list of detections and its VOC AP (all-point)."""
    from labkit.metrics import voc_ap

    hits = np.array([1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0], dtype=float)  # TP / FP in score order
    npos = 8  # ground-truth boxes (two are never detected)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    rec, prec = tp / npos, tp / (tp + fp)
    ap = voc_ap(rec, prec, use_07_metric=False)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.maximum.accumulate(np.concatenate(([0.0], prec, [0.0]))[::-1])[::-1]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(rec, prec, "o-", color="#bdbdbd", ms=4, label="precision after each detection")
    ax.step(mrec, mpre, where="pre", color="#4575b4", lw=2, label="precision envelope")
    ax.fill_between(mrec, mpre, step="pre", alpha=0.2, color="#4575b4",
                    label=f"AP = area = {ap:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("VOC AP@0.5 of one class (12 detections, 8 objects)", fontsize=10)
    fig.tight_layout()
    save(fig, outdir, "lab07_ap.png", tight_layout=False)


def lab07_shapes(outdir: Path) -> None:
    """Scenes of the synthetic shapes detection set with their ground-truth boxes."""
    from labkit.data import SHAPES_CLASSES, SHAPES_PALETTE, ShapesDetection

    data = ShapesDetection(4, size=96, seed=3)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    for ax, (image, target) in zip(axes, (data[i] for i in range(4)), strict=True):
        ax.imshow(image.permute(1, 2, 0).numpy())
        for (x0, y0, x1, y1), label in zip(target["boxes"].tolist(), target["labels"].tolist(),
                                           strict=True):
            colour = np.array(SHAPES_PALETTE[label]) / 255
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=2))
            ax.text(x0, y0, SHAPES_CLASSES[label], fontsize=7, color="white", va="bottom",
                    bbox={"fc": colour, "alpha": 0.8, "pad": 1, "ec": "none"})
        ax.axis("off")
    fig.tight_layout()
    save(fig, outdir, "lab07_shapes.png", tight_layout=False)


FIGURES: dict[str, list[Callable[[Path], None]]] = {
    "lab07_detection": [lab07_inits, lab07_roialign, lab07_ap, lab07_shapes],
}
