"""Tests for labkit/data/paired.py: the paired image/mask dataset base."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from labkit.data.paired import PairedSegmentation
from labkit.data.root import CorruptFileError, DatasetNotFoundError


class Folder(PairedSegmentation):
    classes = ("a", "b")
    num_classes = 2

    def __init__(self, root, subset=None):
        self.root = root
        names = sorted(p.stem for p in root.glob("*.jpg"))
        self._set_files([root / f"{n}.jpg" for n in names], [root / f"{n}.png" for n in names],
                        transforms=None, subset=subset)

    def read_mask(self, path):
        return Image.open(path).convert("L")

    def _not_found(self, missing):
        return DatasetNotFoundError(f"missing {missing}")


def _write(root, name, hw=(4, 5), mask_hw=None):
    Image.fromarray(np.zeros((*hw, 3), np.uint8)).save(root / f"{name}.jpg")
    Image.fromarray(np.ones(mask_hw or hw, np.uint8)).save(root / f"{name}.png")


def test_pairs_subset_and_errors(tmp_path):
    for name in ("a", "b", "c"):
        _write(tmp_path, name, mask_hw=(4, 6) if name == "b" else None)
    ds = Folder(tmp_path, subset=2)
    assert len(ds) == 2 and ds.image_path(1).name == "b.jpg" and ds[-2][1].size == (5, 4)
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(CorruptFileError, match="b.jpg"):
        ds[1]
    (tmp_path / "a.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="a.png"):
        ds[0]
