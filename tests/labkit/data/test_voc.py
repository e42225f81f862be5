"""Tests for labkit/data/voc.py on the fake VOC2007/VOC2012 fixture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch
from torch.utils.data import DataLoader

from labkit.data import (
    VOC_CLASSES,
    CorruptFileError,
    DatasetNotFoundError,
    VOCDetection,
    detection_collate,
    detection_transforms,
    write_fake_voc,
)
from labkit.data.voc import parse_voc_objects


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return write_fake_voc(tmp_path_factory.mktemp("voc"), n=6)


def test_splits_map_to_years(voc_root):
    for split, year, image_set in (
        ("train", "2007", "trainval"), ("val", "2007", "test"), ("test", "2012", "val"),
    ):  # fmt: skip
        ds = VOCDetection(voc_root, split=split)
        assert (ds.year, ds.image_set, len(ds)) == (year, image_set, 6)
        assert f"VOC{year}" in str(ds.image_path(0))
    assert VOCDetection(voc_root, split="test").image_path(0).stem.startswith("2008_")


def test_items_shapes_and_ranges(voc_root):
    ds = VOCDetection(voc_root, split="train")
    assert len(VOC_CLASSES) == 20 and ds.num_classes == 21
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (3, 48, 64) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        boxes, labels, difficult = target["boxes"], target["labels"], target["difficult"]
        assert boxes.dtype == torch.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
        assert labels.dtype == torch.int64 and difficult.dtype == torch.bool
        assert len(boxes) == len(labels) == len(difficult) >= 1
        assert labels.min() >= 1 and labels.max() <= 20
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert boxes[:, :2].min() >= 0 and boxes[:, 2].max() <= 64 and boxes[:, 3].max() <= 48


def test_boxes_follow_voc_corners(voc_root):
    ds = VOCDetection(voc_root, split="val")
    _, target = ds[0]
    xml = ds.image_path(0).parent.parent / "Annotations" / f"{ds.image_path(0).stem}.xml"
    first = ET.parse(xml).getroot().find("object/bndbox")
    corners = [float(first.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
    assert target["boxes"][0].tolist() == [corners[0] - 1, corners[1] - 1, corners[2], corners[3]]


def test_keep_or_drop_difficult(voc_root):
    keep = VOCDetection(voc_root, split="train", keep_difficult=True)
    drop = VOCDetection(voc_root, split="train", keep_difficult=False)
    n_keep = sum(len(keep[i][1]["labels"]) for i in range(len(keep)))
    n_drop = sum(len(drop[i][1]["labels"]) for i in range(len(drop)))
    n_difficult = sum(int(keep[i][1]["difficult"].sum()) for i in range(len(keep)))
    assert n_difficult >= 1 and n_keep - n_drop == n_difficult
    assert all(not drop[i][1]["difficult"].any() for i in range(len(drop)))


def test_parse_hand_written_annotation():
    ann = {"annotation": {"object": [
        {"name": "dog", "difficult": "0", "bndbox": {"xmin": "1", "ymin": "11", "xmax": "50", "ymax": "60"}},
        {"name": "person", "difficult": "1", "bndbox": {"xmin": "5", "ymin": "6", "xmax": "7", "ymax": "8"}},
    ]}}  # fmt: skip
    t = parse_voc_objects(ann, "x.xml")
    assert t["boxes"].tolist() == [[0.0, 10.0, 50.0, 60.0], [4.0, 5.0, 7.0, 8.0]]
    assert t["labels"].tolist() == [12, 15] and t["difficult"].tolist() == [False, True]
    t = parse_voc_objects(ann, "x.xml", keep_difficult=False)
    assert t["labels"].tolist() == [12]
    empty = parse_voc_objects({"annotation": {}}, "x.xml")
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    with pytest.raises(CorruptFileError, match="x.xml"):
        parse_voc_objects({"annotation": {"object": [{"name": "unicorn", "bndbox": {}}]}}, "x.xml")


def test_loader_with_collate_and_train_transforms(voc_root):
    torch.manual_seed(0)
    ds = VOCDetection(
        voc_root, split="train", transforms=detection_transforms(train=True), subset=4
    )
    assert len(ds) == 4
    images, targets = next(iter(DataLoader(ds, batch_size=3, collate_fn=detection_collate)))
    assert len(images) == 3 and len(targets) == 3 and images[0].shape == (3, 48, 64)
    assert VOCDetection.collate_fn is detection_collate


def test_missing_voc_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        VOCDetection(tmp_path, split="val")
    msg = str(info.value)
    assert "VOC2007" in msg and "test" in msg and str(tmp_path) in msg
    assert "VOCdevkit/VOC2007/" in msg and "ImageSets/Main/test.txt" in msg
    assert "VOCtest_06-Nov-2007.tar" in msg and "download=True" in msg


def test_corrupt_annotation_and_image(tmp_path):
    root = write_fake_voc(tmp_path, n=3)
    ds = VOCDetection(root, split="train")
    xml = ds.image_path(0).parent.parent / "Annotations" / f"{ds.image_path(0).stem}.xml"
    xml.write_text(xml.read_text()[:80])
    with pytest.raises(CorruptFileError, match=xml.name):
        ds[0]
    ds.image_path(1).write_bytes(ds.image_path(1).read_bytes()[:150])
    with pytest.raises(CorruptFileError, match=ds.image_path(1).name):
        ds[1]
    ds.image_path(2).unlink()
    with pytest.raises(DatasetNotFoundError, match=ds.image_path(2).name):
        ds[2]
