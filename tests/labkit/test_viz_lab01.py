"""Tests for the lab 01 plots in labkit/viz.py: CAM overlays, curves and grouped bars."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from labkit.viz import cam_overlay, plot_curves, plot_grouped_bars, show_cams


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_cam_overlay_is_an_exact_blend():
    image = torch.rand(1, 5, 4)
    cam = torch.rand(5, 4)
    grey = image[0].numpy()[..., None].repeat(3, axis=-1)
    np.testing.assert_allclose(cam_overlay(image, cam, alpha=0.0), grey, atol=1e-6)
    heat = plt.get_cmap("gray")(cam.numpy())[..., :3]
    np.testing.assert_allclose(cam_overlay(image, cam, alpha=1.0, cmap="gray"), heat, atol=1e-6)
    mixed = cam_overlay(image, cam, alpha=0.25, cmap="gray")
    np.testing.assert_allclose(mixed, 0.75 * grey + 0.25 * heat, atol=1e-6)
    assert mixed.shape == (5, 4, 3) and mixed.min() >= 0 and mixed.max() <= 1


def test_cam_overlay_clips_the_map_and_accepts_rgb_and_a_channel_axis():
    rgb = np.zeros((3, 2, 2), dtype=np.float32)
    out = cam_overlay(torch.from_numpy(rgb), np.array([[[-1.0, 2.0], [0.0, 1.0]]]), alpha=1.0,
                      cmap="gray")
    np.testing.assert_allclose(out[..., 0], [[0.0, 1.0], [0.0, 1.0]], atol=1e-6)


def test_cam_overlay_rejects_bad_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        cam_overlay(torch.rand(1, 5, 4), torch.rand(4, 5))
    with pytest.raises(ValueError, match="alpha"):
        cam_overlay(torch.rand(1, 5, 4), torch.rand(5, 4), alpha=1.5)


def test_show_cams_draws_one_panel_per_image():
    fig = show_cams(torch.rand(5, 1, 8, 8), torch.rand(5, 8, 8), titles=list("abcde"), nrow=3)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and [ax.get_title() for ax in drawn] == list("abcde")
    with pytest.raises(ValueError, match="images for"):
        show_cams(torch.rand(2, 1, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="titles"):
        show_cams(torch.rand(2, 1, 8, 8), torch.rand(2, 8, 8), titles=["x"])


def test_plot_curves_one_line_per_curve():
    fig = plot_curves({"a": ([0, 1, 2], [0.5, 0.6, 0.7]), "b": ([0, 1], [0.1, 0.2])},
                      xlabel="shift", ylabel="acc", title="t")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.5, 0.6, 0.7])
    assert ax.get_xlabel() == "shift" and ax.get_title() == "t"
    with pytest.raises(ValueError, match="curve 'c'"):
        plot_curves({"c": ([0, 1], [1.0])})


def test_plot_grouped_bars_labels_values_and_nan():
    fig = plot_grouped_bars({"m1": {"x": 0.5, "y": 0.25}, "m2": {"x": float("nan")}},
                            ylabel="acc", ylim=(0, 1))
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.25", "0.50", "n/a", "n/a"]  # m2 has no "y": shown as n/a
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m1", "m2"]
    assert ax.get_ylim() == (0, 1)
