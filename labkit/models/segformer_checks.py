"""Equivalence checks of the lab 03 scaffold against Hugging Face's SegFormer, used by the
notebook's self-checks: whole model part by part (:func:`compare_with_hf`) or one part
(:func:`compare_part_with_hf`), with random weights from :func:`randomize_weights_`.

Xie et al., "SegFormer", NeurIPS 2021, https://arxiv.org/abs/2105.15203.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from labkit.models.segformer import MitConfig, SegFormer, hf_key_to_labkit, to_hf_config

__all__ = ["compare_part_with_hf", "compare_with_hf", "randomize_weights_"]


def _first_tensor(out: Any) -> torch.Tensor:
    while isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "logits"):
        out = out.logits
    return out


def _hf_module_for(hf_model: nn.Module, labkit_prefix: str) -> str:
    """Name of the HF sub-module holding the parameters that labkit calls ``labkit_prefix``*."""
    names = [hk for hk in hf_model.state_dict() if (hf_key_to_labkit(hk) or "").startswith(
        labkit_prefix)]
    if not names:
        raise KeyError(f"no Hugging Face parameter corresponds to {labkit_prefix!r}")
    parts = [n.split(".") for n in names]
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    if len(names) == 1:
        common = common[:-2]  # "x.proj.weight" -> "x"
    return ".".join(common)


@torch.no_grad()
def compare_with_hf(
    model: SegFormer, hf_model: nn.Module, images: torch.Tensor
) -> list[tuple[str, float]]:
    """Largest absolute difference between ``model`` and a HF SegFormer holding the same weights,
    part by part in the order of the forward pass (patch embeddings, first block's attention,
    Mix-FFN and block, stage outputs, decoder logits): the first large value points at the part
    to fix."""
    parts = []
    for i, stage in enumerate(model.stages):
        parts += [(f"stage {i + 1} patch embedding", f"stages.{i}.patch_embed."),
                  (f"stage {i + 1} block 1 attention", f"stages.{i}.blocks.0.attn."),
                  (f"stage {i + 1} block 1 Mix-FFN", f"stages.{i}.blocks.0.ffn."),
                  (f"stage {i + 1} block 1", f"stages.{i}.blocks.0.")]
        if len(stage.blocks) == 0:
            parts = parts[:-3]
    ours, theirs, handles = {}, {}, []

    def hook(store, name):
        def fn(module, args, out):
            store.setdefault(name, _first_tensor(out).detach().clone())
        return fn

    for name, prefix in parts:
        handles.append(model.get_submodule(prefix[:-1]).register_forward_hook(hook(ours, name)))
        hf_name = _hf_module_for(hf_model, prefix)
        handles.append(hf_model.get_submodule(hf_name).register_forward_hook(hook(theirs, name)))
    was = model.training, hf_model.training
    model.eval()
    hf_model.eval()
    try:
        feats = model.forward_features(images)
        logits = model.decoder(feats)
        out = hf_model(pixel_values=images, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was[0])
        hf_model.train(was[1])
    hidden = out.hidden_states

    def diff(a, b):
        if a.shape != b.shape:
            return float("inf")
        return float((a.float() - b.float()).abs().max())

    rows = [(name, diff(ours[name], theirs[name])) for name, _ in parts]
    rows += [(f"stage {i + 1} output (B,C,H,W)", diff(f, h))
             for i, (f, h) in enumerate(zip(feats, hidden, strict=False))]
    rows.append(("decoder logits", diff(logits, out.logits)))
    return rows


def randomize_weights_(module: nn.Module, seed: int | torch.Generator = 0) -> nn.Module:
    """Fill every float parameter and buffer with random values of a sensible scale (weights
    ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.01), biases and BatchNorm means ~ N(0, 0.01),
    variances in [0.5, 1.5]): equivalence checks then exercise every tensor. Returns ``module``."""
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            noise = torch.randn(t.shape, generator=generator)
            if leaf == "running_var":
                t.copy_(0.5 + torch.rand(t.shape, generator=generator))
            elif t.ndim == 1 and leaf == "weight":  # LayerNorm / BatchNorm scales
                t.copy_(1.0 + 0.1 * noise)
            elif t.ndim == 1:
                t.copy_(0.1 * noise)
            else:
                fan_in = t[0].numel()
                t.copy_(noise / fan_in ** 0.5)
    return module


_PART_PREFIX = {"patch_embed": "stages.0.patch_embed.", "attention": "stages.0.blocks.0.attn.",
                "mix_ffn": "stages.0.blocks.0.ffn.", "block": "stages.0.blocks.0.",
                "decoder": "decoder."}


@torch.no_grad()
def compare_part_with_hf(
    kind: str,
    module: nn.Module,
    *,
    dim: int = 16,
    heads: int = 1,
    sr_ratio: int = 1,
    mlp_ratio: float = 4,
    in_channels: int = 3,
    patch_size: int = 7,
    stride: int = 4,
    in_dims: Sequence[int] = (8, 16, 24, 32),
    num_classes: int = 3,
    size: tuple[int, int] = (9, 7),
    seed: int = 0,
) -> float:
    """Largest absolute difference between one of your parts and the same part of Hugging Face's.

    ``kind``: "patch_embed", "attention", "mix_ffn", "block" or "decoder"; ``module`` is your
    part built with the same sizes (``dim``, ``heads``, ...). A copy of it gets random weights,
    which are loaded (by parameter name) into the HF part; both run on the same random input:
    images ``(2, in_channels, *size)`` for the patch embedding, tokens ``(2, H*W, dim)`` with
    ``(H, W) = size`` for attention, Mix-FFN and block, and four maps at 1/1, 1/2, 1/4, 1/8 of
    ``size`` for the decoder. Raises KeyError when your parameter names differ from the
    specification.
    """
    from transformers import SegformerForSemanticSegmentation

    if kind not in _PART_PREFIX:
        raise ValueError(f"kind must be one of {sorted(_PART_PREFIX)}, got {kind!r}")
    g = torch.Generator().manual_seed(seed)
    if kind == "decoder":
        cfg = MitConfig("part", tuple(in_dims), (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1),
                        decoder_dim=dim)
    else:
        cfg = MitConfig("part", (dim, 8, 8, 8), (1, 1, 1, 1), (heads, 1, 1, 1),
                        (sr_ratio, 1, 1, 1), patch_sizes=(patch_size, 3, 3, 3),
                        strides=(stride, 2, 2, 2), mlp_ratios=(mlp_ratio, 4, 4, 4),
                        decoder_dim=8, in_channels=in_channels)
    hf = SegformerForSemanticSegmentation(to_hf_config(cfg, num_labels=num_classes)).eval()
    mine = randomize_weights_(copy.deepcopy(module).eval(), g)
    hf_part = _load_part_into_hf(kind, mine, hf)
    h, w = size
    if kind == "patch_embed":
        x = torch.randn(2, in_channels, h, w, generator=g)
        a, b = mine(x), hf_part(x)
        if tuple(a[1:]) != tuple(b[1:]):
            return float("inf")
        a, b = a[0], b[0]
    elif kind == "decoder":
        feats = [torch.randn(2, c, -(-h // 2**i), -(-w // 2**i), generator=g)
                 for i, c in enumerate(in_dims)]
        a, b = mine(feats), hf_part(feats)
    else:
        x = torch.randn(2, h * w, dim, generator=g)
        a, b = mine(x, h, w), hf_part(x, h, w)
    a, b = _first_tensor(a), _first_tensor(b)
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max())


def _load_part_into_hf(kind: str, mine: nn.Module, hf: nn.Module) -> nn.Module:
    """Copy the weights of the student's part ``mine`` into the same part of ``hf`` (by name);
    KeyError naming the expected parameter names when a name is extra or missing."""
    prefix = _PART_PREFIX[kind]
    base = _hf_module_for(hf, prefix) + "."
    hf_part = hf.get_submodule(base[:-1])
    inverse = {hf_key_to_labkit(k): k for k in hf.state_dict()}
    state = {}
    for key, value in mine.state_dict().items():
        hf_key = inverse.get(prefix + key)
        if hf_key is None or not hf_key.startswith(base):
            raise KeyError(f"your {kind} has a parameter {key!r} that the specification does not "
                           f"have; expected names: {_expected(inverse, prefix)}")
        state[hf_key[len(base):]] = value
    missing = [k for k in hf_part.state_dict() if k not in state]
    if missing:
        names = [hf_key_to_labkit(base + k)[len(prefix):] for k in missing]
        raise KeyError(f"your {kind} lacks the parameter(s) {names}; expected names: "
                       f"{_expected(inverse, prefix)}")
    hf_part.load_state_dict(state, strict=True)
    return hf_part


def _expected(inverse: Mapping[str | None, str], prefix: str) -> list[str]:
    return sorted(k[len(prefix):] for k in inverse if k and k.startswith(prefix))
