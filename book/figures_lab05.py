"""Teaching figures of lab 05 (input modalities, video blends and flicker), made without models.

Merged into ``book/figures.py``'s ``FIGURES``; each function writes ``lab05_<what>.png``.
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

# the generated clip's scene colours and the Cityscapes trainIds they stand for
_SCENE = {"sky": ((70, 130, 180), 10), "road": ((128, 64, 128), 0),
          "sidewalk": ((244, 35, 232), 1), "vegetation": ((107, 142, 35), 8),
          "car": ((0, 0, 142), 13), "building": ((85, 85, 85), 2)}


def _scene_labels(frame: np.ndarray) -> np.ndarray:
    """Nearest scene colour -> trainId, (H,W) int64 (the clip is drawn from these colours)."""
    colours = np.array([c for c, _ in _SCENE.values()], dtype=np.float64)
    ids = np.array([i for _, i in _SCENE.values()])
    dist = ((frame[..., None, :].astype(np.float64) - colours) ** 2).sum(-1)
    return ids[dist.argmin(-1)]


def lab05_modalities(outdir: Path) -> None:
    """A generated street frame in the three modalities, and what ImageNet normalisation sees."""
    from labkit.data import IMAGENET_MEAN, IMAGENET_STD, to_modality
    from labkit.video import make_test_video

    frame = make_test_video(frames=1, size=(96, 160), seed=0)[0]
    x = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    fig, axes = plt.subplots(1, 4, figsize=(15, 2.8),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
    names = ("rgb", "grayscale", "inverted_grayscale")
    for ax, m in zip(axes, names, strict=False):
        ax.imshow(to_modality(x, m).permute(1, 2, 0).numpy())
        ax.set_title(m)
        ax.axis("off")
    for m, colour in zip(names, ("tab:blue", "tab:green", "tab:red"), strict=True):
        z = ((to_modality(x, m) - mean) / std).flatten().numpy()
        axes[3].hist(z, bins=60, histtype="step", color=colour, label=m, density=True)
    axes[3].set_title("network input after ImageNet normalisation")
    axes[3].set_xlabel("value")
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    save(fig, outdir, "lab05_modalities.png", tight_layout=False)


def lab05_blend_flicker(outdir: Path) -> None:
    """Frame, labels, 0.7/0.3 blend; then label flips between frames of a noisy labelling."""
    from labkit.data import CITYSCAPES_PALETTE
    from labkit.video import blend_frames, label_flicker, make_test_video, mask_frames

    frames = make_test_video(frames=3, size=(96, 160), seed=0)
    labels = np.stack([_scene_labels(f) for f in frames])
    rng = np.random.default_rng(0)
    noisy = labels.copy()  # a jittery segmenter: random flips near region borders
    border = np.zeros_like(labels, dtype=bool)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[:, :, 1:] |= labels[:, :, 1:] != labels[:, :, :-1]
    flip = border & (rng.random(labels.shape) < 0.5)
    noisy[flip] = np.roll(labels, 2, axis=1)[flip]
    blends = blend_frames(frames, noisy, CITYSCAPES_PALETTE, alpha=0.7)
    colours = mask_frames(noisy, CITYSCAPES_PALETTE)
    flicker = label_flicker(noisy)
    fig, axes = plt.subplots(2, 3, figsize=(12, 5))
    axes[0, 0].imshow(frames[1])
    axes[0, 0].set_title("frame t")
    axes[0, 1].imshow(colours[1])
    axes[0, 1].set_title("predicted labels (mask only)")
    axes[0, 2].imshow(blends[1])
    axes[0, 2].set_title("blend: 0.7 image + 0.3 mask")
    for j, t in enumerate((0, 1)):
        axes[1, j].imshow(noisy[t] != noisy[t + 1], cmap="gray_r")
        axes[1, j].set_title(f"labels changed, frame {t} -> {t + 1}: {flicker[t]:.1%}")
    moving = labels[0] != labels[1]
    axes[1, 2].imshow(moving, cmap="gray_r")
    axes[1, 2].set_title(f"true changes (the car moved): {moving.mean():.1%}")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    save(fig, outdir, "lab05_blend_flicker.png", tight_layout=False)


FIGURES: dict[str, list[Callable[[Path], None]]] = {
    "lab05_robustness": [lab05_modalities, lab05_blend_flicker],
}
