"""Tests for labkit/data/mnist.py on fake fixtures and the real MNIST / Fashion-MNIST samples."""

from __future__ import annotations

import gzip

import pytest
import torch

from labkit.data import (
    FASHION_MNIST_CLASSES,
    MNIST,
    CorruptFileError,
    DatasetNotFoundError,
    FashionMNIST,
    read_idx,
    write_fake_fashion_mnist,
    write_fake_mnist,
)


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("idx")
    write_fake_mnist(root, n_train=30, n_test=10)
    write_fake_fashion_mnist(root, n_train=20, n_test=10)
    return root


@pytest.mark.parametrize(("cls", "n_train"), [(MNIST, 30), (FashionMNIST, 20)])
def test_fake_items(idx_root, cls, n_train):
    train, test = cls(idx_root, split="train"), cls(idx_root, split="test")
    assert (len(train), len(test)) == (n_train, 10) and train.num_classes == 10
    for i in range(len(test)):
        image, label = test[i]
        assert image.shape == (1, 28, 28) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5
        assert isinstance(label, int) and 0 <= label < 10
    assert sorted(test.targets.tolist()) == list(range(10))
    assert len(cls(idx_root, split="train", subset=7)) == 7
    assert cls(idx_root, transform=None)[0][0].size == (28, 28)


def test_gz_only_files_are_read(tmp_path):
    raw = write_fake_mnist(tmp_path, n_train=3, n_test=3) / "MNIST" / "raw"
    for path in list(raw.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    ds = MNIST(tmp_path, split="test")
    assert len(ds) == 3 and ds[0][0].shape == (1, 28, 28)


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(tmp_path, split="test")
    msg = str(info.value)
    assert "Fashion-MNIST" in msg and str(tmp_path) in msg and "FashionMNIST/raw/" in msg
    assert "t10k-images-idx3-ubyte" in msg and "download=True" in msg
    raw = write_fake_mnist(tmp_path, n_train=3, n_test=3) / "MNIST" / "raw"
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(CorruptFileError, match="t10k-images-idx3-ubyte"):
        MNIST(tmp_path, split="test")
    images.write_bytes(b"\x12\x34garbage")
    with pytest.raises(CorruptFileError, match="magic"):
        read_idx(images)


def test_real_mnist(real_mnist_root):
    ds = MNIST(real_mnist_root, split="test")
    assert len(ds) == 10_000
    assert torch.equal(
        torch.bincount(ds.targets, minlength=10) > 800, torch.ones(10, dtype=torch.bool)
    )
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and label == 7  # the famous first test digit
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(real_mnist_root, split="train")  # the sample has no train images


def test_real_fashion_mnist(real_fashion_root, real_data):
    ds = FashionMNIST(real_fashion_root, split="test")
    assert len(ds) == 4443 and ds.classes == FASHION_MNIST_CLASSES
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and label == 9  # first test item: an ankle boot
    assert set(ds.targets.unique().tolist()) == set(range(10))
    labels_only = real_data / "fashion-mnist"
    if (labels_only / "FashionMNIST" / "raw").is_dir():
        with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte"):
            FashionMNIST(labels_only, split="test")


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    def fake_tv(root, train, download):
        calls.append((root, train, download))
        write_fake_mnist(root, n_train=4, n_test=3)

    monkeypatch.setattr(MNIST, "_tv_class", staticmethod(fake_tv))
    assert len(MNIST(tmp_path, split="train", download=True)) == 4
    assert len(MNIST(tmp_path, split="test", download=True)) == 3
    assert calls == [(str(tmp_path), True, True)]
