"""Stacked hourglass network for segmentation, with switchable intra- and inter-stack skips.

Newell, Yang & Deng, "Stacked Hourglass Networks for Human Pose Estimation", ECCV 2016,
https://arxiv.org/abs/1603.06937. Simplified for the lab 02 ablation: constant width, blocks of
two conv3x3 [BN] [act], max-pool down, nearest-neighbour up, a 1x1 classifier after every stack.

* intra-stack skip (``intra_skip``): at every resolution the hourglass adds a branch that keeps
  the features of that resolution and sums them with the up-sampled output (the U-Net idea with
  a sum instead of a concatenation); without it the hourglass is a plain encoder-decoder.
* inter-stack skip (``inter_skip``): the input of stack s+1 is its own input plus 1x1 remaps of
  stack s's features and prediction (a residual connection across stacks); without it stack s+1
  only sees stack s's features.

Inputs of any size: padded (zeros, bottom/right) to a multiple of ``2**depth`` and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Hourglass", "StackedHourglass", "stacked_hourglass"]

ACTIVATIONS = ("relu", "gelu", None)


def _block(cin: int, cout: int, *, norm: bool, act: str | None) -> nn.Sequential:
    """Two conv3x3 (bias only without norm) each followed by [BatchNorm] [activation]."""
    layers: list[nn.Module] = []
    for i in range(2):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "gelu":
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels on (B,C,H,W) features, H and W multiples of 2**depth."""

    def __init__(
        self, width: int, depth: int, *, intra_skip: bool = True, norm: bool = True,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.skip = _block(width, width, norm=norm, act=act) if intra_skip else None
        self.down = _block(width, width, norm=norm, act=act)
        self.inner: nn.Module = (
            Hourglass(width, depth - 1, intra_skip=intra_skip, norm=norm, act=act)
            if depth > 1 else _block(width, width, norm=norm, act=act)
        )
        self.up = _block(width, width, norm=norm, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))  # (B,C,H/2,W/2)
        out = F.interpolate(low, scale_factor=2.0, mode="nearest")  # (B,C,H,W)
        return out + self.skip(x) if self.skip is not None else out


class StackedHourglass(nn.Module):
    """Stacked hourglass: images (B,C,H,W) -> logits (B,num_classes,H,W) of the last stack."""

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        width: int = 32,
        depth: int = 3,
        stacks: int = 2,
        intra_skip: bool = True,
        inter_skip: bool = True,
        norm: bool = True,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        if stacks < 1 or depth < 1 or width < 1:
            raise ValueError(
                f"stacks, depth and width must be >= 1, got {stacks}, {depth}, {width}")
        self.depth = depth
        self.inter_skip = inter_skip
        self.stem = _block(in_channels, width, norm=norm, act=act)
        self.hourglasses = nn.ModuleList(
            Hourglass(width, depth, intra_skip=intra_skip, norm=norm, act=act)
            for _ in range(stacks)
        )
        self.features = nn.ModuleList(
            _block(width, width, norm=norm, act=act) for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(width, num_classes, 1) for _ in range(stacks))
        n_remap = stacks - 1 if inter_skip else 0
        self.remap_features = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(n_remap))
        self.remap_preds = nn.ModuleList(nn.Conv2d(num_classes, width, 1) for _ in range(n_remap))

    def forward(self, images: torch.Tensor, *, return_all: bool = False):
        """Logits (B,K,H,W) of the last stack, or a list with every stack's (``return_all``)."""
        h, w = images.shape[-2:]
        m = 2**self.depth
        x = F.pad(images, (0, (-w) % m, 0, (-h) % m))  # (B,C,H',W'), multiples of 2**depth
        x = self.stem(x)
        outputs = []
        stages = zip(self.hourglasses, self.features, self.heads, strict=True)
        for s, (hg, feat, head) in enumerate(stages):
            y = feat(hg(x))
            logits = head(y)
            outputs.append(logits[..., :h, :w])
            if s < len(self.hourglasses) - 1:
                if self.inter_skip:
                    x = x + self.remap_features[s](y) + self.remap_preds[s](logits)
                else:
                    x = y
        return outputs if return_all else outputs[-1]


def stacked_hourglass(
    *,
    in_channels: int = 3,
    num_classes: int,
    width: int = 32,
    depth: int = 3,
    stacks: int = 2,
    intra_skip: bool = True,
    inter_skip: bool = True,
    norm: bool = True,
    act: str | None = "relu",
) -> StackedHourglass:
    """Stacked hourglass (Newell et al. 2016): images (B,in_channels,H,W) -> logits (B,num_classes,H,W).

    Builds a :class:`StackedHourglass`; the module docstring explains the flags."""
    return StackedHourglass(
        in_channels=in_channels, num_classes=num_classes, width=width, depth=depth, stacks=stacks,
        intra_skip=intra_skip, inter_skip=inter_skip, norm=norm, act=act,
    )
