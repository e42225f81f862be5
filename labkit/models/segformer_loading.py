"""Hugging Face SegFormer checkpoints into the lab 03 scaffold: rename the keys, report, load.

Xie et al., "SegFormer", NeurIPS 2021, https://arxiv.org/abs/2105.15203. The key names of
transformers 4.x and 5.x are both understood (see :func:`labkit.models.segformer.hf_key_to_labkit`);
files and the hub are read by :mod:`labkit.weights`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.models.segformer import SegFormer, hf_key_to_labkit
from labkit.weights import hub_state_dict, read_state_dict

__all__ = ["MappingReport", "hf_state_dict_to_labkit", "load_pretrained"]


@dataclass
class MappingReport:
    """What :func:`hf_state_dict_to_labkit` / :func:`load_pretrained` did with each key."""

    matched: dict[str, str] = field(default_factory=dict)  # labkit key -> HF key
    missing: list[str] = field(default_factory=list)  # labkit keys the model has, none mapped
    unexpected: list[str] = field(default_factory=list)  # HF keys with no place in the model
    mismatched: list[str] = field(default_factory=list)  # "key: HF shape vs model shape"

    @property
    def ok(self) -> bool:
        """True when every key found its place (nothing missing, unexpected or mismatched)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"{len(self.matched)} matched, {len(self.missing)} missing, "
                 f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape mismatches"]
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("mismatched", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)"
                                               if len(keys) > 8 else "")
                lines.append(f"  {name}: {shown}")
        return "\n".join(lines)


def hf_state_dict_to_labkit(
    hf_state_dict: Mapping[str, torch.Tensor], *, model: nn.Module | None = None
) -> tuple[dict[str, torch.Tensor], MappingReport]:
    """Rename a ``SegformerForSemanticSegmentation`` (or ``SegformerModel``, or MiT
    image-classification) state dict to this scaffold's names; returns (state_dict, report).

    With ``model``, ``report.missing`` lists the model's keys left without a value and
    ``report.mismatched`` the shape differences (those tensors are left out of the result).
    Raises ValueError when no key looks like a SegFormer key (a state dict of another model).
    """
    if not isinstance(hf_state_dict, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got "
                        f"{type(hf_state_dict).__name__}")
    out: dict[str, torch.Tensor] = {}
    report = MappingReport()
    for key, value in hf_state_dict.items():
        new = hf_key_to_labkit(key)
        if new is None:
            report.unexpected.append(key)
        else:
            out[new] = value
            report.matched[new] = key
    if not report.matched:
        sample = ", ".join(list(hf_state_dict)[:4]) or "(empty)"
        raise ValueError(
            "this is not a Hugging Face SegFormer state dict: none of its "
            f"{len(hf_state_dict)} keys (e.g. {sample}) has a SegFormer name such as "
            "'segformer.encoder.patch_embeddings.0.proj.weight' (transformers 4.x) or "
            "'segformer.stages.0.patch_embeddings.proj.weight' (5.x). Pass "
            "SegformerForSemanticSegmentation(...).state_dict() or the folder written by "
            "save_pretrained.")
    if model is not None:
        target = model.state_dict()
        for key in list(out):
            if key not in target:
                report.unexpected.append(report.matched.pop(key))
                del out[key]
            elif tuple(out[key].shape) != tuple(target[key].shape):
                report.mismatched.append(f"{key}: {tuple(out[key].shape)} in the checkpoint vs "
                                         f"{tuple(target[key].shape)} in the model")
                report.matched.pop(key)
                del out[key]
        report.missing = [k for k in target if k not in out]
    return out, report


def load_pretrained(model: SegFormer, source: Any, *, strict: bool = False) -> MappingReport:
    """Load Hugging Face SegFormer weights into ``model``; returns the :class:`MappingReport`.

    ``source``: a HF model or state dict; a folder written by ``save_pretrained`` or a weights
    file (.safetensors, .bin, .pt); or a hub id such as ``"nvidia/mit-b0"`` (downloaded when
    online, else read from the HF cache). Encoder keys must all match (else ValueError: wrong
    config); decoder keys may be missing or of another shape (an encoder-only MiT checkpoint, or
    another number of classes): those stay as initialised and are listed in the report. With
    ``strict`` any missing, unexpected or mismatched key raises.
    """
    if isinstance(source, nn.Module):
        state = source.state_dict()
    elif isinstance(source, Mapping):
        state = dict(source)
    else:
        path = Path(os.fspath(source)).expanduser()
        if path.exists():
            state = read_state_dict(path)
        elif isinstance(source, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", source):
            state = hub_state_dict(source)
        else:
            raise FileNotFoundError(f"{source}: no such file or folder (and not a hub id like "
                                    "'nvidia/mit-b0')")
    mapped, report = hf_state_dict_to_labkit(state, model=model)
    bad_encoder = [k for k in report.missing + report.mismatched if k.startswith("stages.")]
    if bad_encoder or (strict and not report.ok):
        raise ValueError(f"the checkpoint does not fit this SegFormer "
                         f"(config {model.config.name!r}):\n{report}")
    model.load_state_dict(mapped, strict=False)
    return report
