"""Fixtures for the data tests: the real samples folder (skip when absent) and fake dataset roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real dataset samples: ``$LABKIT_REAL_DATA`` or ``<repo>/../shared/data/real``."""
    path = Path(os.environ.get("LABKIT_REAL_DATA", REPO.parent / "shared" / "data" / "real"))
    if not path.is_dir():
        pytest.skip(f"real dataset samples not found at {path}")
    return path


def _sample(real_data: Path, *parts: str) -> Path:
    path = real_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample not found at {path}")
    return path


@pytest.fixture(scope="session")
def real_pets_root(real_data: Path) -> Path:
    """Root holding the real ``oxford-iiit-pet/`` sample."""
    _sample(real_data, "oxford-iiit-pet")
    return real_data


@pytest.fixture(scope="session")
def real_cifar100_root(real_data: Path) -> Path:
    """Root holding the real ``cifar-100-python/`` subset."""
    return _sample(real_data, "cifar100_subset")


@pytest.fixture(scope="session")
def real_mnist_root(real_data: Path) -> Path:
    """Root holding the real ``MNIST/raw/`` sample (test split and train labels only)."""
    return _sample(real_data, "mnist")


@pytest.fixture(scope="session")
def real_fashion_root(real_data: Path) -> Path:
    """Root holding the real ``FashionMNIST/raw/`` test subset (4,443 images)."""
    return _sample(real_data, "fashion-mnist", "subset_rebuilt_from_truncated")


@pytest.fixture(scope="session")
def real_cityscapes_root(real_data: Path) -> Path:
    """Root holding the real downscaled Cityscapes val frame (leftImg8bit/, gtFine/)."""
    return _sample(real_data, "cityscapes_downscaled_mmseg_fixture")
