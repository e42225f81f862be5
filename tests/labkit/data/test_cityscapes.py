"""Tests for labkit/data/cityscapes.py: the label table, labelId -> trainId, the loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from labkit.data import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABELS,
    CITYSCAPES_PALETTE,
    CityscapesSegmentation,
    CorruptFileError,
    DatasetNotFoundError,
    label_to_train_id,
    write_fake_cityscapes,
)


@pytest.fixture(scope="module")
def cs_root(tmp_path_factory):
    return write_fake_cityscapes(tmp_path_factory.mktemp("cityscapes"), split="val", n=4)


def test_label_table_matches_torchvision():
    tv = torchvision.datasets.Cityscapes.classes
    assert len(tv) == len(CITYSCAPES_LABELS)
    for ours, theirs in zip(CITYSCAPES_LABELS, tv):
        assert (ours.name, ours.id, ours.category, ours.color) == (
            theirs.name, theirs.id, theirs.category, theirs.color,
        )  # fmt: skip
        assert ours.train_id == theirs.train_id
        assert (ours.has_instances, ours.ignore_in_eval) == (
            theirs.has_instances,
            theirs.ignore_in_eval,
        )


def test_train_classes_and_palette():
    assert len(CITYSCAPES_CLASSES) == 19 and len(CITYSCAPES_PALETTE) == 19
    assert CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert CITYSCAPES_CLASSES[8:10] == ("vegetation", "terrain")
    assert CITYSCAPES_PALETTE[0] == (128, 64, 128) and CITYSCAPES_PALETTE[10] == (70, 130, 180)


def test_label_to_train_id():
    ids = np.array([[0, 7, 8, 9], [26, 33, 34, 255]], dtype=np.uint8)
    expected = [[255, 0, 1, 255], [13, 18, 255, 255]]
    assert label_to_train_id(ids).tolist() == expected
    t = label_to_train_id(torch.from_numpy(ids.astype(np.int64)))
    assert t.dtype == torch.int64 and t.tolist() == expected
    all_ids = label_to_train_id(np.arange(256))
    assert sorted(set(all_ids.tolist())) == [*range(19), 255]


def test_fake_cityscapes_items(cs_root):
    ds = CityscapesSegmentation(cs_root, split="val")
    assert len(ds) == 4 and ds.num_classes == 19 and ds.ignore_index == 255
    names = [ds.image_path(i).name for i in range(len(ds))]
    assert names == sorted(names)
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.shape == (3, 64, 128) and image.dtype == torch.float32
        assert mask.shape == (64, 128) and mask.dtype == torch.int64
        values = set(mask.unique().tolist())
        assert values <= {*range(19), 255} and 255 in values and {0, 1, 10, 13} <= values
        label_ids = np.asarray(Image.open(ds.mask_path(i)))
        assert torch.equal(mask, torch.from_numpy(label_to_train_id(label_ids).astype(np.int64)))
    assert len(CityscapesSegmentation(cs_root, split="val", subset=3)) == 3


def test_missing_cityscapes_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        CityscapesSegmentation()
    msg = str(info.value)
    assert "Cityscapes" in msg and str(tmp_path / "cityscapes") in msg
    assert "cityscapes-dataset.com" in msg
    assert "gtFine_trainvaltest.zip" in msg and "leftImg8bit_trainvaltest.zip" in msg
    assert "leftImg8bit/<split>/<city>/" in msg and "_gtFine_labelIds.png" in msg
    with pytest.raises(DatasetNotFoundError, match="gtFine"):
        root = write_fake_cityscapes(tmp_path / "only_val", split="val", n=1)
        CityscapesSegmentation(root, split="train")


def test_missing_label_file_and_corrupt_image(tmp_path):
    root = write_fake_cityscapes(tmp_path, n=2)
    ds = CityscapesSegmentation(root)
    ds.mask_path(0).unlink()
    with pytest.raises(DatasetNotFoundError, match="labelIds"):
        ds[0]
    ds.image_path(1).write_bytes(ds.image_path(1).read_bytes()[:100])
    with pytest.raises(CorruptFileError, match=ds.image_path(1).name):
        ds[1]


def test_real_cityscapes_frame_matches_label_train_ids(real_cityscapes_root):
    ds = CityscapesSegmentation(real_cityscapes_root, split="val")
    assert len(ds) == 1
    image, mask = ds[0]
    assert image.shape == (3, 128, 256) and image.dtype == torch.float32
    assert mask.shape == (128, 256) and mask.dtype == torch.int64
    train_ids_file = str(ds.mask_path(0)).replace("_labelIds.png", "_labelTrainIds.png")
    reference = np.asarray(Image.open(train_ids_file)).astype(np.int64)
    label_ids = np.asarray(Image.open(ds.mask_path(0)))
    ours = mask.numpy()
    values = set(np.unique(ours).tolist())
    assert values <= {*range(19), 255} and len(values) > 5
    # The sample's labelIds and labelTrainIds were downscaled separately, so ~0.2% of pixels
    # (on region borders) disagree. Every labelId's majority trainId must match exactly,
    # and every disagreeing pixel must have the reference value within its 5x5 neighbourhood.
    for label_id in np.unique(label_ids):
        ref_values, counts = np.unique(reference[label_ids == label_id], return_counts=True)
        assert ref_values[counts.argmax()] == label_to_train_id(np.array([label_id]))[0], label_id
    assert (ours == reference).mean() > 0.995
    h, w = ours.shape
    padded = np.pad(ours, 2, mode="edge")
    near = np.zeros_like(ours, dtype=bool)
    for dy in range(5):
        for dx in range(5):
            near |= padded[dy : dy + h, dx : dx + w] == reference
    assert near.all()
