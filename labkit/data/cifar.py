"""CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar.html): 32x32 images, 100 fine / 20 coarse classes.

Reads the original python-pickle layout (``cifar-100-python/{train,test,meta}``) directly:
torchvision's ``CIFAR100`` refuses files whose md5 differs from the official ones (e.g. subsets);
it is still used for ``download=True``, which verifies the official archive.
"""

from __future__ import annotations

import os
import pickle
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

CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_SPLITS = ("train", "test")
CIFAR100_LABEL_TYPES = ("fine", "coarse")
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
CIFAR100_LAYOUT = """\
cifar-100-python/
    train   (pickle: dict with b"data" uint8 (N, 3072), b"fine_labels", b"coarse_labels", ...)
    test
    meta    (pickle: dict with b"fine_label_names" (100), b"coarse_label_names" (20))
"""


def load_pickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle (python 2 byte strings decoded as latin1); CorruptFileError if unreadable."""
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated or foreign file: pickle raises many types
        raise corrupt(path, e) from e
    if not isinstance(obj, dict):
        raise corrupt(path, f"expected a dict, got {type(obj).__name__}")
    return obj


def _key(d: dict[str, Any], key: str, path: Path) -> Any:
    if key not in d:
        raise corrupt(path, f"missing key {key!r}")
    return d[key]


class CIFAR100(Dataset):
    """CIFAR-100: (image float (3,32,32) in [0,1], int label) with fine (100) or coarse (20) labels.

    ``root`` holds ``cifar-100-python/`` (default ``data_root()``). ``transform`` gets a PIL RGB
    image (default: to a float tensor; ``None`` returns the PIL image). ``subset`` keeps the
    first N samples. ``classes`` come from ``meta``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        split: str = "train",
        label_type: str = "fine",
        transform: Callable[[Image.Image], Any] | None = image_to_tensor,
        download: bool = False,
        subset: int | None = None,
    ) -> None:
        if split not in CIFAR100_SPLITS:
            raise ValueError(f"split must be one of {CIFAR100_SPLITS}, got {split!r}")
        if label_type not in CIFAR100_LABEL_TYPES:
            raise ValueError(
                f"label_type must be one of {CIFAR100_LABEL_TYPES}, got {label_type!r}"
            )
        self.root = resolve_root(root)
        self.split = split
        self.label_type = label_type
        self.transform = transform
        base = self.root / CIFAR100_FOLDER
        files = (base / split, base / "meta")
        if download and not all(p.is_file() for p in files):
            torchvision.datasets.CIFAR100(str(self.root), train=split == "train", download=True)
        missing = tuple(p for p in files if not p.is_file())
        if missing:
            raise not_found(
                "CIFAR-100",
                searched=self.root,
                layout=CIFAR100_LAYOUT,
                missing=missing,
                fixes=[
                    "pass download=True (160 MB from cs.toronto.edu)",
                    (
                        "download cifar-100-python.tar.gz from "
                        f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it into {self.root}"
                    ),
                ],
            )
        entry = load_pickle(files[0])
        meta = load_pickle(files[1])
        key = f"{label_type}_labels"
        data = np.asarray(_key(entry, "data", files[0]), dtype=np.uint8)
        labels = np.asarray(_key(entry, key, files[0]), dtype=np.int64)
        names = [str(c) for c in _key(meta, f"{label_type}_label_names", files[1])]
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise corrupt(files[0], f"data {data.shape} / {len(labels)} labels, expected (N, 3072)")
        n = subset_length(len(data), subset)
        self.data = data[:n].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
        self.targets: list[int] = labels[:n].tolist()
        self.classes: list[str] = names
        self.num_classes = len(names)
        if self.targets and not 0 <= min(self.targets) <= max(self.targets) < self.num_classes:
            raise corrupt(files[0], f"{key} outside 0..{self.num_classes - 1}")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image: Any = Image.fromarray(self.data[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def class_counts(self) -> torch.Tensor:
        """Number of samples per class (num_classes,) int64."""
        return torch.bincount(
            torch.tensor(self.targets, dtype=torch.int64), minlength=self.num_classes
        )
