"""Tests for labkit/data/root.py: data root resolution, subsets, error messages, file readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data import root as root_mod
from labkit.data.root import (
    CorruptFileError,
    DatasetNotFoundError,
    data_root,
    not_found,
    open_label_image,
    open_rgb,
    resolve_root,
    smoke_subset,
    subset_length,
)


def test_data_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert resolve_root(None, "cityscapes") == tmp_path / "cityscapes"
    assert resolve_root(tmp_path / "x") == tmp_path / "x"


def test_data_root_on_colab(monkeypatch):
    monkeypatch.delenv("LABKIT_DATA", raising=False)
    monkeypatch.setattr(root_mod, "on_colab", lambda: True)
    assert data_root() == Path("/content/data")


def test_data_root_default_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LABKIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(root_mod, "on_colab", lambda: False)
    assert data_root() == tmp_path / ".cache" / "labkit" / "data"


def test_dataset_not_found_is_file_not_found():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    err = not_found("Toy", searched=Path("/x"), layout="toy/\n    a.txt\n", fixes=["do this"])
    msg = str(err)
    assert "Toy not found" in msg and "/x" in msg and "toy/" in msg and "a.txt" in msg
    assert "do this" in msg and "LABKIT_DATA" in msg


def test_smoke_subset(monkeypatch):
    monkeypatch.delenv("LABKIT_SMOKE", raising=False)
    assert smoke_subset(None) is None and smoke_subset(500, 8) == 500
    monkeypatch.setenv("LABKIT_SMOKE", "1")
    assert smoke_subset(None, 8) == 8 and smoke_subset(4, 8) == 4


def test_subset_length():
    assert subset_length(10, None) == 10
    assert subset_length(10, 3) == 3
    assert subset_length(2, 3) == 2
    with pytest.raises(ValueError):
        subset_length(10, -1)


def test_open_rgb_converts_any_mode(tmp_path):
    rgba = Image.fromarray(np.full((4, 5, 4), 200, dtype=np.uint8))
    rgba.save(tmp_path / "a.jpg", format="PNG")  # wrong extension, as in the real Pets data
    Image.fromarray(np.zeros((4, 5), np.uint8)).convert("P").save(tmp_path / "b.jpg", format="GIF")
    for name in ("a.jpg", "b.jpg"):
        im = open_rgb(tmp_path / name)
        assert im.mode == "RGB" and im.size == (5, 4)


def test_truncated_image_names_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptFileError, match="broken.jpg"):
        open_rgb(path)
    with pytest.raises(CorruptFileError, match="broken.jpg"):
        open_label_image(path)
    path.write_bytes(b"not an image")
    with pytest.raises(CorruptFileError, match="broken.jpg"):
        open_rgb(path)


def test_load_or_fixtures_loads_the_real_folder_first(tmp_path):
    from labkit.data import PetsSegmentation, load_or_fixtures, write_fake_pets

    write_fake_pets(tmp_path, n=4, seed=0)
    written = []
    ds, folder = load_or_fixtures(lambda r: PetsSegmentation(r, split="trainval"),
                                  written.append, fallback=True, name="pets", root=tmp_path)
    assert folder is None and written == [] and len(ds) > 0


def test_load_or_fixtures_writes_stand_ins_only_when_allowed(tmp_path):
    from labkit.data import (
        DatasetNotFoundError,
        PetsSegmentation,
        load_or_fixtures,
        write_fake_pets,
    )

    def load(r):
        return PetsSegmentation(r, split="trainval")

    with pytest.raises(DatasetNotFoundError, match="Pet"):
        load_or_fixtures(load, lambda f: write_fake_pets(f, n=4), fallback=False, name="pets",
                         root=tmp_path / "empty")
    ds, folder = load_or_fixtures(load, lambda f: write_fake_pets(f, n=4, seed=0),
                                  fallback=True, name="pets", root=tmp_path / "empty")
    assert folder is not None and folder.is_dir() and "pets" in folder.name
    assert len(ds) == len(PetsSegmentation(folder, split="trainval"))
