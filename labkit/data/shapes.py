"""Synthetic shapes (circle, rectangle, triangle) on a textured background, for segmentation and detection.

Generated in memory, deterministically from ``(seed, index)``; small enough that a tiny conv net
learns it on a CPU in seconds. Class 0 is the background, classes 1..3 the shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPES_CLASSES = ("background", "circle", "rectangle", "triangle")
SHAPES_PALETTE = ((0, 0, 0), (220, 60, 60), (60, 180, 75), (70, 110, 230))
_SHAPE_COLORS = np.array(SHAPES_PALETTE[1:], dtype=np.float32) / 255.0  # (3, 3)


def shape_mask(kind: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask (H,W) of one random shape of class ``kind`` (1 circle, 2 rectangle, 3 triangle)."""
    lo = max(4, min(h, w) // 8)
    hi = max(lo + 1, min(h, w) // 3)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == 1:
        r = rng.integers(lo, hi)
        cy, cx = rng.integers(r, h - r), rng.integers(r, w - r)
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == 2:
        bh, bw = rng.integers(lo, 2 * hi), rng.integers(lo, 2 * hi)
        bh, bw = min(bh, h - 2), min(bw, w - 2)
        y0, x0 = rng.integers(0, h - bh), rng.integers(0, w - bw)
        return (yy >= y0) & (yy < y0 + bh) & (xx >= x0) & (xx < x0 + bw)
    if kind == 3:
        s = min(int(rng.integers(lo, hi)) * 2, h - 2, w - 2)
        y0, x0 = rng.integers(0, h - s), rng.integers(0, w - s)
        ty = (yy - y0) / s  # 0 at the apex row, 1 at the base row
        tx = (xx - x0 - s / 2) / s  # -0.5 .. 0.5 across the base
        return (ty >= 0) & (ty <= 1) & (np.abs(tx) <= ty / 2)
    raise ValueError(f"shape kind must be 1, 2 or 3, got {kind}")


def textured_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Low-saturation float image (H,W,3) in [0,1]: smooth blotches, stripes and pixel noise."""
    coarse = rng.random((h // 8 + 2, w // 8 + 2))
    ys = np.linspace(0, coarse.shape[0] - 1.001, h)
    xs = np.linspace(0, coarse.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    c = coarse
    smooth = (
        c[y0][:, x0] * (1 - fy) * (1 - fx)
        + c[y0 + 1][:, x0] * fy * (1 - fx)
        + c[y0][:, x0 + 1] * (1 - fy) * fx
        + c[y0 + 1][:, x0 + 1] * fy * fx
    )
    freq, phase = rng.uniform(0.2, 0.6), rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(freq * (xx + yy) + phase)
    gray = 0.25 + 0.3 * smooth + 0.15 * stripes
    tint = rng.uniform(-0.04, 0.04, size=3)
    img = gray[..., None] + tint + rng.normal(0, 0.03, size=(h, w, 3))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def draw_scene(
    h: int, w: int, rng: np.random.Generator, *, max_shapes: int = 3
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """Random scene: image float (H,W,3) in [0,1], mask uint8 (H,W) in 0..3, [(class, shape mask), ...].

    Shapes are placed without overlap (rejection sampling), so each listed mask is fully visible.
    """
    image = textured_background(h, w, rng)
    mask = np.zeros((h, w), dtype=np.uint8)
    shapes: list[tuple[int, np.ndarray]] = []
    n = int(rng.integers(1, max_shapes + 1))
    for _ in range(n):
        kind = int(rng.integers(1, 4))
        for _attempt in range(10):
            m = shape_mask(kind, h, w, rng)
            if m.any() and not (mask[m] > 0).any():
                break
        else:
            continue
        color = _SHAPE_COLORS[kind - 1] + rng.uniform(-0.12, 0.12, size=3)
        shade = color[None, :] * (0.85 + 0.15 * rng.random((int(m.sum()), 1)))
        image[m] = np.clip(shade, 0.0, 1.0)
        mask[m] = kind
        shapes.append((kind, m))
    return image, mask, shapes


def box_of(m: np.ndarray) -> list[float]:
    """Tight xyxy box of a boolean mask (H,W) in pixel-edge coordinates: [x1, y1, x2 + 1, y2 + 1]."""
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


class _Shapes(Dataset):
    """Deterministic in-memory scenes: scene ``i`` depends only on (seed, i)."""

    def __init__(
        self,
        n: int,
        *,
        size: int = 64,
        seed: int = 0,
        max_shapes: int = 3,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.n = n
        self.size = size
        self.seed = seed
        self.max_shapes = max_shapes
        self.transforms = transforms
        self.classes = SHAPES_CLASSES
        self.num_classes = len(SHAPES_CLASSES)

    def __len__(self) -> int:
        return self.n

    def _scene(self, index: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        return draw_scene(self.size, self.size, rng, max_shapes=self.max_shapes)


class ShapesSegmentation(_Shapes):
    """``n`` scenes of ``size``x``size``: (image float (3,H,W) in [0,1], mask int64 (H,W) in 0..3)."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask, _ = self._scene(index)
        x = torch.from_numpy(image).permute(2, 0, 1).contiguous()  # (3, H, W)
        y = torch.from_numpy(mask.astype(np.int64))  # (H, W)
        if self.transforms is not None:
            x, y = self.transforms(x, y)
        return x, y


class ShapesDetection(_Shapes):
    """``n`` scenes: (image float (3,H,W) in [0,1], target dict as VOCDetection: boxes, labels, difficult)."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, _, shapes = self._scene(index)
        x = torch.from_numpy(image).permute(2, 0, 1).contiguous()  # (3, H, W)
        boxes = torch.tensor([box_of(m) for _, m in shapes], dtype=torch.float32).reshape(-1, 4)
        target = {
            "boxes": boxes,
            "labels": torch.tensor([k for k, _ in shapes], dtype=torch.int64),
            "difficult": torch.zeros(len(shapes), dtype=torch.bool),
        }
        if self.transforms is not None:
            x, target = self.transforms(x, target)
        return x, target
