"""labkit.schedules: linear warm-up then cosine decay, per optimizer step."""

import math

import pytest
import torch

from labkit.schedules import warmup_cosine, warmup_cosine_factor


def _lrs(steps, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = warmup_cosine(opt, **kwargs)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_values_at_known_steps():
    lrs = _lrs(130, warmup_steps=10, total_steps=110)
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(1.0) and lrs[10] == pytest.approx(2.0)
    assert lrs[60] == pytest.approx(1.0)  # half-way through the cosine
    assert lrs[35] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lrs[110] == pytest.approx(0.0, abs=1e-12) and lrs[129] == pytest.approx(0.0, abs=1e-12)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:110], lrs[11:111], strict=True))  # cosine falls


def test_min_factor_and_no_warmup():
    lrs = _lrs(60, warmup_steps=0, total_steps=50, min_factor=0.1)
    assert lrs[0] == pytest.approx(2.0)
    assert lrs[25] == pytest.approx(2.0 * 0.55) and lrs[55] == pytest.approx(0.2)
    assert warmup_cosine_factor(3, warmup_steps=4, total_steps=8) == 0.75


def test_invalid_arguments():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError):
        warmup_cosine(opt, warmup_steps=-1, total_steps=10)
    with pytest.raises(ValueError):
        warmup_cosine(opt, warmup_steps=1, total_steps=0)
    with pytest.raises(ValueError):
        warmup_cosine(opt, warmup_steps=1, total_steps=10, min_factor=2.0)
