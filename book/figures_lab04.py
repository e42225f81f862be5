"""Teaching figures of lab 04 (transfer strategies, one-vs-rest ROC), made without training.

Merged into ``book/figures.py``'s ``FIGURES``; each function writes ``lab04_<what>.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from figures import save  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Patch  # noqa: E402

_COLOURS = {"random, trained": "#fdae61", "pretrained, trained": "#74add1",
            "pretrained, frozen": "#bdbdbd", "pretrained (Cityscapes), trained": "#4575b4"}

# strategy -> (encoder state, head state, last layer state, learning rates)
_STRATEGIES = (
    ("from scratch", "random, trained", "random, trained", "random, trained", "lr / lr"),
    ("fine-tuned", "pretrained, trained", "random, trained", "random, trained", "lr / lr"),
    ("frozen encoder", "pretrained, frozen", "random, trained", "random, trained", "0 / lr"),
    ("fine-tuned,\nencoder lr / 2", "pretrained, trained", "random, trained", "random, trained",
     "lr/2 / lr"),
    ("Cityscapes → Pets\n(SegFormer)", "pretrained (Cityscapes), trained",
     "pretrained (Cityscapes), trained", "random, trained", "lr / lr"),
)


def _box(ax, x, y, w, h, colour, text, hatch=None):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=colour, ec="black",
                                lw=0.8, hatch=hatch))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def lab04_strategies(outdir: Path) -> None:
    """Which part of the network starts where and trains, for each strategy of the lab."""
    fig, ax = plt.subplots(figsize=(10, 4.2))
    n = len(_STRATEGIES)
    for i, (name, enc, dec, last, lrs) in enumerate(_STRATEGIES):
        y = n - 1 - i
        ax.text(-0.1, y + 0.35, name, ha="right", va="center", fontsize=9)
        _box(ax, 0.0, y, 3.0, 0.7, _COLOURS[enc], "encoder",
             hatch="//" if "frozen" in enc else None)
        _box(ax, 3.2, y, 1.6, 0.7, _COLOURS[dec], "head (decoder)")
        _box(ax, 5.0, y, 0.9, 0.7, _COLOURS[last], "last\nlayer")
        ax.text(6.1, y + 0.35, f"lr: {lrs}", va="center", fontsize=8)
    ax.set_xlim(-2.6, 7.2)
    ax.set_ylim(-0.3, n)
    ax.axis("off")
    handles = [Patch(fc=c, ec="black", label=k, hatch="//" if "frozen" in k else None)
               for k, c in _COLOURS.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4,
              fontsize=8, frameon=False)
    ax.set_title("Where each part starts, and whether it trains (lr: encoder / head)")
    save(fig, outdir, "lab04_strategies.png", tight_layout=False)


def lab04_roc(outdir: Path) -> None:
    """One-vs-rest ROC curves from per-pixel probabilities of a toy 3-class prediction."""
    from labkit.metrics import roc_one_vs_rest
    from labkit.viz import plot_roc

    gen = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (4, 32, 32), generator=gen)
    # a confident, accurate scorer for "pet" and "background", a poor one for the thin "border"
    signal = torch.tensor([3.0, 2.5, 0.6]).view(1, 3, 1, 1)
    onehot = torch.nn.functional.one_hot(targets, 3).permute(0, 3, 1, 2).float()
    logits = torch.randn(4, 3, 32, 32, generator=gen) + signal * onehot
    roc = roc_one_vs_rest(logits.softmax(1), targets)
    fig = plot_roc(roc, ["pet", "background", "border"],
                   title="one-vs-rest ROC of a toy prediction")
    ax = fig.axes[0]
    c = 2
    k = int(np.argmin(np.abs(roc.thresholds[c].numpy() - 0.4)))
    ax.plot(roc.fpr[c][k], roc.tpr[c][k], "ko", markersize=4)
    ax.annotate("threshold: border if p(border) ≥ 0.4", (float(roc.fpr[c][k]),
                float(roc.tpr[c][k])), xytext=(0.3, 0.33), fontsize=8,
                arrowprops={"arrowstyle": "->", "lw": 0.8})
    save(fig, outdir, "lab04_roc.png", tight_layout=False)


FIGURES: dict[str, list[Callable[[Path], None]]] = {
    "lab04_transfer": [lab04_strategies, lab04_roc],
}
