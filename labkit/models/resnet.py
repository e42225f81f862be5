"""ResNet-18 for CIFAR-sized inputs, and its convolutional stem for hybrid models.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385.
The CIFAR variant replaces the 7x7 stride-2 stem and the max-pool by one 3x3 stride-1 convolution
(as in most CIFAR ResNet code, e.g. kuangliu/pytorch-cifar), so a 32x32 image keeps its resolution
in the first stage and the last stage works on 4x4 features instead of 1x1.
"""

from __future__ import annotations

import torchvision
from torch import nn

__all__ = ["resnet18_cifar", "resnet18_stem"]


def _cifar_stem(model: torchvision.models.ResNet) -> None:
    """Replace the ImageNet stem (7x7/2 conv + 3x3/2 max-pool) by a 3x3/1 conv, in place."""
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()


def resnet18_cifar(*, num_classes: int = 100, small_input: bool = True) -> nn.Module:
    """ResNet-18 (He et al. 2016), random init: images (B,3,H,W) -> logits (B,num_classes).

    ``small_input=True``: 3x3 stride-1 stem without max-pool, for 32x32 images (output stride 8).
    ``small_input=False``: torchvision's ``resnet18`` unchanged (7x7/2 stem + max-pool), meant for
    224x224 images (output stride 32), e.g. CIFAR images up-sampled to 224 pixels.
    """
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if small_input:
        _cifar_stem(model)
    return model


def resnet18_stem(*, small_input: bool = True, stages: int = 3) -> nn.Sequential:
    """First ``stages`` (1-4) stages of ResNet-18 (He et al. 2016): images (B,3,H,W) -> (B,C,h,w).

    The stem conv (as in :func:`resnet18_cifar`) then ``layer1`` ... ``layer<stages>``. The module
    has ``out_channels`` (64, 128, 256, 512 for 1-4 stages) and ``stride`` (total down-sampling:
    with ``small_input`` 1, 2, 4, 8; otherwise 4, 8, 16, 32). A 32x32 image through the default
    (``small_input=True``, 3 stages) gives a (B,256,8,8) feature map.
    """
    if not 1 <= stages <= 4:
        raise ValueError(f"stages must be 1..4, got {stages}")
    net = resnet18_cifar(num_classes=1, small_input=small_input)
    layers: list[nn.Module] = [net.conv1, net.bn1, net.relu, net.maxpool]
    layers += [getattr(net, f"layer{i}") for i in range(1, stages + 1)]
    stem = nn.Sequential(*layers)
    stem.out_channels = 64 * 2 ** (stages - 1)
    stem.stride = (1 if small_input else 4) * 2 ** (stages - 1)
    return stem
