"""Tests for labkit/viz.py: every plot returns a Figure; mask colouring and blending are exact."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from labkit.train import History
from labkit.viz import (
    _prediction_panels,
    blend,
    browse_predictions,
    colorize_mask,
    draw_detections,
    plot_confusion_matrix,
    plot_history,
    plot_per_class_iou,
    show_images,
    show_masks,
)

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
NAMES = ["a", "b", "c"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _batch(n=2, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    masks = torch.randint(0, 3, (n, size, size), generator=g)
    masks[:, 0, 0] = 255
    return images, masks


def test_colorize_mask_maps_classes_and_ignore():
    mask = torch.tensor([[0, 1], [2, 255]])
    rgb = colorize_mask(mask, PALETTE)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[0, 1].tolist() == [0, 255, 0]
    assert rgb[1, 0].tolist() == [0, 0, 255] and rgb[1, 1].tolist() == [0, 0, 0]
    same = colorize_mask(mask.numpy(), np.array(PALETTE, dtype=np.uint8))
    assert np.array_equal(rgb, same)
    with pytest.raises(ValueError, match="no colour"):
        colorize_mask(torch.tensor([[3]]), PALETTE)


def test_blend_arithmetic():
    image = np.full((2, 3, 3), 100, dtype=np.uint8)
    mask_rgb = np.full((2, 3, 3), 200, dtype=np.uint8)
    out = blend(image, mask_rgb, alpha=0.7)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert (out == 130).all()  # 0.7 * 100 + 0.3 * 200
    # channel-first float tensor in [0, 1]: 0.5 -> 127.5; 0.7 * 127.5 + 0.3 * 0 = 89.25 -> 89
    out = blend(torch.full((3, 2, 3), 0.5), np.zeros((2, 3, 3), dtype=np.uint8))
    assert (out == 89).all()
    assert np.array_equal(blend(image, mask_rgb, alpha=1.0), image)
    assert np.array_equal(blend(image, mask_rgb, alpha=0.0), mask_rgb)
    with pytest.raises(ValueError, match="alpha"):
        blend(image, mask_rgb, alpha=1.5)


def test_show_images_unnormalises():
    images = torch.zeros(5, 3, 4, 4)
    fig = show_images(
        images, titles=list("abcde"), nrow=3, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)
    )
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 and len(fig.axes) == 6  # 2 rows of 3
    assert np.allclose(shown[0].images[0].get_array(), 0.5)  # 0 * 0.2 + 0.5
    assert shown[4].get_title() == "e"


def test_show_masks_and_confusion_matrix():
    images, masks = _batch()
    fig = show_masks(images, masks, torch.randn(2, 3, 8, 8), palette=PALETTE, class_names=NAMES)
    assert isinstance(fig, Figure) and sum(bool(ax.images) for ax in fig.axes) == 6
    confmat = torch.tensor([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    fig = plot_confusion_matrix(confmat, NAMES, normalize="true")
    data = fig.axes[0].images[0].get_array()
    assert np.allclose(data[0], [0.75, 0.25, 0]) and np.allclose(data[1], [0, 0.5, 0.5])
    assert np.ma.getmaskarray(data)[2].all()  # class absent from targets: NaN, masked
    assert isinstance(plot_confusion_matrix(confmat, normalize=None), Figure)


def test_plot_history_train_vs_val():
    h = History(
        [
            {"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_miou": 0.3, "val_miou": 0.25},
            {"epoch": 2, "train_loss": 0.6, "val_loss": 0.9, "train_miou": 0.5, "val_miou": 0.4},
        ]
    )
    fig = plot_history(h, keys=("loss", "miou"))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["train", "val"]
    assert list(lines[1].get_ydata()) == [1.2, 0.9]


def test_plot_per_class_iou_series():
    iou = torch.tensor([0.5, float("nan"), 0.9])
    fig = plot_per_class_iou(iou, NAMES, compare={"gray": torch.tensor([0.4, 0.1, 0.8])})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and len(ax.patches) == 6
    assert "mIoU 0.700" in ax.get_legend().get_texts()[0].get_text()  # NaN left out of the mean


def test_draw_detections_threshold():
    fig = draw_detections(
        torch.rand(3, 20, 30),
        boxes=torch.tensor([[1.0, 1, 10, 10], [5, 5, 25, 15]]),
        labels=torch.tensor([1, 2]),
        scores=torch.tensor([0.9, 0.3]),
        class_names=["bg", "cat", "dog"],
        score_threshold=0.5,
    )
    ax = fig.axes[0]
    assert len(ax.patches) == 1 and ax.texts[0].get_text() == "cat 0.90"


def test_browse_predictions_widget():
    import ipywidgets as widgets

    images, masks = _batch(n=3)
    box = browse_predictions(images, masks, masks.clamp(max=2), PALETTE)
    assert isinstance(box, widgets.VBox)
    index, alpha = box.children[0].children
    assert (index.max, alpha.value) == (2, 0.7)
    index.value = 2  # re-renders without error
    alpha.value = 0.3
    fig = _prediction_panels(
        images[0], masks[0], masks[0], np.array(PALETTE, dtype=np.uint8), alpha=0.0
    )
    target_panel = fig.axes[1].images[0].get_array()
    assert np.array_equal(np.asarray(target_panel), colorize_mask(masks[0], PALETTE))


def _texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_one_epoch_history_has_whole_epoch_ticks():
    fig = plot_history([{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9}], keys=("loss",))
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo <= 0 and hi >= 2  # the single point is in the middle, not at the edge
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert "smoke mode" in ax.get_xlabel()
    plt.close(fig)


def test_plots_of_nothing_say_why():
    fig = plot_history([], keys=("loss", "miou"))
    assert _texts(fig).count("nothing to plot yet") == 2 and "lk.check" in _texts(fig)
    plt.close(fig)
    fig = plot_per_class_iou(torch.full((3,), float("nan")), NAMES)
    assert "nothing to plot yet" in _texts(fig)
    plt.close(fig)
    fig = plot_confusion_matrix(torch.zeros(3, 3), NAMES)
    assert "nothing to plot yet" in _texts(fig)
    plt.close(fig)
