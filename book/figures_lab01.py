"""Teaching figures of lab 01 (receptive fields of the VGG/ResNet variants, a class-activation map).

Collected by ``book/figures.py``; each function writes ``lab01_<what>.png`` with :func:`figures.save`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from figures import save


def receptive_field(layers: list[tuple[int, int]]) -> list[int]:
    """Receptive field after each ``(kernel, stride)`` layer: ``r += (k - 1) * jump``."""
    r, jump, out = 1, 1, []
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
        out.append(r)
    return out


def vgg_resnet_path(a: int, down: str) -> list[tuple[int, int]]:
    """``(kernel, stride)`` of the layers on the longest path of VGG-ResNet(a, b, down)."""
    layers = [(3, 1)]  # stem
    for stage in range(3):
        convs = [(3, 1)] * (2 * a)  # two 3x3 convolutions per residual block
        if stage > 0 and down == "maxpool":
            layers.append((2, 2))
        elif stage > 0:
            convs[0] = (3, 2)
        layers += convs
    return layers


def lab01_receptive_field(outdir: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.9))
    colours = {1: "#1b9e77", 2: "#d95f02", 4: "#7570b3"}
    for a, colour in colours.items():
        for down, style in [("maxpool", "-"), ("stride", "--")]:
            rf = receptive_field(vgg_resnet_path(a, down))
            ax.plot(range(1, len(rf) + 1), rf, style, color=colour, marker=".",
                    label=f"a = {a}, {down}")  # fmt: skip
            if down == "maxpool":
                ax.annotate(f"{rf[-1]}", (len(rf), rf[-1]), xytext=(4, 0),
                            textcoords="offset points", va="center", color=colour, fontsize=8)  # fmt: skip
    ax.axhline(28, color="grey", lw=0.8, ls=":")
    ax.text(0.5, 29.5, "Fashion-MNIST image: 28 px", color="grey", fontsize=8)
    ax.set_xlabel("layer on the longest path (stem, convolutions, pooling)")
    ax.set_ylabel("receptive field (input pixels)")
    ax.set_title("Receptive field of VGG-ResNet(a, b, c) with depth (28 x 28 -> 14 x 14 -> 7 x 7)")
    ax.legend(ncol=3, fontsize=8, frameon=False, loc="upper left")
    ax.set_xlim(0, 29)
    save(fig, outdir, "lab01_receptive_field.png")


def _toy_garment(size: int = 28) -> np.ndarray:
    """A grey, T-shirt-like silhouette on black (synthetic, no data)."""
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    body = (np.abs(xx - 0.5) < 0.2) & (yy > 0.22) & (yy < 0.92)
    sleeves = (np.abs(xx - 0.5) < 0.38) & (yy > 0.22) & (yy < 0.45)
    neck = np.hypot(xx - 0.5, yy - 0.22) < 0.09
    img = np.where(body | sleeves, 0.55 + 0.25 * yy, 0.0)
    img[neck] = 0.0
    return img


def lab01_cam(outdir: Path) -> None:
    rng = np.random.default_rng(0)
    h = w = 7
    yy, xx = np.mgrid[:h, :w]
    centres = [(2.0, 1.0), (2.0, 5.0), (4.5, 3.0), (0.5, 0.5)]
    feats = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.5) for cy, cx in centres])
    feats = np.maximum(feats + 0.15 * rng.standard_normal(feats.shape), 0.0)  # ReLU features
    weights = np.array([0.9, 0.8, 0.5, -0.7])  # w_{k,c} of one class k (toy values)
    cam = np.tensordot(weights, feats, axes=1)
    image = _toy_garment()

    fig, axes = plt.subplots(1, 7, figsize=(13, 2.6),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.35, 1.25, 1.25]})  # fmt: skip
    for c, ax in enumerate(axes[:4]):
        ax.imshow(feats[c], cmap="viridis", vmin=0, vmax=feats.max(), interpolation="nearest")
        ax.set_title(f"$f_{c + 1}$, $w_{{k,{c + 1}}} = {weights[c]:+.1f}$", fontsize=10)
    axes[4].text(0.5, 0.5, r"$\sum_c w_{k,c} f_c$" + "\n=", ha="center", va="center", fontsize=11)
    axes[4].axis("off")
    lim = np.abs(cam).max()
    axes[5].imshow(cam, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    axes[5].set_title(f"$M_k$ (7 x 7), mean {cam.mean():.2f}\n$= z_k - b_k$", fontsize=10)
    norm = (cam - cam.min()) / (cam.max() - cam.min())
    axes[6].imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, 28, 28, 0))
    axes[6].imshow(norm, cmap="jet", alpha=0.45, interpolation="bilinear", extent=(0, 28, 28, 0))
    axes[6].set_title("up-sampled to 28 x 28,\nnormalised to [0, 1], overlaid", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, outdir, "lab01_cam.png")


FIGURES: dict[str, list[Callable[[Path], None]]] = {"lab01_cnn_ablation": [lab01_receptive_field, lab01_cam]}
