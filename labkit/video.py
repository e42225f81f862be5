"""Segmenting video: read frames, segment them, write mp4s of image/mask blends, measure flicker.

Frames are ``(T,H,W,3)`` uint8 RGB arrays throughout. mp4 files are written with H.264 (yuv420p)
through ``imageio`` and the ffmpeg binary bundled by the ``imageio-ffmpeg`` wheel; without an
encoder :class:`VideoEncoderError` says what to install. :func:`make_test_video` generates a
short street-like clip (moving car, static road and sky) so that everything runs offline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit.data.transforms import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, to_modality


class VideoEncoderError(RuntimeError):
    """No mp4 encoder (ffmpeg) is available; the message says what to install."""


def _ffmpeg() -> str:
    """Path of an ffmpeg binary (the one bundled with imageio-ffmpeg, or $IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise VideoEncoderError(
            f"no mp4 encoder available ({type(exc).__name__}: {exc}). Fix: `pip install imageio "
            "imageio-ffmpeg` (the wheel bundles an ffmpeg binary), or install ffmpeg and point "
            "$IMAGEIO_FFMPEG_EXE at it.") from exc


def _check_frames(frames: Any, what: str = "frames") -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or len(a) == 0:
        raise ValueError(f"{what} must be a non-empty (T,H,W,3) array, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 RGB (0..255), got {a.dtype}")
    return a


def write_video(path: str | os.PathLike, frames: Any, *, fps: float = 10.0) -> Path:
    """Write uint8 frames (T,H,W,3) to an H.264 mp4; odd heights/widths are padded to even by
    repeating the last row/column (yuv420p needs even sizes). Returns the path."""
    a = _check_frames(frames)
    exe = _ffmpeg()
    import imageio.v2 as iio

    pad_h, pad_w = a.shape[1] % 2, a.shape[2] % 2
    if pad_h or pad_w:
        a = np.pad(a, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("IMAGEIO_FFMPEG_EXE", exe)
    writer = iio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                            pixelformat="yuv420p", macro_block_size=1, quality=8,
                            ffmpeg_log_level="error")
    try:
        for frame in a:
            writer.append_data(frame)
    finally:
        writer.close()
    return path


def read_frames(path: str | os.PathLike, *, max_frames: int | None = None,
                step: int = 1) -> np.ndarray:
    """Decode a video file -> (T,H,W,3) uint8, every ``step``-th frame, at most ``max_frames``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    os.environ.setdefault("IMAGEIO_FFMPEG_EXE", _ffmpeg())
    import imageio.v2 as iio

    frames = []
    reader = iio.get_reader(str(path), format="FFMPEG")
    try:
        for i, frame in enumerate(reader):
            if i % step:
                continue
            frames.append(np.asarray(frame)[..., :3])
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"{path}: no frames could be decoded")
    return np.stack(frames).astype(np.uint8)


def mask_frames(masks: Any, palette: Any, *, ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """Label maps (T,H,W) -> colour frames (T,H,W,3) uint8 (``ignore_index`` black)."""
    from labkit.viz import colorize_mask

    m = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if m.ndim != 3:
        raise ValueError(f"masks must be (T,H,W), got shape {m.shape}")
    return np.stack([colorize_mask(x, palette, ignore_index=ignore_index) for x in m])


def blend_frames(frames: Any, masks: Any, palette: Any, *, alpha: float = 0.7,
                 ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """rint(alpha * frame + (1 - alpha) * colour(mask)) per pixel: (T,H,W,3) uint8."""
    from labkit.viz import blend

    a = _check_frames(frames)
    colours = mask_frames(masks, palette, ignore_index=ignore_index)
    if colours.shape != a.shape:
        raise ValueError(f"masks of shape {colours.shape[:3]} do not match frames {a.shape[:3]}")
    return np.stack([blend(f, c, alpha) for f, c in zip(a, colours, strict=True)])


def write_segmentation_video(path: str | os.PathLike, frames: Any, masks: Any, palette: Any, *,
                             mode: str = "blend", alpha: float = 0.7, fps: float = 10.0,
                             ignore_index: int | None = IGNORE_INDEX) -> Path:
    """mp4 of the segmentation of ``frames`` (T,H,W,3) by ``masks`` (T,H,W): ``mode="blend"``
    (``alpha`` image + ``1 - alpha`` mask colours), ``"mask"`` (colours only) or ``"side_by_side"``."""
    if mode == "blend":
        out = blend_frames(frames, masks, palette, alpha=alpha, ignore_index=ignore_index)
    elif mode == "mask":
        out = mask_frames(masks, palette, ignore_index=ignore_index)
    elif mode == "side_by_side":
        out = np.concatenate([_check_frames(frames),
                              mask_frames(masks, palette, ignore_index=ignore_index)], axis=2)
    else:
        raise ValueError(f"mode must be 'blend', 'mask' or 'side_by_side', got {mode!r}")
    return write_video(path, out, fps=fps)


@torch.no_grad()
def segment_frames(model: nn.Module, frames: Any, *, batch_size: int = 8,
                   device: torch.device | str | None = None, modality: str = "rgb",
                   mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD, progress: bool = False) -> torch.Tensor:
    """Predicted labels (T,H,W) int64 of ``model`` (images normalised with ``mean``/``std`` ->
    logits (B,K,H,W)) for uint8 frames (T,H,W,3), optionally in another input ``modality``."""
    a = _check_frames(frames)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    m = torch.tensor(mean).view(1, 3, 1, 1).to(device)
    s = torch.tensor(std).view(1, 3, 1, 1).to(device)
    model.eval()
    starts = range(0, len(a), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="segmenting frames")
    preds = []
    for start in starts:
        x = torch.from_numpy(a[start:start + batch_size]).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0  # (B,3,H,W) in [0,1]
        x = (to_modality(x, modality) - m) / s
        out = model(x)
        logits = out["out"] if isinstance(out, dict) else out
        preds.append(logits.argmax(1).cpu())
    return torch.cat(preds)


def label_flicker(preds: Any, *, ignore_index: int | None = None) -> np.ndarray:
    """Fraction of pixels whose label changes from frame t to t+1: (T,H,W) labels -> (T-1,) float64.

    Pixels equal to ``ignore_index`` in either frame are not counted (NaN if none is left).
    """
    p = preds.cpu().numpy() if isinstance(preds, torch.Tensor) else np.asarray(preds)
    if p.ndim != 3 or len(p) < 2:
        raise ValueError(f"preds must be (T,H,W) with T >= 2, got shape {p.shape}")
    prev, nxt = p[:-1], p[1:]
    changed = prev != nxt
    if ignore_index is None:
        return changed.reshape(len(changed), -1).mean(axis=1).astype(np.float64)
    valid = (prev != ignore_index) & (nxt != ignore_index)
    counted = valid.reshape(len(valid), -1).sum(axis=1)
    flips = (changed & valid).reshape(len(valid), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, flips / np.maximum(counted, 1), np.nan).astype(np.float64)


def make_test_video(*, frames: int = 12, size: tuple[int, int] = (96, 160),
                    seed: int = 0) -> np.ndarray:
    """A generated street-like clip (T,H,W,3) uint8: sky, buildings, vegetation, road, sidewalk
    and a car driving left to right, with sensor noise. Deterministic for a ``seed``."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    h, w = size
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16, got {size}")
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), dtype=np.float64)
    horizon, curb = int(0.45 * h), int(0.7 * h)
    base[:horizon] = (70, 130, 180)  # sky
    x = 0
    while x < w:  # buildings of random widths and heights
        bw = int(rng.integers(w // 10, w // 4))
        top = int(rng.integers(h // 10, horizon - 2))
        base[top:horizon, x:x + bw] = rng.integers(60, 110)
        x += bw
    base[horizon - h // 8:horizon, : w // 3] = (107, 142, 35)  # trees on the left
    base[horizon:curb] = (128, 64, 128)  # road
    base[curb:] = (244, 35, 232)  # sidewalk
    out = []
    car_h, car_w = max(4, h // 6), max(6, w // 5)
    for t in range(frames):
        frame = base.copy()
        cx = int((t / max(1, frames - 1)) * (w - car_w))
        top = horizon + (curb - horizon - car_h) // 2
        frame[top:top + car_h, cx:cx + car_w] = (0, 0, 142)  # car
        frame += rng.normal(0.0, 4.0, size=frame.shape)
        out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return np.stack(out)


def show_frames(*sequences: Any, indices: Sequence[int] | None = None,
                titles: Sequence[str] | None = None):
    """Static grid (matplotlib): one row per frame index, one column per sequence (T,H,W,3)."""
    import matplotlib.pyplot as plt

    seqs = [_check_frames(s, "sequence") for s in sequences]
    if not seqs:
        raise ValueError("give at least one sequence of frames")
    n = len(seqs[0])
    indices = list(indices) if indices is not None else sorted({0, n // 2, n - 1})
    fig, axes = plt.subplots(len(indices), len(seqs), squeeze=False,
                             figsize=(3.2 * len(seqs), 2.0 * len(indices)))
    for r, t in enumerate(indices):
        for c, s in enumerate(seqs):
            axes[r, c].imshow(s[t])
            axes[r, c].axis("off")
            label = titles[c] if titles is not None else f"sequence {c}"
            axes[r, c].set_title(f"{label}, frame {t}", fontsize=8)
    fig.tight_layout()
    return fig


def frame_slider(*sequences: Any, titles: Sequence[str] | None = None):
    """ipywidgets frame browser over sequences (T,H,W,3) shown side by side; returns the widget.

    Headless runs (no widget front end) do not display it: show a static :func:`show_frames` too.
    """
    import ipywidgets as widgets
    from PIL import Image

    seqs = [_check_frames(s, "sequence") for s in sequences]
    if len({len(s) for s in seqs}) != 1:
        raise ValueError("all sequences must have the same number of frames")

    def png(frame: np.ndarray) -> bytes:
        import io

        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        return buf.getvalue()

    images = [widgets.Image(value=png(s[0]), format="png") for s in seqs]
    labels = [widgets.Label(t) for t in (titles or [f"sequence {i}" for i in range(len(seqs))])]
    slider = widgets.IntSlider(value=0, min=0, max=len(seqs[0]) - 1, description="frame")

    def update(change: Any) -> None:
        for img, s in zip(images, seqs, strict=True):
            img.value = png(s[change["new"]])

    slider.observe(update, names="value")
    columns = [widgets.VBox([lab, img]) for lab, img in zip(labels, images, strict=True)]
    return widgets.VBox([slider, widgets.HBox(columns)])
