"""MNIST (http://yann.lecun.com/exdb/mnist/) and Fashion-MNIST (github.com/zalandoresearch/fashion-mnist).

Both read the idx-ubyte files in torchvision's layout (``MNIST/raw/``, ``FashionMNIST/raw/``), one
split at a time: torchvision's classes insist on all four files even to read one split. They are
still used for ``download=True``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset

from labkit.data.root import corrupt, not_found, resolve_root, subset_length
from labkit.data.transforms import image_to_tensor

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_file_names(split: str) -> tuple[str, str]:
    """(images, labels) file names of a split: ``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``..."""
    p = _PREFIX[split]
    return f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (optionally ``.gz``) into an array; CorruptFileError if malformed or truncated."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise
    except (OSError, EOFError) as e:
        raise corrupt(path, e) from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise corrupt(path, "not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt(path, "truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise corrupt(path, f"{len(raw) - header} data bytes, header {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


class _IdxDataset(Dataset):
    _name = ""
    _folder = ""
    _tv_class: Any = None
    _url = ""
    _classes: tuple[str, ...] = ()

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        split: str = "train",
        transform: Callable[[Image.Image], Any] | None = image_to_tensor,
        download: bool = False,
        subset: int | None = None,
    ) -> None:
        if split not in MNIST_SPLITS:
            raise ValueError(f"split must be one of {MNIST_SPLITS}, got {split!r}")
        self.root = resolve_root(root)
        self.split = split
        self.transform = transform
        self.classes = self._classes
        self.num_classes = len(self._classes)
        raw = self.root / self._folder / "raw"
        paths = [self._find(raw / name) for name in idx_file_names(split)]
        if download and any(p is None for p in paths):
            self._tv_class(str(self.root), train=split == "train", download=True)
            paths = [self._find(raw / name) for name in idx_file_names(split)]
        if any(p is None for p in paths):
            missing = tuple(raw / n for n, p in zip(idx_file_names(split), paths) if p is None)
            raise self._not_found(raw, missing)
        image_path, label_path = paths
        images = read_idx(image_path)
        labels = read_idx(label_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise corrupt(image_path, f"images {images.shape} do not match labels {labels.shape}")
        if len(labels) and not 0 <= labels.min() <= labels.max() < self.num_classes:
            raise corrupt(label_path, f"labels outside 0..{self.num_classes - 1}")
        n = subset_length(len(labels), subset)
        self.data = images[:n]  # (N, 28, 28) uint8
        self.targets = torch.from_numpy(labels[:n].astype(np.int64))

    @staticmethod
    def _find(path: Path) -> Path | None:
        """The idx file, or its ``.gz`` when only the archive is there."""
        if path.is_file():
            return path
        gz = path.with_name(path.name + ".gz")
        return gz if gz.is_file() else None

    def _not_found(self, raw: Path, missing: tuple[Path, ...]) -> Exception:
        names = idx_file_names(self.split)
        layout = f"{self._folder}/raw/\n    {names[0]}\n    {names[1]}\n"
        return not_found(
            self._name,
            searched=self.root,
            layout=layout,
            missing=missing,
            fixes=[
                "pass download=True",
                (
                    f"download {names[0]}.gz and {names[1]}.gz from {self._url} "
                    f"and gunzip them into {raw}"
                ),
            ],
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image: Any = Image.fromarray(np.ascontiguousarray(self.data[index]))  # mode L, 28x28
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


class MNIST(_IdxDataset):
    """MNIST digits: (image float (1,28,28) in [0,1], int label 0..9); ``root`` holds ``MNIST/raw/``.

    ``transform`` gets a PIL image (mode L); default: float tensor, ``None``: the PIL image.
    ``subset`` keeps the first N samples.
    """

    _name = "MNIST"
    _folder = "MNIST"
    _tv_class = torchvision.datasets.MNIST
    _url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    _classes = MNIST_CLASSES


class FashionMNIST(_IdxDataset):
    """Fashion-MNIST: (image float (1,28,28) in [0,1], int label 0..9); ``root`` holds ``FashionMNIST/raw/``.

    ``transform`` gets a PIL image (mode L); default: float tensor, ``None``: the PIL image.
    ``subset`` keeps the first N samples.
    """

    _name = "Fashion-MNIST"
    _folder = "FashionMNIST"
    _tv_class = torchvision.datasets.FashionMNIST
    _url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    _classes = FASHION_MNIST_CLASSES
