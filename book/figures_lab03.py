"""Teaching figures of lab 03 (cost of efficient self-attention per sr_ratio, the MiT stages).

Collected by ``book/figures.py``; each function writes ``lab03_<what>.png`` with :func:`figures.save`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from figures import save

SR_RATIOS = (1, 2, 4, 8)


def attention_cost(n: int, sr: int, dim: int = 32, heads: int = 1) -> tuple[float, float]:
    """Multiply-adds and float32 attention-matrix bytes of one efficient-attention layer.

    Analytic count: Q and output projections on ``n`` tokens, the ``sr x sr`` reduction
    convolution and the K and V projections on ``n / sr**2`` tokens, ``QK^T`` and ``AV``.
    """
    m = n // sr**2  # keys and values
    linear = 2 * n * dim * dim + 2 * m * dim * dim + (n * dim * dim if sr > 1 else 0)
    attention = 2 * n * m * dim
    return float(linear + attention), float(heads * n * m * 4)


def lab03_attention_cost(outdir: Path) -> None:
    sides = np.array([8, 16, 24, 32, 48, 64])
    seq = sides**2
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for sr in SR_RATIOS:
        cost = np.array([attention_cost(int(n), sr) for n in seq])
        axes[0].loglog(seq, cost[:, 0] / 1e6, marker="o", label=f"sr_ratio {sr}")
        axes[1].loglog(seq, cost[:, 1] / 2**20, marker="o", label=f"sr_ratio {sr}")
    axes[0].set(xlabel="sequence length N = H x W", ylabel="million multiply-adds",
                title="one attention layer (C = 32, 1 head)")  # fmt: skip
    axes[1].set(xlabel="sequence length N = H x W", ylabel="MiB (float32)",
                title="attention matrix, N x N/R$^2$ entries")  # fmt: skip
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    save(fig, outdir, "lab03_attention_cost.png")


MIT_B0 = {"stride": [4, 8, 16, 32], "channels": [32, 64, 160, 256], "sr": [8, 4, 2, 1]}


def lab03_mit_stages(outdir: Path) -> None:
    size = 256  # the lab's full-profile crop
    sides = [size // s for s in MIT_B0["stride"]]
    queries = np.array([s * s for s in sides])
    keys = np.array([(s // r) ** 2 for s, r in zip(sides, MIT_B0["sr"], strict=True)])
    x = np.arange(4)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(x - 0.2, queries, 0.4, label="queries N = (H/s)(W/s)", color="#4575b4")
    ax.bar(x + 0.2, keys, 0.4, label="keys and values N/R$^2$", color="#fc8d59")
    for i in range(4):
        ax.text(x[i] - 0.2, queries[i] * 1.15, f"{queries[i]}", ha="center", fontsize=8)
        ax.text(x[i] + 0.2, keys[i] * 1.15, f"{keys[i]}", ha="center", fontsize=8)
    labels = [
        f"stage {i + 1}: 1/{s}\n{side} x {side} tokens\nC = {c}, R = {r}"
        for i, (s, side, c, r) in enumerate(
            zip(MIT_B0["stride"], sides, MIT_B0["channels"], MIT_B0["sr"], strict=True)
        )
    ]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(1, queries.max() * 4)
    ax.set_ylabel("tokens")
    ax.set_title(f"MiT-B0 on a {size} x {size} image: tokens per stage")
    ax.legend(fontsize=8, frameon=False)
    save(fig, outdir, "lab03_mit_stages.png")


FIGURES: dict[str, list[Callable[[Path], None]]] = {"lab03_segformer": [lab03_attention_cost, lab03_mit_stages]}
