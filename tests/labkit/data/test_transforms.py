"""Tests for labkit/data/transforms.py: paired segmentation, detection and modality transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from labkit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    DetectionRandomHorizontalFlip,
    DetectionResize,
    DetectionToTensor,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToModality,
    ToTensor,
    denormalize,
    detection_collate,
    detection_transforms,
    hflip_boxes,
    resize_boxes,
    segmentation_transforms,
    to_modality,
)


def _pair(h: int = 30, w: int = 40, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    mask = np.zeros((h, w), np.uint8)
    mask[5:20, 3:17] = 1
    mask[10:25, 20:38] = 2
    mask[0, :] = 255
    return image, Image.fromarray(mask)


@pytest.mark.parametrize("size", [17, (64, 51), (9, 13)])
def test_resize_keeps_mask_values(size):
    image, mask = _pair()
    for m in (mask, np.asarray(mask), torch.from_numpy(np.asarray(mask).astype(np.int64))):
        out_img, out_mask = Resize(size)(image, m)
        values = set(np.unique(np.asarray(out_mask)).tolist())
        assert values <= {0, 1, 2, 255}
        h, w = np.asarray(out_mask).shape
        assert (out_img.height, out_img.width) == (h, w)
    if isinstance(size, int):
        assert min(h, w) == size


@pytest.mark.parametrize("hw", [(500, 394), (394, 500), (30, 40), (333, 500), (7, 1000)])
@pytest.mark.parametrize("size", [256, 17, 1])
def test_resize_int_matches_torchvision(hw, size):
    # torchvision truncates the longer side: (500, 394) at 256 -> (324, 256) (rounding gave 325)
    from torchvision.transforms.v2 import functional as F2

    h, w = hw
    image = torch.rand(3, h, w)
    expected = tuple(F2.resize(image, [size], antialias=True).shape[-2:])
    x, y = Resize(size)(image, torch.zeros(h, w, dtype=torch.int64))
    assert tuple(x.shape[-2:]) == tuple(y.shape) == expected
    x, t = DetectionResize(size)(image, {"boxes": torch.tensor([[0.0, 0.0, w, h]])})
    assert tuple(x.shape[-2:]) == expected
    assert t["boxes"].tolist() == [[0.0, 0.0, float(expected[1]), float(expected[0])]]
    if hw == (500, 394) and size == 256:
        assert expected == (324, 256)


def test_resize_tensor_image():
    image = torch.rand(3, 30, 40)
    mask = torch.randint(0, 3, (30, 40))
    x, y = Resize((15, 20))(image, mask)
    assert x.shape == (3, 15, 20) and x.dtype == torch.float32
    assert y.shape == (15, 20) and y.dtype == torch.int64
    assert set(y.unique().tolist()) <= {0, 1, 2}


def test_flip_consistency_between_image_and_mask():
    image, mask = _pair()
    x, y = ToTensor()(image, mask)
    fx, fy = RandomHorizontalFlip(p=1.0)(x, y)
    assert torch.equal(fx, x.flip(-1)) and torch.equal(fy, y.flip(-1))
    pil_x, pil_y = RandomHorizontalFlip(p=1.0)(image, mask)
    tx, ty = ToTensor()(pil_x, pil_y)
    assert torch.equal(tx, fx) and torch.equal(ty, fy)
    sx, sy = RandomHorizontalFlip(p=0.0)(x, y)
    assert torch.equal(sx, x) and torch.equal(sy, y)


def test_random_flip_is_seeded():
    x, y = ToTensor()(*_pair())
    flips = []
    for _ in range(2):
        torch.manual_seed(3)
        flips.append([RandomHorizontalFlip()(x, y)[1] for _ in range(8)])
    assert all(torch.equal(a, b) for a, b in zip(*flips))


def test_random_crop_pads_mask_with_ignore_index():
    image, mask = _pair(h=10, w=12)
    torch.manual_seed(0)
    x, y = RandomCrop(16)(*ToTensor()(image, mask))
    assert x.shape == (3, 16, 16) and y.shape == (16, 16)
    assert (y[10:, :] == 255).all() and (y[:, 12:] == 255).all()
    assert (x[:, 10:, :] == 0).all()
    pil_x, pil_y = RandomCrop(16)(image, mask)
    assert pil_x.size == (16, 16) and (np.asarray(pil_y)[10:] == 255).all()


def test_random_crop_window_is_shared():
    x = torch.arange(30 * 40, dtype=torch.float32).reshape(1, 30, 40).expand(3, 30, 40)
    y = torch.arange(30 * 40).reshape(30, 40)
    cx, cy = RandomCrop((8, 9))(x, y)
    assert cx.shape == (3, 8, 9) and torch.equal(cx[0].long(), cy)


def test_to_tensor_types_and_normalize():
    image, mask = _pair()
    x, y = ToTensor()(image, mask)
    assert x.shape == (3, 30, 40) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.shape == (30, 40) and y.dtype == torch.int64
    nx, ny = Normalize()(x, y)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(nx, (x - mean) / std, atol=1e-6) and ny is y
    assert torch.allclose(denormalize(nx), x, atol=1e-5)
    rgba = Image.new("RGBA", (4, 3), (10, 20, 30, 40))
    assert ToTensor()(rgba, np.zeros((3, 4), np.uint8))[0].shape == (3, 3, 4)


def test_segmentation_transforms_pipeline():
    torch.manual_seed(0)
    t = segmentation_transforms(size=20, crop=16, train=True)
    x, y = t(*_pair())
    assert x.shape == (3, 16, 16) and y.shape == (16, 16) and y.dtype == torch.int64
    x, y = segmentation_transforms(size=(12, 16), normalize=False, modality="grayscale")(*_pair())
    assert x.shape == (3, 12, 16) and torch.equal(x[0], x[1])
    assert "Resize" in repr(t)


def test_to_modality_luma_and_inversion():
    images = torch.rand(2, 3, 5, 6)
    assert torch.equal(to_modality(images, "rgb"), images)
    gray = to_modality(images, "grayscale")
    expected = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    assert gray.shape == images.shape
    for c in range(3):
        assert torch.allclose(gray[:, c], expected, atol=1e-6)
    inv = to_modality(images[0], "inverted_grayscale")
    assert inv.shape == (3, 5, 6) and torch.allclose(inv, 1 - gray[0], atol=1e-6)
    white = torch.ones(3, 2, 2)
    assert torch.allclose(to_modality(white, "grayscale"), white)
    assert torch.allclose(to_modality(white, "inverted_grayscale"), torch.zeros(3, 2, 2))
    with pytest.raises(ValueError):
        to_modality(images, "infrared")
    with pytest.raises(ValueError):
        to_modality(torch.rand(1, 4, 4), "grayscale")
    x, y = ToModality("grayscale")(images[0], "mask")
    assert y == "mask" and torch.equal(x, gray[0])


def test_hflip_boxes_hand_computed():
    boxes = torch.tensor([[10.0, 5.0, 30.0, 25.0], [0.0, 0.0, 100.0, 50.0]])
    flipped = hflip_boxes(boxes, width=100)
    assert torch.equal(flipped, torch.tensor([[70.0, 5.0, 90.0, 25.0], [0.0, 0.0, 100.0, 50.0]]))
    assert torch.equal(hflip_boxes(flipped, 100), boxes)


def test_detection_flip_moves_boxes_with_pixels():
    image = torch.zeros(3, 20, 50)
    image[:, 4:9, 10:22] = 1.0  # object covering columns 10..21
    target = {"boxes": torch.tensor([[10.0, 4.0, 22.0, 9.0]]), "labels": torch.tensor([3])}
    x, t = DetectionRandomHorizontalFlip(p=1.0)(image, target)
    assert torch.equal(t["boxes"], torch.tensor([[28.0, 4.0, 40.0, 9.0]]))
    cols = torch.nonzero(x[0].sum(0)).flatten()
    assert (cols.min().item(), cols.max().item() + 1) == (28, 40)
    assert torch.equal(target["boxes"], torch.tensor([[10.0, 4.0, 22.0, 9.0]]))  # not mutated
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    px, pt = Compose([DetectionRandomHorizontalFlip(p=1.0), DetectionToTensor()])(pil, target)
    assert px.shape == (3, 20, 50) and torch.equal(pt["boxes"], t["boxes"])


def test_detection_resize_scales_boxes():
    boxes = torch.tensor([[10.0, 4.0, 22.0, 9.0]])
    assert torch.equal(
        resize_boxes(boxes, (20, 50), (40, 25)), torch.tensor([[5.0, 8.0, 11.0, 18.0]])
    )
    x, t = DetectionResize((40, 25))(torch.rand(3, 20, 50), {"boxes": boxes})
    assert x.shape == (3, 40, 25) and torch.equal(
        t["boxes"], torch.tensor([[5.0, 8.0, 11.0, 18.0]])
    )
    x, t = detection_transforms(size=10)(Image.new("RGB", (50, 20)), {"boxes": boxes})
    assert x.shape == (3, 10, 25) and torch.allclose(t["boxes"], boxes / 2)


def test_detection_collate():
    batch = [
        (torch.rand(3, 4, 5), {"boxes": torch.zeros(0, 4)}),
        (torch.rand(3, 6, 7), {"boxes": torch.ones(1, 4)}),
    ]
    images, targets = detection_collate(batch)
    assert isinstance(images, list) and [im.shape[1] for im in images] == [4, 6]
    assert targets[1]["boxes"].shape == (1, 4)
