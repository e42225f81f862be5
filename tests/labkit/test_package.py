"""The public surface of ``import labkit as lk``."""

import subprocess
import sys

import labkit as lk


def test_lazy_submodules_and_exports():
    assert lk.metrics.SegmentationMetric is lk.SegmentationMetric
    assert lk.train.TrainConfig is lk.TrainConfig and lk.fit is lk.train.fit
    for name in ("data", "metrics", "report", "train", "utils", "viz"):
        assert name in dir(lk)
        assert getattr(lk, name).__name__ == f"labkit.{name}"


def test_import_labkit_is_light():
    code = "import sys, labkit; print(sorted(m for m in ('torchvision','matplotlib','labkit.data') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lk.nope  # noqa: B018
