"""A small zoo of Cityscapes segmenters (19 trainIds) behind one interface: logits at the input size.

* ``segformer_b0`` / ``segformer_b5``: SegFormer (Xie et al., 2021, https://arxiv.org/abs/2105.15203),
  Hugging Face ``SegformerForSemanticSegmentation``, checkpoints
  ``nvidia/segformer-b{0,5}-finetuned-cityscapes-1024-1024``. Hierarchical transformer encoder
  (attention over the whole image at every stage, keys/values spatially reduced), all-MLP decoder.
* ``maskformer_r101``: MaskFormer (Cheng et al., 2021, https://arxiv.org/abs/2107.06278) with a
  ResNet-101 backbone, Hugging Face ``MaskFormerForInstanceSegmentation``, checkpoint
  ``facebook/maskformer-resnet101-cityscapes``. The encoder is a CNN (local 3x3 convolutions, an
  FPN pixel decoder); 100 DETR-style queries then predict (class, mask) pairs, combined into
  per-class scores as in ``MaskFormerImageProcessor.post_process_semantic_segmentation``.

Every builder returns a :class:`CityscapesSegmenter`: ``images (B,3,H,W)`` normalised with the
ImageNet mean and std (``labkit.data.Normalize()``; both checkpoints' image processors use these
values after scaling to [0, 1]) -> ``logits (B,19,H,W)`` at the input size, in trainId order
(``labkit.data.CITYSCAPES_CLASSES``). For MaskFormer the "logits" are the log of the per-class
mask scores (their argmax is HF's semantic post-processing).

Weights come from :mod:`labkit.weights` (local ``$LABKIT_WEIGHTS/<checkpoint>/`` first, then the hub).
A local ``save_pretrained`` folder is built from its own ``config.json``, so the random-weight
miniature checkpoints of :func:`save_random_segmenter` (``tiny=True``) load through the same path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from labkit import weights as lkw

NUM_CLASSES = 19


@dataclass(frozen=True)
class SegmenterSpec:
    """One entry of :data:`SEGMENTERS`: checkpoint name in ``labkit.weights.CATALOG``, family, notes."""

    checkpoint: str
    family: str  # "segformer" | "maskformer"
    backbone: str  # "transformer" | "cnn"
    about: str


SEGMENTERS: dict[str, SegmenterSpec] = {
    "segformer_b0": SegmenterSpec("segformer_b0_cityscapes", "segformer", "transformer",
                                  "SegFormer-B0 (3.7 M parameters), Cityscapes 1024x1024"),
    "segformer_b5": SegmenterSpec("segformer_b5_cityscapes", "segformer", "transformer",
                                  "SegFormer-B5 (85 M parameters), Cityscapes 1024x1024"),
    "maskformer_r101": SegmenterSpec("maskformer_r101_cityscapes", "maskformer", "cnn",
                                     "MaskFormer with a ResNet-101 backbone (60 M parameters), "
                                     "Cityscapes"),
}


def _cityscapes_labels() -> dict[int, str]:
    from labkit.data.cityscapes import CITYSCAPES_CLASSES

    return dict(enumerate(CITYSCAPES_CLASSES))


def _maskformer_config_r101_cityscapes(**overrides):
    """MaskFormer-R101 config as HF's conversion script builds it for Cityscapes (19 labels)."""
    from transformers import MaskFormerConfig, ResNetConfig

    backbone = overrides.pop("backbone_config", None) or ResNetConfig(
        depths=[3, 4, 23, 3], hidden_sizes=[256, 512, 1024, 2048], embedding_size=64,
        layer_type="bottleneck", out_features=["stage1", "stage2", "stage3", "stage4"])
    labels = _cityscapes_labels()
    return MaskFormerConfig(backbone_config=backbone, num_labels=NUM_CLASSES, id2label=labels,
                            label2id={v: k for k, v in labels.items()}, **overrides)


lkw.register(lkw.Checkpoint(
    "maskformer_r101_cityscapes", "hf", "facebook/maskformer-resnet101-cityscapes",
    "MaskFormer ResNet-101, Cityscapes 19 classes",
    hf_class="transformers:MaskFormerForInstanceSegmentation",
    hf_config="labkit.models.cityscapes:_maskformer_config_r101_cityscapes"))


def tiny_config(name: str):
    """A miniature HF config of the same architecture family (for smoke runs and tests)."""
    spec = _spec(name)
    if spec.family == "segformer":
        from transformers import SegformerConfig

        labels = _cityscapes_labels()
        big = name == "segformer_b5"  # deeper and wider than the miniature B0, like the real ones
        return SegformerConfig(num_labels=NUM_CLASSES, id2label=labels,
                               label2id={v: k for k, v in labels.items()},
                               depths=[1, 2, 2, 1] if big else [1, 1, 1, 1],
                               hidden_sizes=[16, 32, 48, 64] if big else [8, 16, 24, 32],
                               num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=32)
    from transformers import DetrConfig, ResNetConfig

    backbone = ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 48, 64],
                            embedding_size=8, layer_type="basic",
                            out_features=["stage1", "stage2", "stage3", "stage4"])
    decoder = DetrConfig(d_model=32, decoder_layers=1, decoder_attention_heads=2,
                         decoder_ffn_dim=64, encoder_layers=1, encoder_attention_heads=2,
                         encoder_ffn_dim=64, num_queries=10)
    return _maskformer_config_r101_cityscapes(backbone_config=backbone, decoder_config=decoder,
                                              fpn_feature_size=32, mask_feature_size=32)


def _spec(name: str) -> SegmenterSpec:
    try:
        return SEGMENTERS[name]
    except KeyError:
        raise KeyError(f"unknown Cityscapes segmenter {name!r}; known: "
                       f"{', '.join(SEGMENTERS)}") from None


def _hf_class(family: str):
    import transformers

    if family == "segformer":
        return transformers.SegformerForSemanticSegmentation
    return transformers.MaskFormerForInstanceSegmentation


class CityscapesSegmenter(nn.Module):
    """images (B,3,H,W), ImageNet-normalised -> logits (B,19,H,W) at the input size (trainIds).

    ``hf_model`` is the wrapped Hugging Face model (``.hf_model``); ``family`` says how its outputs
    become per-class scores.
    """

    def __init__(self, hf_model: nn.Module, *, family: str, name: str = "") -> None:
        super().__init__()
        if family not in ("segformer", "maskformer"):
            raise ValueError(f"family must be 'segformer' or 'maskformer', got {family!r}")
        self.hf_model = hf_model
        self.family = family
        self.name = name
        self.num_classes = NUM_CLASSES

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B,3,H,W), got shape {tuple(images.shape)}")
        size = images.shape[-2:]
        out = self.hf_model(pixel_values=images)
        if self.family == "segformer":
            logits = out.logits  # (B,19,H/4,W/4)
        else:
            classes = out.class_queries_logits.softmax(dim=-1)[..., :-1]  # (B,Q,19), no "void"
            masks = out.masks_queries_logits.sigmoid()  # (B,Q,H/4,W/4)
            scores = torch.einsum("bqc,bqhw->bchw", classes, masks)  # (B,19,H/4,W/4)
            logits = scores.clamp_min(1e-8).log()
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, family={self.family!r}, num_classes={self.num_classes}"


def _folder_config(path: Path):
    if path.is_dir() and (path / "config.json").is_file():
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(path))
    return None


def cityscapes_segmenter(
    name: str,
    *,
    pretrained: bool = True,
    root: str | os.PathLike | None = None,
    download: bool | None = None,
    seed: int = 0,
) -> CityscapesSegmenter:
    """Build segmenter ``name`` (a key of :data:`SEGMENTERS`): pretrained weights or seeded random.

    ``pretrained=True`` reads the checkpoint through ``labkit.weights.load_state_dict`` (local
    folder first; ``download=None`` follows ``LABKIT_OFFLINE``) and raises
    ``labkit.weights.WeightsNotFoundError`` with the fix when it is nowhere. ``pretrained=False``
    builds the full-size architecture with random weights (``seed``). Returned in eval mode.
    """
    spec = _spec(name)
    entry = lkw.CATALOG[spec.checkpoint]
    cls = _hf_class(spec.family)
    config = None
    if pretrained:
        state = lkw.load_state_dict(spec.checkpoint, root=root, download=download)
        config = _folder_config(lkw.local_path(spec.checkpoint, root))
    config = config if config is not None else lkw.hf_config(entry.name)
    torch.manual_seed(seed)
    if not pretrained:
        hf_model = cls(config)
    else:  # from_pretrained maps the on-disk key names onto this transformers version's layout
        hf_model, info = cls.from_pretrained(None, config=config, state_dict=state,
                                             output_loading_info=True)
        bad = list(info.get("missing_keys", ())) + [str(k) for k in info.get("mismatched_keys", ())]
        if bad:
            raise ValueError(
                f"checkpoint {spec.checkpoint!r} does not fit {cls.__name__}: missing or "
                f"mismatched {sorted(bad)[:4]} ({len(bad)} in all); write it again with "
                "save_pretrained (or labkit.models.cityscapes.save_random_segmenter for a "
                "random stand-in)")
    return CityscapesSegmenter(hf_model, family=spec.family, name=name).eval()


def segformer_b0_cityscapes(*, pretrained: bool = True, root: str | os.PathLike | None = None,
                            download: bool | None = None) -> CityscapesSegmenter:
    """SegFormer-B0 on Cityscapes (Xie et al. 2021): images (B,3,H,W) normalised -> logits (B,19,H,W)."""
    return cityscapes_segmenter("segformer_b0", pretrained=pretrained, root=root,
                                download=download)


def segformer_b5_cityscapes(*, pretrained: bool = True, root: str | os.PathLike | None = None,
                            download: bool | None = None) -> CityscapesSegmenter:
    """SegFormer-B5 on Cityscapes (Xie et al. 2021): images (B,3,H,W) normalised -> logits (B,19,H,W)."""
    return cityscapes_segmenter("segformer_b5", pretrained=pretrained, root=root,
                                download=download)


def maskformer_r101_cityscapes(*, pretrained: bool = True,
                               root: str | os.PathLike | None = None,
                               download: bool | None = None) -> CityscapesSegmenter:
    """MaskFormer-R101 on Cityscapes (Cheng et al. 2021): images (B,3,H,W) normalised -> logits (B,19,H,W)."""
    return cityscapes_segmenter("maskformer_r101", pretrained=pretrained, root=root,
                                download=download)


def save_random_segmenter(name: str, root: str | os.PathLike | None = None, *,
                          tiny: bool = False, seed: int = 0) -> Path:
    """Write a random-weight checkpoint for ``name`` where the builders look for the real one.

    ``tiny=True`` writes a miniature config of the same family (seconds, a few MB), for smoke
    runs and tests; otherwise the full-size architecture (as ``labkit.weights.save_random_weights``).
    """
    spec = _spec(name)
    model = None
    if tiny:
        torch.manual_seed(seed)
        model = _hf_class(spec.family)(tiny_config(name))
    return lkw.save_random_weights(spec.checkpoint, root, seed=seed, model=model)
