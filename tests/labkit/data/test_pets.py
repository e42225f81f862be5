"""Tests for labkit/data/pets.py on the fake fixture and on the real Oxford-IIIT Pet sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from labkit.data import (
    PETS_CLASSES,
    CorruptFileError,
    DatasetNotFoundError,
    PetsSegmentation,
    Resize,
    write_fake_pets,
)
from labkit.data.pets import trimap_to_mask
from labkit.data.root import open_label_image, open_rgb


@pytest.fixture(scope="module")
def pets_root(tmp_path_factory):
    return write_fake_pets(tmp_path_factory.mktemp("pets"), n=12)


def test_trimap_to_mask():
    trimap = np.array([[1, 2, 3], [0, 4, 2]], dtype=np.uint8)
    assert np.asarray(trimap_to_mask(trimap)).tolist() == [[0, 1, 2], [255, 255, 1]]
    assert PETS_CLASSES == ("pet", "background", "border")


def test_fake_pets_items(pets_root):
    ds = PetsSegmentation(pets_root, split="trainval")
    assert len(ds) == 6 and len(PetsSegmentation(pets_root, split="test")) == 6
    assert ds.num_classes == 3 and ds.breeds == ["Abyssinian", "American Bulldog", "Bengal"]
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 3
        assert mask.dtype == torch.int64 and mask.shape == image.shape[1:]
        assert set(mask.unique().tolist()) == {0, 1, 2}
        assert 0.0 <= image.min() and image.max() <= 1.0


def test_fake_pets_quirky_files_load_as_rgb(pets_root):
    ds = PetsSegmentation(pets_root, transforms=None)
    formats = {}
    for i in range(len(ds)):
        with Image.open(ds.image_path(i)) as im:
            formats[ds.image_path(i).name] = (im.format, im.mode)
        image, mask = ds[i]
        assert image.mode == "RGB" and mask.mode == "L" and image.size == mask.size
    assert formats["Abyssinian_1.jpg"][0] == "GIF"
    assert formats["american_bulldog_1.jpg"] == ("PNG", "RGBA")


def test_subset_and_transforms(pets_root):
    ds = PetsSegmentation(pets_root, subset=2, transforms=Resize((16, 20)))
    assert len(ds) == 2
    image, mask = ds[1]
    assert image.size == (20, 16) and set(np.unique(np.asarray(mask))) <= {0, 1, 2}
    with pytest.raises(IndexError):
        ds[2]
    full = PetsSegmentation(pets_root)
    assert torch.equal(full[1][1], PetsSegmentation(pets_root, subset=2)[1][1])


def test_missing_dataset_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        PetsSegmentation(tmp_path)
    msg = str(info.value)
    assert "Oxford-IIIT Pet" in msg and str(tmp_path) in msg
    assert "oxford-iiit-pet/" in msg and "annotations/trimaps" in msg and "trainval.txt" in msg
    assert "download=True" in msg and "LABKIT_DATA" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_file_and_corrupt_file(tmp_path):
    root = write_fake_pets(tmp_path, n=6)
    ds = PetsSegmentation(root)
    ds.image_path(1).write_bytes(ds.image_path(1).read_bytes()[:200])
    with pytest.raises(CorruptFileError, match=ds.image_path(1).name):
        ds[1]
    ds.mask_path(2).unlink()
    with pytest.raises(DatasetNotFoundError, match=ds.mask_path(2).name):
        ds[2]


def test_real_pets(real_pets_root):
    ds = PetsSegmentation(real_pets_root, split="trainval")
    assert len(ds) == 300 and len(PetsSegmentation(real_pets_root, split="test")) == 298
    assert ds.breeds == ["Abyssinian", "American Bulldog", "Bengal"]
    for i in range(0, len(ds), 15):  # a spread of samples, decoded fully
        image, mask = ds[i]
        assert image.dtype == torch.float32 and image.shape[0] == 3
        assert mask.dtype == torch.int64 and mask.shape == image.shape[1:]
        assert set(mask.unique().tolist()) <= {0, 1, 2}


def test_real_pets_all_trimaps_map_to_three_classes(real_pets_root):
    for split in ("trainval", "test"):
        ds = PetsSegmentation(real_pets_root, split=split)
        for i in range(len(ds)):
            with Image.open(ds.mask_path(i)) as im:
                values = set(np.unique(np.asarray(trimap_to_mask(im))).tolist())
            assert values <= {0, 1, 2}, ds.mask_path(i)


def test_real_pets_quirks_load_as_rgb(real_pets_root):
    # Abyssinian_5.jpg (an RGBA PNG) is in test.txt; Abyssinian_34.jpg (a GIF) is in no split
    # list, so it is read with the loader's own readers.
    ds = PetsSegmentation(real_pets_root, split="test", transforms=None)
    names = {ds.image_path(i).name: i for i in range(len(ds))}
    index = names["Abyssinian_5.jpg"]
    with Image.open(ds.image_path(index)) as raw:
        assert (raw.format, raw.mode) == ("PNG", "RGBA")
    image, mask = ds[index]
    assert image.mode == "RGB" and image.size == mask.size
    base = real_pets_root / "oxford-iiit-pet"
    gif = base / "images" / "Abyssinian_34.jpg"
    with Image.open(gif) as raw:
        assert raw.format == "GIF"
    image = open_rgb(gif)
    mask = trimap_to_mask(open_label_image(base / "annotations" / "trimaps" / "Abyssinian_34.png"))
    assert image.mode == "RGB" and image.size == mask.size
    assert set(np.unique(np.asarray(mask)).tolist()) == {1}  # its trimap is all background


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    real_class = torchvision.datasets.OxfordIIITPet
    calls = []

    def fake_tv(root, split, download=False, **kwargs):
        calls.append(download)
        if download:
            write_fake_pets(root, n=6)
        return real_class(root, split=split, **kwargs)

    monkeypatch.setattr(torchvision.datasets, "OxfordIIITPet", fake_tv)
    ds = PetsSegmentation(tmp_path, split="test", download=True)
    assert len(ds) == 3 and calls == [True]  # torchvision downloads; labkit reads the files


@pytest.mark.parametrize("split", ["trainval", "test"])
def test_files_and_breeds_as_torchvision_reads_them(tmp_path, split):
    write_fake_pets(tmp_path, n=9)
    ds = PetsSegmentation(tmp_path, split=split)
    tv = torchvision.datasets.OxfordIIITPet(str(tmp_path), split=split, target_types="segmentation")
    assert [ds.image_path(i) for i in range(len(ds))] == [Path(p) for p in tv._images]
    assert [ds.mask_path(i) for i in range(len(ds))] == [Path(p) for p in tv._segs]
    assert ds.breeds == tv.classes and ds.breed_labels == tv._labels
