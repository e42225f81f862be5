"""labkit.video: mp4 round trips, blends and flicker against hand-computed values."""

import numpy as np
import pytest
import torch

from labkit import video


def test_mp4_decodes_to_the_frames_written(tmp_path):
    frames = video.make_test_video(frames=9, size=(48, 80), seed=1)
    path = video.write_video(tmp_path / "clip.mp4", frames, fps=5)
    assert path.stat().st_size > 0
    back = video.read_frames(path)
    assert back.shape == (9, 48, 80, 3) and back.dtype == np.uint8
    # lossy H.264: close on average, far from an unrelated frame
    err = np.abs(back.astype(int) - frames.astype(int)).mean()
    assert err < 10, err
    assert video.read_frames(path, max_frames=4).shape[0] == 4
    # decoded independently of imageio's reader: the ffmpeg binary straight to raw RGB bytes
    import subprocess

    import imageio_ffmpeg

    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    decoded = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 48, 80, 3)
    assert decoded.shape[0] == 9 and np.array_equal(decoded, back)
    assert video.read_frames(path, step=3).shape[0] == 3


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = video.make_test_video(frames=3, size=(33, 51))
    back = video.read_frames(video.write_video(tmp_path / "odd.mp4", frames))
    assert back.shape == (3, 34, 52, 3)


def test_blend_is_07_image_plus_03_mask_colour():
    frames = np.full((2, 4, 6, 3), 100, dtype=np.uint8)
    frames[1] = 10
    masks = np.zeros((2, 4, 6), dtype=np.int64)
    masks[:, 0, 0] = 1
    masks[:, 0, 1] = 255  # ignored: black
    palette = [(200, 0, 50), (0, 255, 255)]
    out = video.blend_frames(frames, masks, palette, alpha=0.7)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    # 0.7 * 100 + 0.3 * (200, 0, 50) = (130, 70, 85)
    assert out[0, 2, 2].tolist() == [130, 70, 85]
    # 0.7 * 100 + 0.3 * (0, 255, 255) = (70, 146.5, 146.5) -> rint to even: (70, 146, 146)
    assert out[0, 0, 0].tolist() == [70, 146, 146]
    assert out[0, 0, 1].tolist() == [70, 70, 70]
    # 0.7 * 10 + 0.3 * 200 = 67, 0.7 * 10 = 7, 7 + 15 = 22
    assert out[1, 3, 5].tolist() == [67, 7, 22]
    only = video.mask_frames(masks, palette)
    assert only[0, 2, 2].tolist() == [200, 0, 50] and only[0, 0, 1].tolist() == [0, 0, 0]


def test_segmentation_video_modes(tmp_path):
    frames = video.make_test_video(frames=4, size=(32, 48))
    masks = np.random.default_rng(0).integers(0, 19, size=(4, 32, 48))
    from labkit.data import CITYSCAPES_PALETTE

    for mode, width in (("blend", 48), ("mask", 48), ("side_by_side", 96)):
        path = video.write_segmentation_video(tmp_path / f"{mode}.mp4", frames, masks,
                                              CITYSCAPES_PALETTE, mode=mode)
        assert video.read_frames(path).shape == (4, 32, width, 3)
    with pytest.raises(ValueError, match="mode"):
        video.write_segmentation_video(tmp_path / "x.mp4", frames, masks, CITYSCAPES_PALETTE,
                                       mode="overlay")


def test_flicker_on_a_three_frame_case():
    preds = np.array([[[0, 0], [1, 1]],
                      [[0, 1], [1, 1]],  # 1 of 4 pixels changed
                      [[2, 2], [2, 2]]])  # all 4 changed
    np.testing.assert_allclose(video.label_flicker(preds), [0.25, 1.0])
    np.testing.assert_allclose(video.label_flicker(torch.from_numpy(preds)), [0.25, 1.0])
    # ignoring label 1 leaves pixel (0,0) in both pairs: 0 -> 0 (kept), then 0 -> 2 (changed)
    np.testing.assert_allclose(video.label_flicker(preds, ignore_index=1), [0.0, 1.0])
    with pytest.raises(ValueError, match="T >= 2"):
        video.label_flicker(preds[:1])


def test_segment_frames_matches_a_direct_forward():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 5, 1)
    frames = video.make_test_video(frames=5, size=(16, 24))
    preds = video.segment_frames(model, frames, batch_size=2)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model((x - mean) / std).argmax(1)
    assert preds.shape == (5, 16, 24) and torch.equal(preds, ref)
    gray = video.segment_frames(model, frames, modality="inverted_grayscale")
    y = 1.0 - (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        ref = model((y.expand(-1, 3, -1, -1) - mean) / std).argmax(1)
    assert torch.equal(gray, ref)


def test_generated_video_is_deterministic_and_moves():
    a = video.make_test_video(frames=6, size=(40, 64), seed=3)
    assert a.shape == (6, 40, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, video.make_test_video(frames=6, size=(40, 64), seed=3))
    car = np.all(np.abs(a.astype(int) - (0, 0, 142)) < 20, axis=-1)
    first, last = (np.nonzero(car[i].any(0))[0].mean() for i in (0, -1))
    assert last > first + 20  # the car drove to the right


def test_missing_encoder_gives_the_fix(tmp_path, monkeypatch):
    import imageio_ffmpeg

    def boom():
        raise RuntimeError("No ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", boom)
    with pytest.raises(video.VideoEncoderError, match="pip install imageio imageio-ffmpeg"):
        video.write_video(tmp_path / "x.mp4", video.make_test_video(frames=2, size=(16, 16)))


def test_bad_frames_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        video.write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(T,H,W,3\)"):
        video.write_video(tmp_path / "x.mp4", np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(FileNotFoundError):
        video.read_frames(tmp_path / "missing.mp4")


def test_frame_slider_and_static_frames():
    import matplotlib

    matplotlib.use("Agg")
    a = video.make_test_video(frames=4, size=(16, 24))
    widget = video.frame_slider(a, a, titles=["rgb", "copy"])
    slider = widget.children[0]
    slider.value = 3  # updating the slider swaps the images
    assert slider.max == 3
    fig = video.show_frames(a, a, titles=["x", "y"])
    assert len(fig.axes) == 3 * 2
