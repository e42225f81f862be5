"""labkit.models: the public API (typed keyword-only builders, lazy names) and every builder run once."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest
import torch

import labkit as lk
from labkit import models


def test_all_names_resolve_and_builders_are_typed_keyword_only():
    for name in models.__all__:
        assert getattr(lk.models, name) is not None, name
    for name in models.BUILDERS:
        builder = getattr(models, name)
        sig = inspect.signature(builder)
        assert all(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values()), name
        assert all(p.annotation is not p.empty for p in sig.parameters.values()), name
        assert sig.return_annotation is not sig.empty, name
        first = builder.__doc__.strip().splitlines()[0]
        assert "->" in first and re.search(r"\(\w[\w &.]* (et al\.|\w+) ?\d{4}\)", first), first


def test_importing_a_builder_does_not_import_transformers():
    code = ("import sys; from labkit.models import resnet18_cifar, StackedHourglass; "
            "print('transformers' in sys.modules, 'labkit.models.detection' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_name():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        models.nope  # noqa: B018


@torch.no_grad()
def test_every_builder_on_a_tiny_input():
    """Each builder once, with its smallest settings, on a tiny input: the documented shapes."""
    x = torch.rand(1, 3, 32, 32)
    assert models.resnet18_cifar(num_classes=7)(x).shape == (1, 7)
    assert models.resnet18_stem(stages=2)(x).shape[0] == 1
    assert models.stacked_hourglass(num_classes=3, width=8, depth=2)(x).shape == (1, 3, 32, 32)
    assert models.fcn_resnet50(num_classes=2).eval()(x).shape == (1, 2, 32, 32)
    tiny = models.get_config("b0").replace(name="tiny", hidden_sizes=(8, 16, 24, 32),
                                           heads=(1, 1, 1, 1), decoder_dim=16)
    assert models.hf_segformer(variant=tiny, num_classes=3).eval()(x).shape == (1, 3, 32, 32)
    for name in ("segformer_b0_cityscapes", "segformer_b5_cityscapes", "maskformer_r101_cityscapes"):
        assert "pretrained" in inspect.signature(getattr(models, name)).parameters  # full size: not run
    det = models.tiny_fasterrcnn(num_classes=3, image_size=64).eval()
    out = det([torch.rand(3, 64, 64)])
    assert set(out[0]) == {"boxes", "labels", "scores"}
    assert models.fasterrcnn(arch="mobilenet_v3_fpn", num_classes=3).roi_heads is not None
