"""PASCAL VOC detection (http://host.robots.ox.ac.uk/pascal/VOC/), 20 classes, labels 1..20 (0 = background).

Splits as in the course: train = VOC2007 trainval, val = VOC2007 test, test = VOC2012 val. Files
are read through torchvision's ``VOCDetection``. Boxes are xyxy in pixel-edge coordinates: the
1-based inclusive VOC corners (xmin, ymin, xmax, ymax) become (xmin - 1, ymin - 1, xmax, ymax).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch.utils.data import Dataset

from labkit.data.root import (
    CorruptFileError,
    corrupt,
    not_found,
    open_rgb,
    resolve_root,
    subset_length,
)
from labkit.data.transforms import DetectionToTensor, detection_collate

_DEFAULT_TRANSFORMS = DetectionToTensor()

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_NUM_CLASSES = len(VOC_CLASSES) + 1  # 21 with the background, as torchvision detectors expect
VOC_SPLITS: dict[str, tuple[str, str]] = {
    "train": ("2007", "trainval"),
    "val": ("2007", "test"),
    "test": ("2012", "val"),
}
_CLASS_TO_LABEL = {name: i + 1 for i, name in enumerate(VOC_CLASSES)}
_ARCHIVES = {
    ("2007", "trainval"): "VOCtrainval_06-Nov-2007.tar",
    ("2007", "test"): "VOCtest_06-Nov-2007.tar",
    ("2012", "val"): "VOCtrainval_11-May-2012.tar",
}


def _layout(year: str, image_set: str) -> str:
    return (
        f"VOCdevkit/VOC{year}/\n"
        f"    ImageSets/Main/{image_set}.txt   (one image id per line)\n"
        f"    JPEGImages/<id>.jpg\n"
        f"    Annotations/<id>.xml\n"
    )


def parse_voc_objects(
    annotation: dict[str, Any], path: str | os.PathLike, *, keep_difficult: bool = True
) -> dict[str, torch.Tensor]:
    """torchvision's parsed XML dict -> {boxes float32 (N,4) xyxy, labels int64 (N,) in 1..20, difficult bool (N,)}."""
    objects = annotation.get("annotation", {}).get("object", [])
    if isinstance(objects, dict):
        objects = [objects]
    boxes: list[list[float]] = []
    labels: list[int] = []
    difficult: list[bool] = []
    for obj in objects:
        try:
            name = str(obj["name"]).strip()
            bb = obj["bndbox"]
            box = [
                float(bb["xmin"]) - 1,
                float(bb["ymin"]) - 1,
                float(bb["xmax"]),
                float(bb["ymax"]),
            ]
            is_difficult = str(obj.get("difficult", "0")).strip() == "1"
        except (KeyError, TypeError, ValueError) as e:
            raise corrupt(path, f"bad <object> entry: {e!r}") from e
        if name not in _CLASS_TO_LABEL:
            raise corrupt(path, f"unknown class {name!r}")
        if is_difficult and not keep_difficult:
            continue
        boxes.append(box)
        labels.append(_CLASS_TO_LABEL[name])
        difficult.append(is_difficult)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
    }


class VOCDetection(Dataset):
    """PASCAL VOC: (image float (3,H,W) in [0,1], {boxes float32 (N,4) xyxy, labels int64 1..20, difficult bool}).

    ``root`` holds ``VOCdevkit/`` (default ``data_root()``); ``split`` is train (VOC07 trainval),
    val (VOC07 test) or test (VOC12 val). ``keep_difficult=False`` drops boxes marked difficult.
    ``transforms(image, target)`` gets a PIL RGB image; the default ``DetectionToTensor()`` returns
    a tensor, ``None`` the PIL image. ``subset`` keeps the first N ids. Batch with ``detection_collate``.
    """

    classes = VOC_CLASSES
    num_classes = VOC_NUM_CLASSES
    collate_fn = staticmethod(detection_collate)

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        split: str = "train",
        keep_difficult: bool = True,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = _DEFAULT_TRANSFORMS,
        download: bool = False,
        subset: int | None = None,
    ) -> None:
        if split not in VOC_SPLITS:
            raise ValueError(f"split must be one of {tuple(VOC_SPLITS)}, got {split!r}")
        self.root = resolve_root(root)
        self.split = split
        self.year, self.image_set = VOC_SPLITS[split]
        self.keep_difficult = keep_difficult
        self.transforms = transforms
        voc_root = self.root / "VOCdevkit" / f"VOC{self.year}"
        split_file = voc_root / "ImageSets" / "Main" / f"{self.image_set}.txt"
        needed = (split_file, voc_root / "JPEGImages", voc_root / "Annotations")
        if download and not all(p.exists() for p in needed):  # torchvision re-extracts every time
            torchvision.datasets.VOCDetection(
                str(self.root), year=self.year, image_set=self.image_set, download=True
            )
        missing = tuple(p for p in needed if not p.exists())
        if missing:
            raise self._not_found(missing)
        try:
            tv = torchvision.datasets.VOCDetection(
                str(self.root), year=self.year, image_set=self.image_set
            )
        except (RuntimeError, FileNotFoundError) as e:
            raise self._not_found((split_file,)) from e
        self._images = [Path(p) for p in tv.images]
        self._annotations = [Path(p) for p in tv.annotations]
        self._n = subset_length(len(self._images), subset)

    def _not_found(self, missing: tuple[Path, ...]) -> Exception:
        return not_found(
            f"PASCAL VOC{self.year} {self.image_set} (split {self.split!r})",
            searched=self.root,
            layout=_layout(self.year, self.image_set),
            missing=missing,
            fixes=[
                "pass download=True",
                (
                    f"download {_ARCHIVES[(self.year, self.image_set)]} "
                    f"(http://host.robots.ox.ac.uk/pascal/VOC/) and extract it into {self.root}"
                ),
            ],
        )

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[Any, dict[str, torch.Tensor]]:
        if not -self._n <= index < self._n:
            raise IndexError(f"index {index} out of range for {self._n} samples")
        index %= self._n
        image_path, xml_path = self._images[index], self._annotations[index]
        try:
            image = open_rgb(image_path)
            try:
                tree = ET.parse(xml_path)
            except ET.ParseError as e:
                raise corrupt(xml_path, e) from e
        except FileNotFoundError as e:
            raise self._not_found((Path(e.filename or ""),)) from e
        parsed = torchvision.datasets.VOCDetection.parse_voc_xml(tree.getroot())
        target = parse_voc_objects(parsed, xml_path, keep_difficult=self.keep_difficult)
        w, h = image.size
        boxes = target["boxes"]
        if len(boxes) and (
            (boxes[:, 2] <= boxes[:, 0]).any()
            or (boxes[:, 3] <= boxes[:, 1]).any()
            or boxes[:, 2].max() > w
            or boxes[:, 3].max() > h
            or boxes[:, :2].min() < 0
        ):
            raise CorruptFileError(f"{xml_path}: boxes {boxes.tolist()} do not fit a {w}x{h} image")
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def image_path(self, index: int) -> Path:
        """Path of the JPEG of sample ``index``."""
        return self._images[index]
