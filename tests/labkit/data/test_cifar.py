"""Tests for labkit/data/cifar.py on the fake fixture and the real CIFAR-100 subset."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from labkit.data import CIFAR100, CorruptFileError, DatasetNotFoundError, write_fake_cifar100
from labkit.data.fake import CIFAR100_COARSE_NAMES, CIFAR100_FINE_NAMES, CIFAR100_FINE_TO_COARSE


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_fake_cifar100(tmp_path_factory.mktemp("cifar"), n_train=40, n_test=12)


def test_fake_cifar_fine_and_coarse(cifar_root):
    fine = CIFAR100(cifar_root, split="train")
    coarse = CIFAR100(cifar_root, split="train", label_type="coarse")
    assert len(fine) == 40 and len(CIFAR100(cifar_root, split="test")) == 12
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert fine.classes[0] == "apple" and coarse.classes[0] == "aquatic_mammals"
    for i in range(len(fine)):
        image, label = fine[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert isinstance(label, int) and 0 <= label < 100
        assert torch.equal(image, coarse[i][0])
        assert coarse[i][1] == CIFAR100_FINE_TO_COARSE[label]
    assert fine.class_counts().sum() == 40


def test_pil_without_transform_and_subset(cifar_root):
    ds = CIFAR100(cifar_root, transform=None, subset=5)
    assert len(ds) == 5
    image, _ = ds[4]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and image.mode == "RGB"
    with pytest.raises(ValueError):
        CIFAR100(cifar_root, label_type="medium")


def test_missing_cifar_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR100(tmp_path, split="test")
    msg = str(info.value)
    assert "CIFAR-100" in msg and str(tmp_path) in msg and "cifar-100-python/" in msg
    assert "meta" in msg and "download=True" in msg and "cifar-100-python.tar.gz" in msg


def test_corrupt_pickle_names_the_file(tmp_path):
    root = write_fake_cifar100(tmp_path, n_train=4, n_test=2)
    train = root / "cifar-100-python" / "train"
    train.write_bytes(train.read_bytes()[:500])
    with pytest.raises(CorruptFileError, match="train"):
        CIFAR100(root, split="train")
    with open(root / "cifar-100-python" / "test", "wb") as f:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(CorruptFileError, match="fine_labels"):
        CIFAR100(root, split="test")


def test_real_cifar100_subset(real_cifar100_root):
    train = CIFAR100(real_cifar100_root, split="train")
    test = CIFAR100(real_cifar100_root, split="test")
    assert (len(train), len(test)) == (486, 916)
    assert tuple(train.classes) == CIFAR100_FINE_NAMES
    coarse = CIFAR100(real_cifar100_root, split="test", label_type="coarse")
    assert tuple(coarse.classes) == CIFAR100_COARSE_NAMES
    assert max(test.targets) < 100 and max(coarse.targets) < 20 and min(coarse.targets) >= 0
    assert [CIFAR100_FINE_TO_COARSE[f] for f in test.targets] == coarse.targets
    image, label = test[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= label < 100
    assert image.std() > 0.01  # a real picture, not a constant


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    def fake_tv(root, train, download):
        calls.append((root, train, download))
        write_fake_cifar100(root, n_train=3, n_test=2)

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", fake_tv)
    assert len(CIFAR100(tmp_path, split="test", download=True)) == 2
    assert calls == [(str(tmp_path), False, True)]
    CIFAR100(tmp_path, split="train", download=True)  # files present: no second download
    assert len(calls) == 1
