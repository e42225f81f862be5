"""Paired transforms: (image, mask) for segmentation, (image, target) for detection, plus modalities.

Every transform is a callable ``t(image, y) -> (image, y)``. Images are PIL images or float tensors
(3,H,W); masks are PIL images, NumPy arrays or int64 tensors (H,W); detection targets are dicts with
``boxes`` float32 (N,4) in xyxy pixel coordinates. Randomness comes from ``torch``'s generator,
so ``seed_everything`` makes it reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
MODALITIES = ("rgb", "grayscale", "inverted_grayscale")

Size = int | tuple[int, int]


def image_size(image: Image.Image | torch.Tensor | np.ndarray) -> tuple[int, int]:
    """(H, W) of a PIL image, a tensor (..., H, W) or an array (H, W[, C])."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, torch.Tensor):
        return int(image.shape[-2]), int(image.shape[-1])
    return int(image.shape[0]), int(image.shape[1])


def _as_mask_tensor(mask: Any) -> torch.Tensor:
    """Mask as an int64 tensor (H,W)."""
    if isinstance(mask, torch.Tensor):
        return mask.long()
    return torch.from_numpy(np.array(mask, dtype=np.int64, copy=True))


def _mask_op(mask: Any, op: Callable[[Any], Any]) -> Any:
    """Apply a torchvision functional op to a mask given as PIL, array or (H,W) tensor."""
    if isinstance(mask, Image.Image):
        return op(mask)
    m = _as_mask_tensor(mask)
    return op(m[None])[0]


def _target_size(size: Size, h: int, w: int) -> tuple[int, int]:
    """(H, W) after resizing an (h, w) image to ``size``; an int sets the shorter side and the
    longer one is truncated as torchvision's ``resize`` does: (500, 394) at 256 -> (324, 256)."""
    if isinstance(size, int):
        if h <= w:
            return size, int(size * w / h)
        return int(size * h / w), size
    return int(size[0]), int(size[1])


class Compose:
    """Chain paired transforms: ``Compose([t1, t2])(image, y) == t2(*t1(image, y))``."""

    def __init__(self, transforms: Sequence[Callable[[Any, Any], tuple[Any, Any]]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, y: Any) -> tuple[Any, Any]:
        for t in self.transforms:
            image, y = t(image, y)
        return image, y

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


# ---------------------------------------------------------------- segmentation: (image, mask)


class Resize:
    """Resize image (bilinear, antialiased) and mask (nearest: no new label values) to ``size``.

    ``size`` (H, W), or an int for the shorter side with the longer one truncated, as in
    ``torchvision.transforms.v2.Resize``.
    """

    def __init__(self, size: Size) -> None:
        self.size = size

    def __call__(self, image: Any, mask: Any) -> tuple[Any, Any]:
        hw = _target_size(self.size, *image_size(image))
        image = TF.resize(image, list(hw), interpolation=InterpolationMode.BILINEAR, antialias=True)
        mask = _mask_op(
            mask, lambda m: TF.resize(m, list(hw), interpolation=InterpolationMode.NEAREST)
        )
        return image, mask

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomCrop:
    """Crop the same random (H,W) window from image and mask; pad first if smaller (mask with 255)."""

    def __init__(self, size: Size, *, fill: float = 0.0, ignore_index: int = IGNORE_INDEX) -> None:
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.fill = fill
        self.ignore_index = ignore_index

    def __call__(self, image: Any, mask: Any) -> tuple[Any, Any]:
        th, tw = self.size
        h, w = image_size(image)
        pad_h, pad_w = max(th - h, 0), max(tw - w, 0)
        if pad_h or pad_w:
            padding = [0, 0, pad_w, pad_h]  # left, top, right, bottom
            image = TF.pad(image, padding, fill=self.fill)
            if isinstance(mask, Image.Image):
                mask = TF.pad(mask, padding, fill=self.ignore_index)
            else:
                m = _as_mask_tensor(mask)
                mask = torch.nn.functional.pad(m, (0, pad_w, 0, pad_h), value=self.ignore_index)
            h, w = h + pad_h, w + pad_w
        top = int(torch.randint(0, h - th + 1, (1,)))
        left = int(torch.randint(0, w - tw + 1, (1,)))
        image = TF.crop(image, top, left, th, tw)
        mask = _mask_op(mask, lambda m: TF.crop(m, top, left, th, tw))
        return image, mask

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class RandomHorizontalFlip:
    """Flip image and mask left-right together with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Any, mask: Any) -> tuple[Any, Any]:
        if float(torch.rand(())) < self.p:
            image = TF.hflip(image)
            mask = _mask_op(mask, TF.hflip)
        return image, mask

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def image_to_tensor(image: Any) -> torch.Tensor:
    """PIL image, uint8 array (H,W,C) or tensor -> float tensor (3,H,W) (or (1,H,W) for L) in [0, 1]."""
    if isinstance(image, torch.Tensor):
        return image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    if isinstance(image, Image.Image) and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return TF.to_tensor(image)


class ToTensor:
    """Image -> float (3,H,W) in [0,1]; mask -> int64 (H,W) with its label values unchanged."""

    def __call__(self, image: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return image_to_tensor(image), _as_mask_tensor(mask)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """Normalise the image tensor (3,H,W) channel-wise (ImageNet mean/std by default); mask unchanged."""

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        self.mean = tuple(mean)
        self.std = tuple(std)

    def __call__(self, image: torch.Tensor, y: Any) -> tuple[torch.Tensor, Any]:
        return TF.normalize(image, list(self.mean), list(self.std)), y

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def denormalize(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Undo ``Normalize`` on images (3,H,W) or (B,3,H,W); result clamped to [0, 1]."""
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return (images * s + m).clamp(0.0, 1.0)


# ---------------------------------------------------------------- modalities


def to_modality(images: torch.Tensor, modality: str) -> torch.Tensor:
    """Float images (3,H,W) or (B,3,H,W) in [0,1] -> same shape as rgb, grayscale or inverted grayscale."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if images.shape[-3] != 3:
        raise ValueError(f"expected 3 channels at dim -3, got shape {tuple(images.shape)}")
    if modality == "rgb":
        return images
    w = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(3, 1, 1)
    gray = (images * w).sum(dim=-3, keepdim=True)  # (..., 1, H, W)
    if modality == "inverted_grayscale":
        gray = 1.0 - gray
    return gray.expand_as(images).contiguous()


class ToModality:
    """Paired transform applying ``to_modality`` to the image tensor; put it before ``Normalize``."""

    def __init__(self, modality: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality

    def __call__(self, image: torch.Tensor, y: Any) -> tuple[torch.Tensor, Any]:
        return to_modality(image, self.modality), y

    def __repr__(self) -> str:
        return f"ToModality({self.modality!r})"


def segmentation_transforms(
    *,
    size: Size | None = None,
    crop: Size | None = None,
    train: bool = False,
    normalize: bool = True,
    modality: str = "rgb",
) -> Compose:
    """Standard pipeline: [Resize] -> [RandomCrop, RandomHorizontalFlip if train] -> ToTensor -> [Normalize]."""
    ts: list[Callable[[Any, Any], tuple[Any, Any]]] = []
    if size is not None:
        ts.append(Resize(size))
    if train:
        if crop is not None:
            ts.append(RandomCrop(crop))
        ts.append(RandomHorizontalFlip())
    ts.append(ToTensor())
    if modality != "rgb":
        ts.append(ToModality(modality))
    if normalize:
        ts.append(Normalize())
    return Compose(ts)


# ---------------------------------------------------------------- detection: (image, target)


def hflip_boxes(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror xyxy boxes (N,4) in an image of the given width: x1' = W - x2, x2' = W - x1."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def resize_boxes(
    boxes: torch.Tensor, old_hw: tuple[int, int], new_hw: tuple[int, int]
) -> torch.Tensor:
    """Scale xyxy boxes (N,4) from an image of size ``old_hw`` (H,W) to ``new_hw``."""
    sy = new_hw[0] / old_hw[0]
    sx = new_hw[1] / old_hw[1]
    scale = torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype, device=boxes.device)
    return boxes * scale


class DetectionToTensor:
    """Image -> float (3,H,W) in [0,1]; target passed through."""

    def __call__(self, image: Any, target: dict) -> tuple[torch.Tensor, dict]:
        return image_to_tensor(image), target

    def __repr__(self) -> str:
        return "DetectionToTensor()"


class DetectionResize:
    """Resize the image (bilinear) to ``size`` and scale ``target["boxes"]`` to match."""

    def __init__(self, size: Size) -> None:
        self.size = size

    def __call__(self, image: Any, target: dict) -> tuple[Any, dict]:
        old = image_size(image)
        new = _target_size(self.size, *old)
        image = TF.resize(
            image, list(new), interpolation=InterpolationMode.BILINEAR, antialias=True
        )
        target = dict(target)
        target["boxes"] = resize_boxes(target["boxes"], old, new)
        return image, target

    def __repr__(self) -> str:
        return f"DetectionResize({self.size})"


class DetectionRandomHorizontalFlip:
    """Flip image and ``target["boxes"]`` left-right together with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Any, target: dict) -> tuple[Any, dict]:
        if float(torch.rand(())) < self.p:
            width = image_size(image)[1]
            image = TF.hflip(image)
            target = dict(target)
            target["boxes"] = hflip_boxes(target["boxes"], width)
        return image, target

    def __repr__(self) -> str:
        return f"DetectionRandomHorizontalFlip(p={self.p})"


def detection_transforms(*, train: bool = False, size: Size | None = None) -> Compose:
    """Standard pipeline: [DetectionResize] -> [DetectionRandomHorizontalFlip if train] -> ToTensor."""
    ts: list[Callable[[Any, Any], tuple[Any, Any]]] = []
    if size is not None:
        ts.append(DetectionResize(size))
    if train:
        ts.append(DetectionRandomHorizontalFlip())
    ts.append(DetectionToTensor())
    return Compose(ts)


def detection_collate(
    batch: Sequence[tuple[torch.Tensor, dict]],
) -> tuple[list[torch.Tensor], list[dict]]:
    """DataLoader collate for detection: [(image, target), ...] -> (list of images, list of targets)."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets
