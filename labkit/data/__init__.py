"""Datasets of the labs in their real on-disk formats, paired transforms, fixtures and synthetic shapes.

Every loader takes ``root=None`` (default under ``data_root()``), ``subset`` (first N samples,
see ``smoke_subset``) and, where the files are public, ``download``; missing files raise
``DatasetNotFoundError`` saying what to put where.
"""

from labkit.data.cifar import CIFAR100, CIFAR100_MEAN, CIFAR100_STD
from labkit.data.cityscapes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    CITYSCAPES_LABELS,
    CITYSCAPES_NUM_CLASSES,
    CITYSCAPES_PALETTE,
    CityscapesLabel,
    CityscapesSegmentation,
    label_to_train_id,
)
from labkit.data.fake import (
    write_fake_cifar100,
    write_fake_cityscapes,
    write_fake_fashion_mnist,
    write_fake_mnist,
    write_fake_pets,
    write_fake_voc,
)
from labkit.data.mnist import FASHION_MNIST_CLASSES, MNIST, MNIST_CLASSES, FashionMNIST, read_idx
from labkit.data.pets import PETS_CLASSES, PETS_PALETTE, PetsSegmentation, trimap_to_mask
from labkit.data.root import (
    CorruptFileError,
    DatasetNotFoundError,
    data_root,
    load_or_fixtures,
    on_colab,
    smoke_subset,
)
from labkit.data.shapes import SHAPES_CLASSES, SHAPES_PALETTE, ShapesDetection, ShapesSegmentation
from labkit.data.transforms import (
    IGNORE_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LUMA_WEIGHTS,
    MODALITIES,
    Compose,
    DetectionRandomHorizontalFlip,
    DetectionResize,
    DetectionToTensor,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToModality,
    ToTensor,
    denormalize,
    detection_collate,
    detection_transforms,
    hflip_boxes,
    resize_boxes,
    segmentation_transforms,
    to_modality,
)
from labkit.data.voc import VOC_CLASSES, VOC_NUM_CLASSES, VOC_SPLITS, VOCDetection

__all__ = [
    "preload",
    "CIFAR100",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABELS",
    "CITYSCAPES_LABEL_TO_TRAIN_ID",
    "CITYSCAPES_NUM_CLASSES",
    "CITYSCAPES_PALETTE",
    "FASHION_MNIST_CLASSES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LUMA_WEIGHTS",
    "MNIST",
    "MNIST_CLASSES",
    "MODALITIES",
    "PETS_CLASSES",
    "PETS_PALETTE",
    "SHAPES_CLASSES",
    "SHAPES_PALETTE",
    "VOC_CLASSES",
    "VOC_NUM_CLASSES",
    "VOC_SPLITS",
    "CityscapesLabel",
    "CityscapesSegmentation",
    "Compose",
    "CorruptFileError",
    "DatasetNotFoundError",
    "DetectionRandomHorizontalFlip",
    "DetectionResize",
    "DetectionToTensor",
    "FashionMNIST",
    "Normalize",
    "PetsSegmentation",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ShapesDetection",
    "ShapesSegmentation",
    "ToModality",
    "ToTensor",
    "VOCDetection",
    "data_root",
    "load_or_fixtures",
    "denormalize",
    "detection_collate",
    "detection_transforms",
    "hflip_boxes",
    "label_to_train_id",
    "on_colab",
    "read_idx",
    "resize_boxes",
    "segmentation_transforms",
    "smoke_subset",
    "to_modality",
    "trimap_to_mask",
    "write_fake_cifar100",
    "write_fake_cityscapes",
    "write_fake_fashion_mnist",
    "write_fake_mnist",
    "write_fake_pets",
    "write_fake_voc",
]


def preload(dataset, *, desc: str = "loading"):
    """Dataset of (image, target) tensor pairs -> TensorDataset held in memory, with a progress bar.

    For small datasets that are read many times (several epochs, several runs): decoding and
    resizing happen once. Images (N,...) and targets (N,...) are stacked as they come.
    """
    import torch
    from torch.utils.data import TensorDataset
    from tqdm.auto import tqdm

    pairs = [dataset[i] for i in tqdm(range(len(dataset)), desc=desc)]
    if not pairs:
        raise ValueError(f"{desc}: the dataset is empty")
    return TensorDataset(torch.stack([torch.as_tensor(p[0]) for p in pairs]),
                         torch.stack([torch.as_tensor(p[1]) for p in pairs]))
