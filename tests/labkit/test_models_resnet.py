"""labkit.models.resnet: ResNet-18 for 32-pixel and 224-pixel CIFAR inputs, and its stem."""

import pytest
import torch
import torchvision
from torch import nn

from labkit.models.resnet import resnet18_cifar, resnet18_stem
from labkit.utils import count_params


def test_small_input_shapes_and_stem():
    model = resnet18_cifar(num_classes=100).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)


def test_param_count_is_torchvision_minus_the_replaced_stem():
    reference = count_params(torchvision.models.resnet18(weights=None, num_classes=100))
    # the 7x7 stem conv (64 x 3 x 7 x 7, no bias) becomes a 3x3 one; the max-pool has no params
    expected = reference - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3
    assert count_params(resnet18_cifar(num_classes=100)) == expected
    assert count_params(resnet18_cifar(num_classes=100, small_input=False)) == reference


def test_large_input_is_torchvision_resnet18():
    model = resnet18_cifar(num_classes=7, small_input=False).eval()
    assert model.conv1.kernel_size == (7, 7) and isinstance(model.maxpool, nn.MaxPool2d)
    assert model(torch.rand(1, 3, 224, 224)).shape == (1, 7)


@pytest.mark.parametrize("stages, channels, size", [(1, 64, 32), (2, 128, 16), (3, 256, 8),
                                                    (4, 512, 4)])
def test_stem_shapes(stages, channels, size):
    stem = resnet18_stem(stages=stages).eval()
    assert stem(torch.rand(1, 3, 32, 32)).shape == (1, channels, size, size)
    assert stem.out_channels == channels and stem.stride == 32 // size


def test_stem_of_the_imagenet_variant_and_bad_stages():
    stem = resnet18_stem(small_input=False, stages=3).eval()
    assert stem(torch.rand(1, 3, 64, 64)).shape == (1, 256, 4, 4) and stem.stride == 16
    with pytest.raises(ValueError, match="stages"):
        resnet18_stem(stages=5)
