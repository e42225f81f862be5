"""Tests for labkit/utils.py."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from labkit.utils import count_flops, count_params, get_device, seed_everything, smoke_mode


def _draw():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_seed_everything_reproducible():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    seed_everything(124)
    c = _draw()
    assert a == b
    assert all(x != y for x, y in zip(a, c))
    seed_everything(2**40)  # large seeds are accepted (NumPy gets seed mod 2**32)


def test_seed_everything_deterministic_flag():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("", False),
        ("no", False),
    ],
)
def test_smoke_mode_parsing(monkeypatch, value, expected):
    monkeypatch.setenv("LABKIT_SMOKE", value)
    assert smoke_mode() is expected


def test_smoke_mode_unset(monkeypatch):
    monkeypatch.delenv("LABKIT_SMOKE", raising=False)
    assert smoke_mode() is False


def test_count_params():
    layer = nn.Linear(10, 20)
    assert count_params(layer) == 10 * 20 + 20
    layer.bias.requires_grad_(False)
    assert count_params(layer, trainable_only=True) == 200
    assert count_params(layer) == 220
    conv = nn.Conv2d(3, 8, 3)
    assert count_params(conv) == 8 * 3 * 3 * 3 + 8


def test_count_flops_linear():
    model = nn.Linear(10, 20)
    model.train()
    assert count_flops(model, torch.randn(4, 10)) == 2 * 4 * 10 * 20
    assert model.training  # mode restored
    assert count_flops(model, [torch.randn(4, 10)]) == 1600
    model.eval()
    count_flops(model, torch.randn(1, 10))
    assert not model.training


def test_get_device():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device().type in {"cpu", "cuda", "mps"}


def test_run_profile(monkeypatch):
    import pytest

    from labkit.utils import run_profile

    monkeypatch.delenv("LABKIT_SMOKE", raising=False)
    monkeypatch.delenv("LABKIT_PROFILE", raising=False)
    assert run_profile() == "full"
    monkeypatch.setenv("LABKIT_PROFILE", "cpu")
    assert run_profile() == "cpu"
    monkeypatch.setenv("LABKIT_SMOKE", "1")
    assert run_profile() == "smoke"
    monkeypatch.delenv("LABKIT_SMOKE")
    monkeypatch.setenv("LABKIT_PROFILE", "gpu")
    with pytest.raises(ValueError, match="expected one of smoke, cpu, full"):
        run_profile()


def test_describe_hardware_names_cpu_cores_threads(monkeypatch):
    import os

    import torch

    from labkit.utils import cpu_model, describe_hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = describe_hardware()
    assert text.startswith(cpu_model())
    assert f"{os.cpu_count()} cores" in text and f"{torch.get_num_threads()} torch threads" in text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    assert describe_hardware() == "Tesla T4"
