"""Cityscapes fine annotations (https://www.cityscapes-dataset.com), 19 train classes, 255 ignored.

The label table follows cityscapesScripts ``helpers/labels.py``: each ``_gtFine_labelIds.png``
value (labelId, 0..33) maps to a trainId (0..18) or 255 (ignored). Files are read through
torchvision's ``Cityscapes`` (``target_type="semantic"``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
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
from labkit.data.transforms import IGNORE_INDEX


class CityscapesLabel(NamedTuple):
    """One row of cityscapesScripts' label table."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    #              name                    id  trainId  category        catId  hasInst ignore  color
    CityscapesLabel("unlabeled",            0,  255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("ego vehicle",          1,  255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("rectification border", 2,  255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("out of roi",           3,  255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("static",               4,  255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("dynamic",              5,  255, "void",         0, False, True,  (111, 74, 0)),
    CityscapesLabel("ground",               6,  255, "void",         0, False, True,  (81, 0, 81)),
    CityscapesLabel("road",                 7,    0, "flat",         1, False, False, (128, 64, 128)),
    CityscapesLabel("sidewalk",             8,    1, "flat",         1, False, False, (244, 35, 232)),
    CityscapesLabel("parking",              9,  255, "flat",         1, False, True,  (250, 170, 160)),
    CityscapesLabel("rail track",          10,  255, "flat",         1, False, True,  (230, 150, 140)),
    CityscapesLabel("building",            11,    2, "construction", 2, False, False, (70, 70, 70)),
    CityscapesLabel("wall",                12,    3, "construction", 2, False, False, (102, 102, 156)),
    CityscapesLabel("fence",               13,    4, "construction", 2, False, False, (190, 153, 153)),
    CityscapesLabel("guard rail",          14,  255, "construction", 2, False, True,  (180, 165, 180)),
    CityscapesLabel("bridge",              15,  255, "construction", 2, False, True,  (150, 100, 100)),
    CityscapesLabel("tunnel",              16,  255, "construction", 2, False, True,  (150, 120, 90)),
    CityscapesLabel("pole",                17,    5, "object",       3, False, False, (153, 153, 153)),
    CityscapesLabel("polegroup",           18,  255, "object",       3, False, True,  (153, 153, 153)),
    CityscapesLabel("traffic light",       19,    6, "object",       3, False, False, (250, 170, 30)),
    CityscapesLabel("traffic sign",        20,    7, "object",       3, False, False, (220, 220, 0)),
    CityscapesLabel("vegetation",          21,    8, "nature",       4, False, False, (107, 142, 35)),
    CityscapesLabel("terrain",             22,    9, "nature",       4, False, False, (152, 251, 152)),
    CityscapesLabel("sky",                 23,   10, "sky",          5, False, False, (70, 130, 180)),
    CityscapesLabel("person",              24,   11, "human",        6, True,  False, (220, 20, 60)),
    CityscapesLabel("rider",               25,   12, "human",        6, True,  False, (255, 0, 0)),
    CityscapesLabel("car",                 26,   13, "vehicle",      7, True,  False, (0, 0, 142)),
    CityscapesLabel("truck",               27,   14, "vehicle",      7, True,  False, (0, 0, 70)),
    CityscapesLabel("bus",                 28,   15, "vehicle",      7, True,  False, (0, 60, 100)),
    CityscapesLabel("caravan",             29,  255, "vehicle",      7, True,  True,  (0, 0, 90)),
    CityscapesLabel("trailer",             30,  255, "vehicle",      7, True,  True,  (0, 0, 110)),
    CityscapesLabel("train",               31,   16, "vehicle",      7, True,  False, (0, 80, 100)),
    CityscapesLabel("motorcycle",          32,   17, "vehicle",      7, True,  False, (0, 0, 230)),
    CityscapesLabel("bicycle",             33,   18, "vehicle",      7, True,  False, (119, 11, 32)),
    CityscapesLabel("license plate",       -1,   -1, "vehicle",      7, False, True,  (0, 0, 142)),
)
# fmt: on

_TRAIN_LABELS = sorted(
    (lb for lb in CITYSCAPES_LABELS if 0 <= lb.train_id < 255), key=lambda lb: lb.train_id
)
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(lb.name for lb in _TRAIN_LABELS)
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = tuple(lb.color for lb in _TRAIN_LABELS)
CITYSCAPES_NUM_CLASSES = len(CITYSCAPES_CLASSES)  # 19

CITYSCAPES_LABEL_TO_TRAIN_ID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _lb in CITYSCAPES_LABELS:
    if 0 <= _lb.id < 256 and 0 <= _lb.train_id < 255:
        CITYSCAPES_LABEL_TO_TRAIN_ID[_lb.id] = _lb.train_id

CITYSCAPES_SPLITS = ("train", "val", "test")
CITYSCAPES_FOLDER = "cityscapes"
CITYSCAPES_LAYOUT = """\
leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    (from leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip)
"""


def label_to_train_id(label_ids: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Cityscapes labelIds (H,W) -> trainIds (H,W) in 0..18 or 255; tensor in -> int64 tensor out."""
    if isinstance(label_ids, torch.Tensor):
        lut = torch.from_numpy(CITYSCAPES_LABEL_TO_TRAIN_ID.astype(np.int64)).to(label_ids.device)
        return lut[label_ids.long().clamp(0, 255)]
    a = np.asarray(label_ids)
    return CITYSCAPES_LABEL_TO_TRAIN_ID[np.clip(a, 0, 255).astype(np.int64)]


class CityscapesSegmentation(PairedSegmentation):
    """Cityscapes fine: (image float (3,H,W), mask int64 (H,W) of trainIds 0..18, 255 ignored).

    ``root`` holds ``leftImg8bit/`` and ``gtFine/`` (default ``data_root()/cityscapes``).
    ``transforms(image, mask)`` gets a PIL RGB image and a PIL trainId mask (mode L); the default
    ``ToTensor()`` returns tensors, ``None`` the PIL pair. Samples are sorted by file name;
    ``subset`` keeps the first N. There is no download: the files need a login.
    """

    classes = CITYSCAPES_CLASSES
    palette = CITYSCAPES_PALETTE
    num_classes = CITYSCAPES_NUM_CLASSES

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        split: str = "val",
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = _DEFAULT_TRANSFORMS,
        subset: int | None = None,
    ) -> None:
        if split not in CITYSCAPES_SPLITS:
            raise ValueError(f"split must be one of {CITYSCAPES_SPLITS}, got {split!r}")
        self.root = resolve_root(root, CITYSCAPES_FOLDER)
        self.split = split
        image_dir = self.root / "leftImg8bit" / split
        target_dir = self.root / "gtFine" / split
        zips = (self.root / "leftImg8bit_trainvaltest.zip", self.root / "gtFine_trainvaltest.zip")
        dirs_ok = image_dir.is_dir() and target_dir.is_dir()
        if not dirs_ok and not all(z.is_file() for z in zips):
            missing = tuple(p for p in (image_dir, target_dir) if not p.is_dir())
            raise self._not_found(missing)
        try:  # torchvision extracts the two zips when the folders are absent
            tv = torchvision.datasets.Cityscapes(
                str(self.root), split=split, mode="fine", target_type="semantic"
            )
        except (RuntimeError, OSError) as e:
            raise self._not_found((image_dir, target_dir)) from e
        pairs = sorted(zip(tv.images, (t[0] for t in tv.targets)))
        if not pairs:
            raise self._not_found((image_dir / "<city>" / "*_leftImg8bit.png",))
        self._set_files([Path(p) for p, _ in pairs], [Path(t) for _, t in pairs],
                        transforms=transforms, subset=subset)

    def _not_found(self, missing: tuple[Path, ...]) -> DatasetNotFoundError:
        return not_found(
            "Cityscapes",
            searched=self.root,
            layout=CITYSCAPES_LAYOUT,
            missing=missing,
            fixes=[
                (
                    "log in at https://www.cityscapes-dataset.com (free account), download "
                    "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip and unzip them to "
                    f"{self.root}"
                ),
            ],
        )

    def read_mask(self, path: Path) -> Image.Image:
        """A ``_gtFine_labelIds.png`` file as a trainId mask (mode L, 255 ignored)."""
        label_ids = np.asarray(open_label_image(path))
        if label_ids.ndim != 2:
            raise CorruptFileError(f"{path}: expected a single-channel labelIds PNG")
        return Image.fromarray(label_to_train_id(label_ids))
