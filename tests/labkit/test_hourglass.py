"""labkit.models.hourglass: shapes for any input size, the skip flags, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit.models.hourglass import Hourglass, StackedHourglass, stacked_hourglass


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("size", [(32, 32), (37, 53), (9, 15)])
def test_output_shape_any_size(size):
    model = stacked_hourglass(num_classes=3, width=8, depth=2, stacks=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size)


def test_return_all_and_gradients():
    torch.manual_seed(0)
    model = StackedHourglass(in_channels=1, num_classes=4, width=4, depth=2, stacks=3)
    outs = model(torch.randn(2, 1, 16, 16), return_all=True)
    assert len(outs) == 3 and all(o.shape == (2, 4, 16, 16) for o in outs)
    sum(o.square().mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_skip_flags_change_structure():
    base = stacked_hourglass(num_classes=3, width=8, depth=2, stacks=2)
    no_intra = stacked_hourglass(num_classes=3, width=8, depth=2, stacks=2, intra_skip=False)
    no_inter = stacked_hourglass(num_classes=3, width=8, depth=2, stacks=2, inter_skip=False)
    block = 2 * (8 * 8 * 9 + 2 * 8)  # two conv3x3 without bias + BatchNorm
    assert _params(base) - _params(no_intra) == 2 * 2 * block  # one skip block per level per stack
    assert _params(base) - _params(no_inter) == (8 * 8 + 8) + (3 * 8 + 8)  # the two 1x1 remaps
    no_norm = stacked_hourglass(num_classes=3, width=8, depth=2, norm=False, act=None)
    kinds = {type(m) for m in no_norm.modules()}
    assert nn.BatchNorm2d not in kinds and nn.ReLU not in kinds
    assert nn.GELU in {type(m) for m in stacked_hourglass(num_classes=3, act="gelu").modules()}


def test_without_intra_skip_output_is_blocky_at_the_coarsest_scale():
    # without any skip, information passes through the 2**depth-down-sampled bottleneck only:
    # an input change confined to one 4x4 cell changes the output only near that cell's block
    torch.manual_seed(0)
    hg = Hourglass(4, 2, intra_skip=False, norm=False).eval()
    x = torch.randn(1, 4, 16, 16)
    y = x.clone()
    y[..., 0:4, 0:4] += 1.0
    with torch.no_grad():
        diff = (hg(x) - hg(y)).abs().sum(1)[0]
    assert diff[12:, 12:].max() == 0  # far away: untouched


def test_invalid_arguments():
    with pytest.raises(ValueError, match="act"):
        stacked_hourglass(num_classes=3, act="tanh")
    with pytest.raises(ValueError, match="depth"):
        Hourglass(8, 0)
