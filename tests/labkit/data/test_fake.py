"""Tests for labkit/data/fake.py: layouts, determinism, and torchvision reading the fixtures directly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from labkit.data import (
    MNIST,
    write_fake_cifar100,
    write_fake_cityscapes,
    write_fake_fashion_mnist,
    write_fake_mnist,
    write_fake_pets,
    write_fake_voc,
)

WRITERS = [
    write_fake_pets,
    write_fake_cityscapes,
    write_fake_cifar100,
    write_fake_voc,
    write_fake_mnist,
    write_fake_fashion_mnist,
]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.__name__)
def test_deterministic_small_and_returns_root(tmp_path, writer):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert writer(a, seed=1) == a
    writer(b, seed=1)
    writer(c, seed=2)
    assert _digest(a) == _digest(b) and _digest(a) != _digest(c)
    assert sum(p.stat().st_size for p in a.rglob("*") if p.is_file()) < 2_000_000


def test_pets_layout_read_by_torchvision(tmp_path):
    root = write_fake_pets(tmp_path, n=6)
    ann = root / "oxford-iiit-pet" / "annotations"
    assert (ann / "list.txt").read_text().startswith("#Image CLASS-ID SPECIES BREED ID")
    assert len((ann / "list.txt").read_text().splitlines()) == 6 + 6
    tv = torchvision.datasets.OxfordIIITPet(
        str(root), split="trainval", target_types="segmentation"
    )
    image, trimap = tv[0]
    assert image.mode == "RGB" and set(np.unique(np.asarray(trimap)).tolist()) == {1, 2, 3}


def test_cityscapes_layout_read_by_torchvision(tmp_path):
    root = write_fake_cityscapes(tmp_path, split="train", n=3)
    tv = torchvision.datasets.Cityscapes(
        str(root),
        split="train",
        mode="fine",
        target_type=["semantic", "instance", "color", "polygon"],
    )
    assert len(tv) == 3
    image, (semantic, instance, color, polygon) = tv[0]
    ids = np.asarray(semantic)
    inst = np.asarray(instance)
    assert image.size == (128, 64) and ids.shape == (64, 128) and ids.dtype == np.uint8
    assert inst.shape == ids.shape and inst.max() >= 26000  # car instances: 26 * 1000 + k
    assert ((inst // 1000 == ids) | (inst == ids)).all()
    assert np.asarray(color).shape == (64, 128, 4)
    assert polygon["imgHeight"] == 64 and {o["label"] for o in polygon["objects"]} >= {
        "road",
        "car",
    }
    gt = root / "gtFine" / "train"
    assert all(json.loads(p.read_text())["objects"] for p in gt.rglob("*_polygons.json"))


def test_voc_layout_read_by_torchvision(tmp_path):
    root = write_fake_voc(tmp_path, n=4)
    for year, image_set in (
        ("2007", "trainval"),
        ("2007", "test"),
        ("2007", "train"),
        ("2012", "val"),
    ):
        tv = torchvision.datasets.VOCDetection(str(root), year=year, image_set=image_set)
        image, ann = tv[0]
        assert image.size == (64, 48)
        obj = ann["annotation"]["object"][0]
        assert {"name", "difficult", "bndbox", "truncated", "pose"} <= set(obj)


def test_mnist_layout_read_by_torchvision(tmp_path):
    write_fake_mnist(tmp_path, n_train=12, n_test=10)
    write_fake_fashion_mnist(tmp_path, n_train=12, n_test=10)
    tv = torchvision.datasets.MNIST(str(tmp_path), train=False)
    ours = MNIST(tmp_path, split="test")
    assert torch.equal(tv.data, torch.from_numpy(ours.data.copy())) and torch.equal(
        tv.targets, ours.targets
    )
    assert len(torchvision.datasets.FashionMNIST(str(tmp_path), train=True)) == 12


def test_cifar_layout_keys(tmp_path):
    import pickle

    base = write_fake_cifar100(tmp_path, n_train=3, n_test=2) / "cifar-100-python"
    with open(base / "train", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert set(entry) == {"filenames", "batch_label", "fine_labels", "coarse_labels", "data"}
    assert entry["data"].shape == (3, 3072) and entry["data"].dtype == np.uint8
    with open(base / "meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    assert len(meta["fine_label_names"]) == 100 and len(meta["coarse_label_names"]) == 20


def test_fake_images_have_structure(tmp_path):
    root = write_fake_pets(tmp_path, n=4, quirks=False)
    base = root / "oxford-iiit-pet"
    image = np.asarray(Image.open(base / "images" / "Bengal_1.jpg")).astype(float)
    trimap = np.asarray(Image.open(base / "annotations" / "trimaps" / "Bengal_1.png"))
    pet, background = image[trimap == 1].mean(0), image[trimap == 2].mean(0)
    assert np.abs(pet - background).max() > 0.15 * 255  # the mask is visible in the pixels
