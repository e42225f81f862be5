"""Lab 01 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

import numpy as np

from labkit.checking.lab01 import CAM, SHIFT, SP, VGG, cam, shift, spurious, vgg
from labkit.checking.spec import Check, Fail, compare_number, integers, same, uniform


def seeded(got, ref):  # the same seed gives the same output, seed + 1 another one
    again, other = (all(np.array_equal(got.arrays.get(f"{tag}.{i}"), got.arrays[f"out.{i}"])
                        for i in (0, 2)) for tag in ("again", "other"))
    if not again or other:
        raise Fail("make_spurious: " + ("seed + 1 gives the same output: use `seed`." if again else
                   "the same seed gives another output: draw every random number from "
                   "torch.Generator().manual_seed(seed)."))


# digit_ids equal the labels (ref's out.1: the solution returns them) p + (1 - p) / 10 of the time
agree = lambda p: lambda got, ref: compare_number(float(np.mean(
    got.arrays["out.2"] == ref.arrays["out.1"])), p + (1 - p) / 10,
    "make_spurious: the share of digits equal to the label", rtol=0, atol=0.04)
patch = same("out.0", "make_spurious's images (p=1, one digit per class)", rtol=1e-4, atol=1e-5,
             hint="(each corner: torch.maximum(corner, the digit of class digit_ids[i] resized "
             "by F.interpolate(bilinear, align_corners=False, antialias=False)))")
black = np.random.default_rng(1).random((3, 1, 16, 16), np.float32)
black[1] = 0  # a black image: a constant map
rgb = dict(in_channels=3, num_classes=5)
HIDDEN = [*(Check(n, VGG, title, 1, *steps) for n, title, *steps in (
    ("1.5", "skip=False (no shortcuts)", vgg(2, 32, "maxpool", skip=False)),
    ("1.6", "norm=False (no BatchNorm, convolutions with biases)",
     vgg(2, 32, "maxpool", norm=False)),
    ("1.7", "act=None (no activation modules), with stride", vgg(2, 16, "stride", act=None)),
    ("1.8", 'act="gelu" uses nn.GELU and no nn.ReLU', vgg(2, 16, "maxpool", act="gelu")),
    ("1.9", "blocks=1 width=8, blocks=4 width=16, width=64", vgg(1, 8, "maxpool"),
     vgg(4, 16, "stride"), vgg(1, 64, "maxpool")),
    ("1.10", "stride without skip and without BatchNorm; 3 input channels, 5 classes",
     vgg(1, 8, "stride", skip=False, norm=False), vgg(1, 8, "maxpool", **rgb),
     vgg(1, 8, "maxpool", (2, 28, 28), **rgb)),
    ("1.11", "32x32 inputs with strided downsampling give 8x8 feature maps",
     vgg(2, 32, "stride", (3, 32, 32))))),
    Check("1.12", VGG, "an unknown activation raises ValueError", 1, vgg(1, 8, "maxpool",
          act="tanh").call.raises("ValueError", "VGGResNet(act='tanh', ...)"), needs=("1.1", "1.3"),
          ),
    Check("2.2", CAM, "a (B,) tensor of classes, non-square 20x24 images", 2,
          cam(uniform((5, 1, 20, 24)), integers((5,), 0, 10))),
    Check("2.3", CAM, "a constant map becomes all zeros (no NaN)", 1, cam(black, 7, False, same(
        "training", "model.training after the call", hint="(leave the model's mode alone)"))),
    Check("3.4", SP, "p=0 gives digits that match the label by chance (about 10%, N=2000)", 1,
          spurious(2000, 6, 20, agree(0.0), p=0.0, seed=11, size=4)),
    Check("3.5", SP, "p=0.8 gives an agreement of about 0.82 (N=2000)", 1,
          spurious(2000, 6, 20, agree(0.8), p=0.8, seed=12, size=4)),
    Check("3.6", SP, "the same seed gives the same output, another seed a different one", 1,
          spurious(12, 16, 20, seeded, p=0.8), spurious(2000, 6, 20, seeded, p=0.0, seed=11,
                                                           size=4)),
    Check("3.7", SP, "each corner is max(original, a resized digit of class digit_ids[i])", 2,
          spurious(12, 16, 10, patch, p=1.0), spurious(12, 28, 10, patch, p=1.0, seed=5)),
    Check("3.8", SP, 'corner="bottom_right" with size 8 and "top_right" with size 12', 1,
          spurious(12, 16, 10, patch, p=1.0, seed=2, size=8, corner="bottom_right"),
          spurious(12, 16, 10, patch, p=1.0, seed=3, size=12, corner="top_right")),
    Check("3.9", SP, "an unknown corner raises ValueError", 1, spurious(12, 16, 20, corner="centre",
          p=0.5).call.raises("ValueError", "make_spurious(..., corner='centre')"),
          needs=("3.1", "3.2")),
    Check("4.3", SHIFT, "dx=-1, dy=5; 3-channel images", 1, shift(-1, 5), shift(3, 2, (2, 3, 5, 7)),
          ),
    Check("4.4", SHIFT, "shifts of the image size or more give zeros; one pixel left at the edge",
          1, shift(12, 0), shift(0, -20), shift(9, -7)),
]
