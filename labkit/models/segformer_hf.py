"""SegFormer from Hugging Face ``transformers`` as a segmenter whose forward returns full-size logits.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
NeurIPS 2021, https://arxiv.org/abs/2105.15203; ``transformers.SegformerForSemanticSegmentation``.

:class:`SegformerSegmenter` *is* ``SegformerForSemanticSegmentation`` (same modules and keys, so
hub checkpoints and ``save_pretrained`` folders load unchanged) with two differences: ``forward``
takes ``images (B,3,H,W)`` and returns logits up-sampled (bilinear) to the input size
``(B,K,H,W)`` (Hugging Face returns them at 1/4 resolution), and the model names its parts the way
every lab-04 model does: ``model.encoder`` (= ``model.segformer``, the Mix Transformer) and
``model.head`` (= ``model.decode_head``, the all-MLP decoder).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import SegformerForSemanticSegmentation

from labkit import weights as W
from labkit.models.segformer import MitConfig, get_config, to_hf_config

__all__ = ["SegformerSegmenter", "pretrained_state", "segformer", "to_installed_names"]

SegformerWeights = Literal["imagenet", "cityscapes"]


class SegformerSegmenter(SegformerForSemanticSegmentation):
    """HF SegFormer whose forward returns logits at the input size: (B,3,H,W) -> (B,K,H,W)."""

    @property
    def encoder(self) -> nn.Module:
        """The Mix Transformer encoder (``segformer``): four feature maps at strides 4-32."""
        return self.segformer

    @property
    def head(self) -> nn.Module:
        """The all-MLP decoder (``decode_head``); its last layer ``classifier`` predicts K."""
        return self.decode_head

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Images (B,3,H,W) -> logits (B,K,H,W), up-sampled bilinearly from 1/4 resolution."""
        hidden = self.segformer(images, output_hidden_states=True, return_dict=True).hidden_states
        logits = self.decode_head(hidden)  # (B,K,H/4,W/4)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)  # (B,K,H,W)


# checkpoint (hub, transformers 4.x) key -> key of transformers >= 5 (its own conversion mapping)
_RENAMES = (
    (r"encoder\.patch_embeddings\.(\d+)\.", r"stages.\1.patch_embeddings."),
    (r"encoder\.block\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"encoder\.layer_norm\.(\d+)\.", r"stages.\1.layer_norm."),
    (r"attention\.self\.query\.", "attention.q_proj."),
    (r"attention\.self\.key\.", "attention.k_proj."),
    (r"attention\.self\.value\.", "attention.v_proj."),
    (r"attention\.self\.sr\.", "attention.sequence_reduction.sequence_reduction."),
    (r"attention\.self\.layer_norm\.", "attention.sequence_reduction.layer_norm."),
    (r"attention\.output\.dense\.", "attention.o_proj."),
    (r"mlp\.dense1\.", "mlp.fc1."),
    (r"mlp\.dense2\.", "mlp.fc2."),
    (r"layer_norm_1\.", "layernorm_before."),
    (r"layer_norm_2\.", "layernorm_after."),
    (r"decode_head\.linear_c\.", "decode_head.linear_projections."),
)


@functools.cache
def _installed_uses_new_names() -> bool:
    """True when the installed transformers names SegFormer blocks ``stages.i.blocks.j``."""
    from transformers import SegformerConfig, SegformerModel

    tiny = SegformerConfig(num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[4],
                           patch_sizes=[3], strides=[2], num_attention_heads=[1],
                           mlp_ratios=[1])
    return any(k.startswith("stages.") for k in SegformerModel(tiny).state_dict())


def to_installed_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint keys (hub / ``save_pretrained`` files) -> the installed transformers' keys.

    transformers 5 renamed the SegFormer modules (``encoder.block.0.0.attention.self.query`` ->
    ``stages.0.blocks.0.attention.q_proj``) and converts while loading; files keep the old names.
    """
    if not _installed_uses_new_names():
        return dict(state)
    out = {}
    for key, value in state.items():
        for pattern, repl in _RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def _checkpoint(weights: str, variant: str) -> str:
    name = {"imagenet": f"mit_{variant}_imagenet",
            "cityscapes": f"segformer_{variant}_cityscapes"}.get(weights)
    if name is None:
        raise ValueError(f"weights must be None, 'imagenet' or 'cityscapes', got {weights!r}")
    if name not in W.CATALOG:
        known = sorted(n for n in W.CATALOG if n.startswith(("mit_", "segformer_")))
        raise ValueError(f"no {weights!r} checkpoint for SegFormer-{variant} in labkit.weights "
                         f"(known: {', '.join(known)})")
    return name


def pretrained_state(weights: SegformerWeights, *, variant: str = "b0",
                     root: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint ``weights`` with Hugging Face keys (offline: local files).

    ``"imagenet"``: the MiT encoder pre-trained on ImageNet-1k (keys ``segformer.*``; the
    image-classification layer is dropped); ``"cityscapes"``: the whole SegFormer fine-tuned on
    Cityscapes (19 classes). Keys follow the installed transformers (see
    :func:`to_installed_names`). Raises :class:`labkit.weights.WeightsNotFoundError` with the fix.
    """
    state = to_installed_names(W.load_state_dict(_checkpoint(weights, variant), root=root))
    if weights == "imagenet":
        state = {k: v for k, v in state.items() if k.startswith("segformer.")}
    return state


def segformer(*, variant: str | MitConfig = "b0", num_classes: int = 19,
              weights: SegformerWeights | None = None,
              root: str | os.PathLike | None = None) -> SegformerSegmenter:
    """Hugging Face SegFormer (Xie et al. 2021): images (B,3,H,W) -> logits (B,num_classes,H,W).

    ``variant``: ``"b0"``..``"b5"`` or a :class:`labkit.models.segformer.MitConfig` (e.g. a tiny
    one for tests). ``weights``: None (random), ``"imagenet"`` (encoder pre-trained on
    ImageNet-1k, decoder random) or ``"cityscapes"`` (encoder and decoder from Cityscapes; the
    last layer stays random when ``num_classes != 19``). What was loaded is in
    ``model.load_report`` (see :func:`labkit.weights.load_into`).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    cfg = get_config(variant)
    model = SegformerSegmenter(to_hf_config(cfg, num_labels=num_classes))
    model.load_report = None
    if weights is not None:
        model.load_report = W.load_into(model, pretrained_state(weights, variant=cfg.name,
                                                                root=root))
    return model
