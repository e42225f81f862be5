"""Oxford-IIIT Pet trimap segmentation (https://www.robots.ox.ac.uk/~vgg/data/pets/), 3 classes.

Trimap values {1 pet, 2 background, 3 border} become class ids ``trimap - 1``: 0 pet, 1 background,
2 border; any other value becomes 255 (ignored). The split lists ``annotations/{trainval,test}.txt``
are read as torchvision's ``OxfordIIITPet`` reads them (``list.txt`` is not used); torchvision
downloads the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torchvision
from PIL import Image

from labkit.data.paired import _DEFAULT_TRANSFORMS, PairedSegmentation
from labkit.data.root import (
    CorruptFileError,
    DatasetNotFoundError,
    not_found,
    open_label_image,
    resolve_root,
)

PETS_CLASSES = ("pet", "background", "border")
PETS_PALETTE = ((255, 140, 0), (0, 0, 0), (255, 255, 255))
PETS_FOLDER = "oxford-iiit-pet"
PETS_SPLITS = ("trainval", "test")

PETS_LAYOUT = """\
oxford-iiit-pet/
    images/<Breed>_<n>.jpg
    annotations/trainval.txt        (lines: <Breed>_<n> CLASS-ID SPECIES BREED-ID)
    annotations/test.txt
    annotations/trimaps/<Breed>_<n>.png   (values 1 pet, 2 background, 3 border)
"""

_TRIMAP_LUT = np.full(256, 255, dtype=np.uint8)
_TRIMAP_LUT[[1, 2, 3]] = [0, 1, 2]


def trimap_to_mask(trimap: Image.Image | np.ndarray) -> Image.Image:
    """Trimap (H,W) with values {1,2,3} -> mask image (mode L) with class ids {0,1,2}; others -> 255."""
    t = np.asarray(trimap)
    if t.dtype != np.uint8:
        t = np.clip(t, 0, 255).astype(np.uint8)
    return Image.fromarray(_TRIMAP_LUT[t])


def read_split_list(path: Path) -> tuple[list[str], list[int]]:
    """Image ids and breed labels (0-based) of a split list (lines ``<Breed>_<n> CLASS-ID SPECIES BREED-ID``)."""
    ids, labels = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            raise CorruptFileError(f"{path} line {n}: expected '<Breed>_<n> CLASS-ID SPECIES "
                                   f"BREED-ID', got {line!r}")
        ids.append(parts[0])
        labels.append(int(parts[1]) - 1)
    return ids, labels


def breed_names(ids: list[str], labels: list[int]) -> list[str]:
    """Breed names in label order, as torchvision writes them ("american_bulldog" -> "American Bulldog")."""
    pairs = sorted({(i.rsplit("_", 1)[0], label) for i, label in zip(ids, labels, strict=True)},
                   key=lambda p: p[1])
    return [" ".join(part.title() for part in raw.split("_")) for raw, _ in pairs]


class PetsSegmentation(PairedSegmentation):
    """Oxford-IIIT Pet: (image float (3,H,W), mask int64 (H,W) in {0 pet, 1 background, 2 border}).

    ``root`` holds ``oxford-iiit-pet/`` (default ``data_root()``). ``transforms(image, mask)`` gets a
    PIL RGB image and a PIL mask (mode L); the default ``ToTensor()`` returns tensors, ``None``
    returns the PIL pair. ``subset`` keeps the first N samples of the split list.
    """

    classes = PETS_CLASSES
    palette = PETS_PALETTE
    num_classes = len(PETS_CLASSES)

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        split: str = "trainval",
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = _DEFAULT_TRANSFORMS,
        download: bool = False,
        subset: int | None = None,
    ) -> None:
        if split not in PETS_SPLITS:
            raise ValueError(f"split must be one of {PETS_SPLITS}, got {split!r}")
        self.root = resolve_root(root)
        self.split = split
        base = self.root / PETS_FOLDER
        if download:  # torchvision skips the download when images/ and annotations/ exist
            torchvision.datasets.OxfordIIITPet(str(self.root), split=split, download=True)
        self._check_files(base)
        ids, self.breed_labels = read_split_list(base / "annotations" / f"{split}.txt")
        self.breeds: list[str] = breed_names(ids, self.breed_labels)
        self._set_files([base / "images" / f"{i}.jpg" for i in ids],
                        [base / "annotations" / "trimaps" / f"{i}.png" for i in ids],
                        transforms=transforms, subset=subset)

    def read_mask(self, path: Path) -> Image.Image:
        return trimap_to_mask(open_label_image(path))

    def _not_found(self, missing: tuple[Path, ...]) -> DatasetNotFoundError:
        base = self.root / PETS_FOLDER
        return not_found(
            "Oxford-IIIT Pet",
            searched=self.root,
            layout=PETS_LAYOUT,
            missing=missing,
            fixes=[
                "pass download=True (about 800 MB from robots.ox.ac.uk)",
                (
                    "download images.tar.gz and annotations.tar.gz from "
                    f"https://www.robots.ox.ac.uk/~vgg/data/pets/ and extract both into {base}"
                ),
            ],
        )

    def _check_files(self, base: Path) -> None:
        needed = (
            base / "images",
            base / "annotations" / "trimaps",
            base / "annotations" / f"{self.split}.txt",
        )
        missing = tuple(p for p in needed if not p.exists())
        if missing:
            raise self._not_found(missing)
