"""labkit.data.stats: pixel counts, class frequencies and loss weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from labkit.data import PetsSegmentation, write_fake_pets
from labkit.data.stats import class_frequencies, class_pixel_counts, class_weights


def _pairs():
    m1 = torch.tensor([[0, 0, 1], [255, 2, 2]])
    m2 = torch.tensor([[1, 1, 1], [1, 255, 0]])
    return [(torch.zeros(3, 2, 3), m1), (torch.zeros(3, 2, 3), m2)]


def test_counts_and_frequencies_leave_ignored_pixels_out():
    counts = class_pixel_counts(_pairs(), 3, progress=False)
    assert counts.tolist() == [3, 5, 2] and counts.dtype == np.int64
    freqs = class_frequencies(_pairs(), 3, progress=False)
    np.testing.assert_allclose(freqs, [0.3, 0.5, 0.2])
    # ignore_index=None counts everything: 255 is then out of range
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        class_frequencies(_pairs(), 3, ignore_index=None, progress=False)


def test_accepts_loaders_bare_masks_and_arrays():
    loader = DataLoader(_pairs(), batch_size=2)
    np.testing.assert_allclose(class_frequencies(loader, 4, progress=False), [0.3, 0.5, 0.2, 0.0])
    masks = [m.numpy() for _, m in _pairs()]
    assert class_pixel_counts(masks, 3, progress=False).tolist() == [3, 5, 2]
    with pytest.raises(TypeError, match="integer class ids"):
        class_pixel_counts([torch.zeros(2, 2)], 3, progress=False)


def test_all_ignored_gives_zero_frequencies():
    data = [torch.full((4, 4), 255)]
    assert class_frequencies(data, 2, progress=False).tolist() == [0.0, 0.0]


def test_class_weights_inverse_and_median():
    f = np.array([0.6, 0.3, 0.1, 0.0])
    raw = class_weights(f, "inverse", normalize=False)
    np.testing.assert_allclose(raw.numpy(), [1 / 0.6, 1 / 0.3, 10.0, 0.0], rtol=1e-6)
    w = class_weights(f, "inverse")
    assert w.dtype == torch.float32
    assert abs(float((w.double() * torch.from_numpy(f)).sum()) - 1.0) < 1e-6  # mean weight 1
    med = class_weights(f, "median", normalize=False)  # median of (0.6, 0.3, 0.1) = 0.3
    np.testing.assert_allclose(med.numpy(), [0.5, 1.0, 3.0, 0.0], rtol=1e-6)
    assert float(class_weights(f, max_weight=2.0).max()) == 2.0
    rare_first = class_weights([0.1, 0.9])
    assert rare_first[0] > rare_first[1]


def test_class_weights_rejects_bad_input():
    with pytest.raises(ValueError, match="scheme"):
        class_weights([0.5, 0.5], "sqrt")
    with pytest.raises(ValueError, match="every frequency is 0"):
        class_weights([0.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        class_weights([-0.1, 1.1])


def test_on_fake_pets(tmp_path):
    root = write_fake_pets(tmp_path, n=6)
    ds = PetsSegmentation(root, split="trainval")
    freqs = class_frequencies(ds, ds.num_classes, progress=False)
    assert freqs.shape == (3,) and abs(freqs.sum() - 1) < 1e-9
    assert freqs[1] > freqs[2] > 0  # background dominates, the border is the rare class
