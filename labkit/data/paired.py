"""A dataset of paired image / mask files: the reading, checking and transforms that Oxford-IIIT Pet
and Cityscapes share. A subclass lists the files, decodes its mask format and says what to do
when files are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from labkit.data.root import CorruptFileError, DatasetNotFoundError, open_rgb, subset_length
from labkit.data.transforms import IGNORE_INDEX, ToTensor

__all__ = ["PairedSegmentation"]

_DEFAULT_TRANSFORMS = ToTensor()


class PairedSegmentation(Dataset):
    """(image float (3,H,W), mask int64 (H,W)) from paired files; ``ignore_index`` marks unlabelled
    pixels. ``transforms(image, mask)`` gets a PIL RGB image and a PIL mask (mode L); the default
    ``ToTensor()`` returns tensors, ``None`` the PIL pair.

    Subclasses call :meth:`_set_files` and define :meth:`read_mask` (file -> PIL class-id mask)
    and :meth:`_not_found` (missing paths -> a :class:`DatasetNotFoundError` naming the fix).
    """

    classes: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    num_classes = 0
    ignore_index = IGNORE_INDEX

    def _set_files(self, images: Sequence[Path], masks: Sequence[Path], *,
                   transforms: Callable[[Any, Any], tuple[Any, Any]] | None,
                   subset: int | None) -> None:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images for {len(masks)} masks")
        self._images = [Path(p) for p in images]
        self._masks = [Path(p) for p in masks]
        self.transforms = transforms
        self._n = subset_length(len(self._images), subset)

    def read_mask(self, path: Path) -> Image.Image:
        """The mask file at ``path`` as a PIL image (mode L) of class ids (``ignore_index`` kept)."""
        raise NotImplementedError

    def _not_found(self, missing: tuple[Path, ...]) -> DatasetNotFoundError:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -self._n <= index < self._n:
            raise IndexError(f"index {index} out of range for {self._n} samples")
        index %= self._n
        image_path, mask_path = self._images[index], self._masks[index]
        try:
            image = open_rgb(image_path)  # GIF, RGBA PNG and CMYK JPEG files exist: always RGB
            mask = self.read_mask(mask_path)
        except FileNotFoundError as e:
            raise self._not_found((Path(e.filename or ""),)) from e
        if image.size != mask.size:
            raise CorruptFileError(
                f"{image_path} is {image.size} but its mask {mask_path} is {mask.size} (W,H)"
            )
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask

    def image_path(self, index: int) -> Path:
        """Path of the image file of sample ``index``."""
        return self._images[index]

    def mask_path(self, index: int) -> Path:
        """Path of the mask file of sample ``index``."""
        return self._masks[index]
