"""Teaching figures of lab 06 (patch tokens of an image, CutMix).

Collected by ``book/figures.py``; each function writes ``lab06_<what>.png`` with :func:`figures.save`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from figures import save


def _toy_pattern(size: int = 32, kind: str = "rings") -> np.ndarray:
    """A synthetic RGB image in ``[0, 1]``, ``(size, size, 3)`` (no data)."""
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    if kind == "rings":
        r = np.hypot(yy - 0.45, xx - 0.55)
        img = np.stack([0.5 + 0.5 * np.cos(18 * r), 0.3 + 0.4 * yy, 0.8 - 0.5 * xx], axis=-1)
    else:  # stripes
        stripes = 0.5 + 0.5 * np.sign(np.sin(14 * (xx + 0.5 * yy)))
        img = np.stack([0.2 + 0.2 * stripes, 0.4 + 0.5 * stripes, 0.3 + 0.1 * xx], axis=-1)
    return np.clip(img, 0, 1)


def lab06_tokens(outdir: Path) -> None:
    size = 32
    image = _toy_pattern(size)
    patches = [8, 4, 2]
    fig = plt.figure(figsize=(12, 3.4))
    grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 0.15, 2.2])
    for i, p in enumerate(patches):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(image, extent=(0, size, size, 0), interpolation="nearest")
        for t in range(0, size + 1, p):
            ax.axhline(t, color="white", lw=0.6)
            ax.axvline(t, color="white", lw=0.6)
        ax.set_title(f"p = {p}: {size // p} x {size // p} = {(size // p) ** 2} patches", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[0, 4])
    tokens = np.array([(size // p) ** 2 + 1 for p in patches])  # + class token
    entries = tokens**2
    x = np.arange(len(patches))
    ax.bar(x - 0.2, tokens, 0.4, color="#4575b4", label="tokens N + 1 (with class token)")
    ax.bar(x + 0.2, entries, 0.4, color="#d73027", label="attention matrix (N + 1)$^2$ entries")
    for i in range(len(patches)):
        ax.text(x[i] - 0.2, tokens[i] * 1.2, f"{tokens[i]:,}", ha="center", fontsize=8)
        ax.text(x[i] + 0.2, entries[i] * 1.2, f"{entries[i]:,}", ha="center", fontsize=8)
    ax.set_xticks(x, [f"p = {p}" for p in patches])
    ax.set_yscale("log")
    ax.set_ylim(1, entries.max() * 8)
    ax.set_title("per image, per head and per layer (32 x 32 input)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    save(fig, outdir, "lab06_tokens.png")


def lab06_cutmix(outdir: Path) -> None:
    size = 32
    img_a, img_b = _toy_pattern(size, "rings"), _toy_pattern(size, "stripes")
    y0, y1, x0, x1 = 6, 22, 14, 30  # a fixed 16 x 16 box (in training: random, see the text)
    mixed = img_a.copy()
    mixed[y0:y1, x0:x1] = img_b[y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / size**2
    classes = ["A", "B", "C", "D"]
    label_a = np.array([1.0, 0, 0, 0])
    label_b = np.array([0, 1.0, 0, 0])
    label_mix = lam * label_a + (1 - lam) * label_b

    fig, axes = plt.subplots(2, 3, figsize=(9, 4.6), gridspec_kw={"height_ratios": [3, 1.3]})
    for ax, img, title in zip(axes[0], [img_a, img_b, mixed],
                              ["image a (class A)", "image b (class B)",
                               f"CutMix: box of b pasted into a\n"
                               f"λ = 1 - {(y1 - y0) * (x1 - x0)}/{size**2} = {lam:.2f}"],
                              strict=True):  # fmt: skip
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 2].add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                       ec="white", lw=1.5, ls="--"))  # fmt: skip
    for ax, label in zip(axes[1], [label_a, label_b, label_mix], strict=True):
        ax.bar(classes, label, color=["#4575b4", "#d73027", "#999999", "#999999"])
        for i, v in enumerate(label):
            if v:
                ax.text(i, v + 0.05, f"{v:.2f}", ha="center", fontsize=8)
        ax.set_ylim(0, 1.35)
        ax.set_yticks([0, 1])
        ax.set_ylabel("target", fontsize=8)
    save(fig, outdir, "lab06_cutmix.png")


FIGURES: dict[str, list[Callable[[Path], None]]] = {"lab06_vit": [lab06_tokens, lab06_cutmix]}
