"""Figures of the chapter pages, drawn at build time by ``build_site.py`` (no binaries in git).

``FIGURES`` maps a lab id to functions ``make(outdir: Path) -> None`` that write PNG files named
``<lab>_<what>.png`` into ``outdir`` (the stage's ``labs/figures/``). A lab may keep its figures in
its own module ``book/figures_labNN.py`` defining ``FIGURES`` the same way; those are merged in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

IGNORE = 255
PET_CLASSES = ["pet", "background", "border"]
PET_COLOURS = ["#e08214", "#8073ac", "#fee0b6"]
IGNORE_COLOUR = "#bdbdbd"
SAVE = {"dpi": 110, "bbox_inches": "tight", "metadata": {"Software": None}}


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
    shown = np.where(mask == IGNORE, len(PET_CLASSES), mask)
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=len(PET_CLASSES), interpolation="nearest")
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
        ax.legend(handles, [*PET_CLASSES, "ignored"], loc="upper center",
                  bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False, fontsize=8)  # fmt: skip
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / "lab02_iou_overlap.png", **SAVE)
    plt.close(fig)


def lab02_confusion(outdir: Path) -> None:
    target, preds = toy_trimap()
    k = len(PET_CLASSES)
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
    ax.set_xticks(range(k), PET_CLASSES)
    ax.set_yticks(range(k), [f"{c}\nIoU {v:.2f}" for c, v in zip(PET_CLASSES, iou, strict=True)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("target class")
    ax.set_title(
        f"pixel accuracy {pixel_acc:.2f}, mIoU {iou.mean():.2f}, worst-class IoU {iou.min():.2f}"
    )
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / "lab02_confusion.png", **SAVE)
    plt.close(fig)


def _save(fig: plt.Figure, outdir: Path, name: str) -> None:
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / name, **SAVE)
    plt.close(fig)


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
    _save(fig, outdir, "lab01_receptive_field.png")


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
    _save(fig, outdir, "lab01_cam.png")


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
    _save(fig, outdir, "lab03_attention_cost.png")


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
    _save(fig, outdir, "lab03_mit_stages.png")


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
    _save(fig, outdir, "lab06_tokens.png")


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
    _save(fig, outdir, "lab06_cutmix.png")


FIGURES: dict[str, list[Callable[[Path], None]]] = {
    "lab01_cnn_ablation": [lab01_receptive_field, lab01_cam],
    "lab02_segmentation": [lab02_iou_overlap, lab02_confusion],
    "lab03_segformer": [lab03_attention_cost, lab03_mit_stages],
    "lab06_vit": [lab06_tokens, lab06_cutmix],
}


def _merge_lab_modules() -> None:
    import importlib

    for path in sorted(Path(__file__).resolve().parent.glob("figures_lab*.py")):
        module = importlib.import_module(path.stem)
        for lab_id, makers in module.FIGURES.items():
            FIGURES.setdefault(lab_id, []).extend(makers)


_merge_lab_modules()
