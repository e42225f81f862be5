"""Oxford-IIIT Pet trimap segmentation (https://www.robots.ox.ac.uk/~vgg/data/pets/), 3 classes.

Trimap values {1 pet, 2 background, 3 border} become class ids ``trimap - 1``: 0 pet, 1 background,
2 border; any other value becomes 255 (ignored). Files are read through torchvision's
``OxfordIIITPet`` (its ``annotations/{trainval,test}.txt`` split lists; ``list.txt`` is not used).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torchvision
from PIL import Image
from torch.utils.data import Dataset

from labkit.data.root import (
    CorruptFileError,
    DatasetNotFoundError,
    not_found,
    open_label_image,
    open_rgb,
    resolve_root,
    subset_length,
)
from labkit.data.transforms import ToTensor

_DEFAULT_TRANSFORMS = ToTensor()

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


class PetsSegmentation(Dataset):
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
        self.transforms = transforms
        base = self.root / PETS_FOLDER
        if download:  # torchvision skips the download when images/ and annotations/ exist
            torchvision.datasets.OxfordIIITPet(str(self.root), split=split, download=True)
        self._check_files(base)
        try:
            tv = torchvision.datasets.OxfordIIITPet(
                str(self.root), split=split, target_types="segmentation"
            )
        except (RuntimeError, FileNotFoundError) as e:
            raise self._not_found(base, ()) from e
        self._images: list[Path] = [Path(p) for p in tv._images]
        self._masks: list[Path] = [Path(p) for p in tv._segs]
        self.breeds: list[str] = list(tv.classes)
        self.breed_labels: list[int] = list(tv._labels)
        self._n = subset_length(len(self._images), subset)

    def _not_found(self, base: Path, missing: tuple[Path, ...]) -> DatasetNotFoundError:
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
            raise self._not_found(base, missing)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -self._n <= index < self._n:
            raise IndexError(f"index {index} out of range for {self._n} samples")
        index %= self._n
        image_path, mask_path = self._images[index], self._masks[index]
        try:
            image = open_rgb(image_path)  # GIF, RGBA PNG and CMYK JPEG files exist: always RGB
            mask = trimap_to_mask(open_label_image(mask_path))
        except FileNotFoundError as e:
            raise self._not_found(self.root / PETS_FOLDER, (Path(e.filename or ""),)) from e
        if image.size != mask.size:
            raise CorruptFileError(
                f"{image_path} is {image.size} but its trimap {mask_path} is {mask.size} (W,H)"
            )
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask

    def mask_path(self, index: int) -> Path:
        """Path of the trimap file of sample ``index``."""
        return self._masks[index]

    def image_path(self, index: int) -> Path:
        """Path of the image file of sample ``index``."""
        return self._images[index]
