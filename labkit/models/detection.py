"""Faster R-CNN builders for lab 07: the random-init skeletons, a tiny CPU detector, loss helpers.

Faster R-CNN: Ren et al., https://arxiv.org/abs/1506.01497 ; FPN: Lin et al.,
https://arxiv.org/abs/1612.03144 ; torchvision's implementation is used throughout.

* :func:`fasterrcnn` builds the two architectures of the lab (ResNet-50-FPN and MobileNetV3-Large-
  FPN, as torchvision's ``fasterrcnn_resnet50_fpn`` / ``fasterrcnn_mobilenet_v3_large_fpn``) with
  random weights; loading pretrained weights into them is the lab's exercise.
* :data:`PRETRAINED` names the checkpoint (a :data:`labkit.weights.CATALOG` entry) behind each
  ``backbone_init`` of each architecture. torchvision has no COCO Mask R-CNN with a MobileNet
  backbone, so "coco" for ``mobilenet_v3_fpn`` means the COCO *Faster* R-CNN MobileNetV3-FPN.
* :func:`tiny_fasterrcnn` is a small Faster R-CNN (4-stage CNN + 2-level FPN, ~0.5 M parameters)
  that really learns the synthetic shapes set on a CPU in minutes.
* :func:`loss_curves` / :func:`plot_loss_curves` read the RPN and RoI loss terms that
  ``labkit.train.fit(task="detection")`` records per epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    mobilenet_backbone,
    resnet_fpn_backbone,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

__all__ = [
    "ARCHS",
    "BACKBONE_INITS",
    "PRETRAINED",
    "RPN_LOSSES",
    "ROI_LOSSES",
    "collect_predictions",
    "fasterrcnn",
    "loss_curves",
    "plot_loss_curves",
    "tiny_fasterrcnn",
]

ARCHS = ("resnet50_fpn", "mobilenet_v3_fpn")
BACKBONE_INITS = ("imagenet", "coco", "random")
# backbone_init -> checkpoint name in labkit.weights.CATALOG, per architecture
PRETRAINED: dict[str, dict[str, str]] = {
    "resnet50_fpn": {"imagenet": "resnet50_imagenet", "coco": "maskrcnn_resnet50_fpn_coco"},
    "mobilenet_v3_fpn": {"imagenet": "mobilenet_v3_large_imagenet",
                         "coco": "fasterrcnn_mobilenet_v3_large_fpn_coco"},
}
RPN_LOSSES = ("loss_objectness", "loss_rpn_box_reg")
ROI_LOSSES = ("loss_classifier", "loss_box_reg")


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def fasterrcnn(*, arch: str = "resnet50_fpn", num_classes: int, frozen_bn: bool = False,
               min_size: int = 800, max_size: int = 1333) -> FasterRCNN:
    """Faster R-CNN (Ren et al. 2015), random init: images [(3,H,W)] -> [{boxes (N,4), labels, scores}].

    ``arch`` with ``num_classes`` outputs (background included). Same modules and state-dict keys as torchvision's ``fasterrcnn_resnet50_fpn`` /
    ``fasterrcnn_mobilenet_v3_large_fpn``. ``frozen_bn=True`` uses ``FrozenBatchNorm2d`` in the
    backbone (what torchvision does under pretrained weights: no ``num_batches_tracked`` keys),
    else ``nn.BatchNorm2d`` (what it does from scratch). Every backbone layer is trainable.
    Images are resized so that the short side is ``min_size`` (long side at most ``max_size``).
    """
    _check_arch(arch)
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be >= 2, got {num_classes}")
    norm = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    if arch == "resnet50_fpn":
        backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=norm,
                                       trainable_layers=5)
        return FasterRCNN(backbone, num_classes=num_classes, min_size=min_size, max_size=max_size)
    backbone = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True,
                                  norm_layer=norm, trainable_layers=6)
    anchor_sizes = ((32, 64, 128, 256, 512),) * 3
    anchors = AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    return FasterRCNN(backbone, num_classes=num_classes, rpn_anchor_generator=anchors,
                      rpn_score_thresh=0.05, min_size=min_size, max_size=max_size)


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def tiny_fasterrcnn(*, num_classes: int = 4, image_size: int = 96, width: int = 32,
                    representation: int = 128) -> FasterRCNN:
    """Small Faster R-CNN (Ren et al. 2015): images [(3,S,S)] -> [{boxes (N,4), labels, scores}].

    For ``image_size`` px images (e.g. the shapes set): CPU-trainable. Backbone ``model.backbone.body``: stem + 3 stages of 3x3 conv-BN-ReLU (strides 2, 2, 2, 2;
    widths ``width``, ``width``, 2x, 4x), FPN ``model.backbone.fpn`` on the stride-8 and stride-16
    stages (+ max-pooled level), anchors 16/32/64 px, RoIAlign 7x7, a 2-layer MLP box head of
    ``representation`` units. Images are not resized (``min_size = max_size = image_size``).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be >= 2, got {num_classes}")
    w = width
    body = nn.Sequential(OrderedDict(
        stem=_conv(3, w, 2),  # (B, w, H/2, W/2)
        layer1=nn.Sequential(_conv(w, w, 2), _conv(w, w, 1)),  # (B, w, H/4, W/4)
        layer2=nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1)),  # (B, 2w, H/8, W/8)
        layer3=nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 1)),  # (B, 4w, H/16, W/16)
    ))
    backbone = BackboneWithFPN(body, return_layers={"layer2": "0", "layer3": "1"},
                               in_channels_list=[2 * w, 4 * w], out_channels=w)
    anchors = AnchorGenerator(((16,), (32,), (64,)), ((0.5, 1.0, 2.0),) * 3)
    roi_pool = MultiScaleRoIAlign(["0", "1"], output_size=7, sampling_ratio=2)
    return FasterRCNN(
        backbone, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
        box_head=TwoMLPHead(w * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        min_size=image_size, max_size=image_size,
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
        rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=50,
        rpn_batch_size_per_image=64, box_batch_size_per_image=64, box_detections_per_img=20,
    )


@torch.no_grad()
def collect_predictions(model: nn.Module, loader: Iterable, *, device: torch.device | str = "cpu",
                        limit: int | None = None) -> tuple[list[dict], list[dict], list[torch.Tensor]]:
    """Eval-mode predictions over ``loader`` (batches of (images, targets)): (preds, targets, images).

    All on the CPU; ``limit`` stops after that many images.
    """
    model.eval()
    preds: list[dict] = []
    targets: list[dict] = []
    images: list[torch.Tensor] = []
    for batch_images, batch_targets in loader:
        out = model([im.to(device) for im in batch_images])
        for im, p, t in zip(batch_images, out, batch_targets, strict=True):
            preds.append({k: v.cpu() for k, v in p.items()})
            targets.append({k: v.cpu() for k, v in t.items()})
            images.append(im.cpu())
            if limit is not None and len(images) >= limit:
                return preds, targets, images
    return preds, targets, images


def loss_curves(history: Any, *, prefix: str = "train_") -> dict[str, list[float]]:
    """Per-epoch RPN and RoI losses from a detection History: {"rpn", "roi", "loss_objectness", ...}.

    ``rpn`` = objectness + RPN box regression, ``roi`` = classifier + box regression (the sums).
    """
    out: dict[str, list[float]] = {}
    for key in RPN_LOSSES + ROI_LOSSES:
        if f"{prefix}{key}" not in history:
            raise KeyError(f"{prefix}{key} not in the history (keys: {list(history.keys())}); "
                           "train with labkit.train.fit(..., task='detection')")
        out[key] = [float(v) for v in history[f"{prefix}{key}"]]
    out["rpn"] = [a + b for a, b in zip(*(out[k] for k in RPN_LOSSES), strict=True)]
    out["roi"] = [a + b for a, b in zip(*(out[k] for k in ROI_LOSSES), strict=True)]
    return out


def plot_loss_curves(histories: Mapping[str, Any], *, epochs: Sequence[int] | None = None):
    """Two panels, RPN loss and RoI loss per epoch, one line per named History (e.g. per init)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, history in histories.items():
        curves = loss_curves(history)
        xs = list(epochs) if epochs is not None else list(history["epoch"])
        for ax, key in zip(axes, ("rpn", "roi"), strict=True):
            ax.plot(xs, curves[key], marker="o", markersize=3, label=str(name))
    for ax, title in zip(axes, ("RPN loss (objectness + box)", "RoI loss (classifier + box)"),
                         strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
