"""Model builders and scaffolds for the models a lab does NOT ask students to write.

The public API is this package: ``lk.models.fcn_resnet50(num_classes=3)``. Builders are typed and
keyword-only (see :data:`BUILDERS`) and return modules whose forward returns logits (detection keeps
torchvision's list of dicts). One architecture per file; names load on first use, so importing a
builder does not import the others' dependencies (transformers, torchvision detection):

* ``resnet``: ResNet-18 for CIFAR and the stem used by the hybrid ViT (lab 06);
* ``hybrid``: the ResNet-ViT hybrid (lab 06); ``hourglass``: stacked hourglass (lab 02);
* ``segformer``: the SegFormer scaffold around the students' parts and its configs (lab 03), with
  ``segformer_loading`` (Hugging Face checkpoints into it) and ``segformer_checks`` (equivalence
  checks against Hugging Face);
* ``fcn`` and ``segformer_hf``: torchvision FCN-ResNet50 and Hugging Face SegFormer with
  ``.encoder``/``.head`` and checkpoints from :mod:`labkit.weights` (lab 04);
* ``cityscapes``: pretrained Cityscapes segmenters behind one interface (lab 05);
* ``detection``: Faster R-CNN skeletons with torchvision's keys and a tiny CPU detector (lab 07).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute)
_BUILDERS = {
    "resnet18_cifar": ("resnet", "resnet18_cifar"),
    "resnet18_stem": ("resnet", "resnet18_stem"),
    "stacked_hourglass": ("hourglass", "stacked_hourglass"),
    "fcn_resnet50": ("fcn", "fcn_resnet50"),
    "hf_segformer": ("segformer_hf", "segformer"),
    "segformer_b0_cityscapes": ("cityscapes", "segformer_b0_cityscapes"),
    "segformer_b5_cityscapes": ("cityscapes", "segformer_b5_cityscapes"),
    "maskformer_r101_cityscapes": ("cityscapes", "maskformer_r101_cityscapes"),
    "fasterrcnn": ("detection", "fasterrcnn"),
    "tiny_fasterrcnn": ("detection", "tiny_fasterrcnn"),
}
_OTHERS = {  # scaffolds that take the students' parts, configs, and the tools that go with them
    "StackedHourglass": ("hourglass", "StackedHourglass"),
    "HybridViT": ("hybrid", "HybridViT"),
    "SegFormer": ("segformer", "SegFormer"),
    "MitConfig": ("segformer", "MitConfig"),
    "MIT_CONFIGS": ("segformer", "MIT_CONFIGS"),
    "DropPath": ("segformer", "DropPath"),
    "get_config": ("segformer", "get_config"),
    "to_hf_config": ("segformer", "to_hf_config"),
    "load_pretrained": ("segformer_loading", "load_pretrained"),
    "compare_with_hf": ("segformer_checks", "compare_with_hf"),
    "compare_part_with_hf": ("segformer_checks", "compare_part_with_hf"),
    "randomize_weights_": ("segformer_checks", "randomize_weights_"),
    "SEGMENTERS": ("cityscapes", "SEGMENTERS"),
    "cityscapes_segmenter": ("cityscapes", "cityscapes_segmenter"),
    "save_random_segmenter": ("cityscapes", "save_random_segmenter"),
}
_EXPORTS = {**_BUILDERS, **_OTHERS}
_SUBMODULES = ("cityscapes", "detection", "fcn", "hourglass", "hybrid", "resnet", "segformer",
               "segformer_checks", "segformer_hf", "segformer_loading")

BUILDERS: tuple[str, ...] = tuple(_BUILDERS)  # the typed keyword-only builders
__all__ = ["BUILDERS", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from labkit.models.cityscapes import (  # noqa: F401
        SEGMENTERS,
        cityscapes_segmenter,
        maskformer_r101_cityscapes,
        save_random_segmenter,
        segformer_b0_cityscapes,
        segformer_b5_cityscapes,
    )
    from labkit.models.detection import fasterrcnn, tiny_fasterrcnn  # noqa: F401
    from labkit.models.fcn import fcn_resnet50  # noqa: F401
    from labkit.models.hourglass import StackedHourglass, stacked_hourglass  # noqa: F401
    from labkit.models.hybrid import HybridViT  # noqa: F401
    from labkit.models.resnet import resnet18_cifar, resnet18_stem  # noqa: F401
    from labkit.models.segformer import (  # noqa: F401
        MIT_CONFIGS,
        DropPath,
        MitConfig,
        SegFormer,
        get_config,
        to_hf_config,
    )
    from labkit.models.segformer_checks import (  # noqa: F401
        compare_part_with_hf,
        compare_with_hf,
        randomize_weights_,
    )
    from labkit.models.segformer_hf import segformer as hf_segformer  # noqa: F401
    from labkit.models.segformer_loading import load_pretrained  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(f"labkit.models.{module}"), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"labkit.models.{name}")
    raise AttributeError(f"module 'labkit.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
