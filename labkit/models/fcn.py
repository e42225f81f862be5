"""FCN-ResNet50 (torchvision) as a segmenter whose forward returns logits, with named parts.

Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015,
https://arxiv.org/abs/1411.4038; torchvision's ``fcn_resnet50`` (dilated ResNet-50, output stride 8).

:class:`FCNSegmenter` *is* torchvision's ``FCN`` (same modules, same state-dict keys, so any
torchvision checkpoint loads unchanged) with two differences: ``forward`` returns the ``"out"``
logits tensor ``(B,K,H,W)`` instead of a dict, and the model names its parts the way every lab-04
model does: ``model.encoder`` (= ``model.backbone``) and ``model.head`` (= ``model.classifier``).
The auxiliary head is not built (``aux_classifier`` is None).
"""

from __future__ import annotations

import os
from typing import Literal

import torch
from torch import nn
from torchvision.models.segmentation import fcn_resnet50 as _tv_fcn_resnet50
from torchvision.models.segmentation.fcn import FCN

from labkit import weights as W

__all__ = ["FCNSegmenter", "fcn_resnet50", "pretrained_state"]

FCNWeights = Literal["imagenet", "coco"]
_CHECKPOINTS = {"imagenet": "resnet50_imagenet", "coco": "fcn_resnet50_coco"}


class FCNSegmenter(FCN):
    """torchvision ``FCN`` whose forward returns logits: images (B,3,H,W) -> (B,K,H,W)."""

    @property
    def encoder(self) -> nn.Module:
        """The dilated ResNet-50 (``backbone``): images -> {"out": (B,2048,H/8,W/8)}."""
        return self.backbone

    @property
    def head(self) -> nn.Module:
        """The FCN head (``classifier``): 3x3 conv, BN, ReLU, dropout, 1x1 conv to K classes."""
        return self.classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Images (B,3,H,W) -> logits (B,K,H,W) (torchvision's ``"out"``; no auxiliary head)."""
        return super().forward(images)["out"]  # (B,K,H,W)


def pretrained_state(weights: FCNWeights, *,
                     root: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint ``weights`` with the keys of :class:`FCNSegmenter` (offline: local files).

    ``"imagenet"``: the ResNet-50 classifier, keys prefixed ``backbone.`` (its ``fc.*`` stays,
    as ``backbone.fc.*``, which no FCN has); ``"coco"``: torchvision's FCN-ResNet50 (21 classes,
    ``aux_classifier.*`` included). Raises :class:`labkit.weights.WeightsNotFoundError` with the
    fix when the file is missing and downloads are off.
    """
    if weights not in _CHECKPOINTS:
        raise ValueError(f"weights must be None, 'imagenet' or 'coco', got {weights!r}")
    state = W.load_state_dict(_CHECKPOINTS[weights], root=root)
    if weights == "imagenet":
        state = {f"backbone.{k}": v for k, v in state.items()}
    return state


def fcn_resnet50(*, num_classes: int = 21, weights: FCNWeights | None = None,
                 root: str | os.PathLike | None = None) -> FCNSegmenter:
    """FCN-ResNet50 (Long et al. 2015): images (B,3,H,W) -> logits (B,num_classes,H,W).

    ``weights``: None (random), ``"imagenet"`` (backbone from the ResNet-50 ImageNet classifier,
    head random) or ``"coco"`` (torchvision's COCO/VOC FCN; the last 1x1 layer stays random when
    ``num_classes != 21``). What was loaded is in ``model.load_report`` (matched / missing /
    unexpected / mismatched keys, as :func:`labkit.weights.load_into` returns it).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    tv = _tv_fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                          aux_loss=False)
    model = FCNSegmenter(tv.backbone, tv.classifier, None)
    model.load_report = None
    if weights is not None:
        model.load_report = W.load_into(model, pretrained_state(weights, root=root))
    return model
