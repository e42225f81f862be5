"""SegFormer scaffold: a Mix Transformer (MiT) encoder and an all-MLP decoder built from your parts.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
NeurIPS 2021, https://arxiv.org/abs/2105.15203. Parameter layout and numerics follow Hugging Face
``transformers/models/segformer/modeling_segformer.py``; the state-dict names of transformers 4.x
(``encoder.block.0.0.attention.self.query``) and 5.x (``stages.0.blocks.0.attention.q_proj``) are
both mapped to the scaffold's names by :func:`hf_key_to_labkit`.

The scaffold holds no exercise solution: :class:`SegFormer` assembles the classes written in the
lab 03 notebook (patch embedding, efficient self-attention, Mix-FFN, block, decoder) into the
4-stage encoder and the decoder::

    stages.{i}.patch_embed.{proj,norm}               # (B,C_in,H,W) -> (B,N,C_i), H_i, W_i
    stages.{i}.blocks.{j}.{norm1,attn,norm2,ffn}     # tokens (B,N,C_i) -> (B,N,C_i)
    stages.{i}.norm                                  # LayerNorm, then (B,C_i,H_i,W_i)
    decoder.{linear_c.{i},fuse.0,fuse.1,classifier}  # 4 maps -> logits (B,K,H/4,W/4)

Loading Hugging Face checkpoints into the scaffold: :mod:`labkit.models.segformer_loading`;
part-by-part equivalence checks against Hugging Face: :mod:`labkit.models.segformer_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

__all__ = [
    "MIT_CONFIGS",
    "DropPath",
    "MitConfig",
    "MitStage",
    "SegFormer",
    "get_config",
    "hf_key_to_labkit",
    "hf_config",
    "to_hf_config",
]


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class MitConfig:
    """Sizes of a Mix Transformer encoder (4 stages) and of its all-MLP decoder."""

    name: str
    hidden_sizes: tuple[int, ...]  # channels C_i of stage i
    depths: tuple[int, ...]  # blocks per stage
    heads: tuple[int, ...]  # attention heads per stage
    sr_ratios: tuple[int, ...]  # spatial reduction of keys/values per stage
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)  # overlapping patch embedding kernels
    strides: tuple[int, ...] = (4, 2, 2, 2)  # strides: features at 1/4, 1/8, 1/16, 1/32
    mlp_ratios: tuple[float, ...] = (4, 4, 4, 4)  # Mix-FFN hidden width = mlp_ratio * C_i
    decoder_dim: int = 256  # width of the all-MLP decoder
    in_channels: int = 3

    def __post_init__(self) -> None:
        n = len(self.hidden_sizes)
        for name in ("depths", "heads", "sr_ratios", "patch_sizes", "strides", "mlp_ratios"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MitConfig {self.name!r}: {name} has {len(getattr(self, name))} "
                                 f"entries, hidden_sizes has {n}")
        for c, h in zip(self.hidden_sizes, self.heads, strict=True):
            if c % h:
                raise ValueError(f"MitConfig {self.name!r}: hidden size {c} is not divisible by "
                                 f"{h} heads")

    @property
    def num_stages(self) -> int:
        return len(self.hidden_sizes)

    def replace(self, **changes: Any) -> MitConfig:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return replace(self, **changes)


def _mit(name: str, hidden: tuple[int, ...], depths: tuple[int, ...], decoder: int) -> MitConfig:
    return MitConfig(name, hidden, depths, heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1),
                     decoder_dim=decoder)


# MiT-B0..B5 (paper Table 6 / the nvidia/mit-b* configs on the Hugging Face hub)
MIT_CONFIGS: dict[str, MitConfig] = {
    "b0": _mit("b0", (32, 64, 160, 256), (2, 2, 2, 2), 256),
    "b1": _mit("b1", (64, 128, 320, 512), (2, 2, 2, 2), 256),
    "b2": _mit("b2", (64, 128, 320, 512), (3, 4, 6, 3), 768),
    "b3": _mit("b3", (64, 128, 320, 512), (3, 4, 18, 3), 768),
    "b4": _mit("b4", (64, 128, 320, 512), (3, 8, 27, 3), 768),
    "b5": _mit("b5", (64, 128, 320, 512), (3, 6, 40, 3), 768),
}


def get_config(config: str | MitConfig) -> MitConfig:
    """``"b0"``..``"b5"`` (or ``"mit-b0"``) or a :class:`MitConfig` -> the MitConfig."""
    if isinstance(config, MitConfig):
        return config
    key = str(config).lower().removeprefix("mit-").removeprefix("segformer-")
    if key not in MIT_CONFIGS:
        raise ValueError(f"unknown SegFormer config {config!r}: use one of {sorted(MIT_CONFIGS)} "
                         "or a MitConfig")
    return MIT_CONFIGS[key]


def to_hf_config(config: str | MitConfig = "b0", *, num_labels: int, **overrides: Any):
    """The ``transformers.SegformerConfig`` with the same sizes (``overrides`` passed through)."""
    from transformers import SegformerConfig

    cfg = get_config(config)
    kwargs: dict[str, Any] = dict(
        num_channels=cfg.in_channels, num_encoder_blocks=cfg.num_stages,
        depths=list(cfg.depths), sr_ratios=list(cfg.sr_ratios),
        hidden_sizes=list(cfg.hidden_sizes), patch_sizes=list(cfg.patch_sizes),
        strides=list(cfg.strides), num_attention_heads=list(cfg.heads),
        mlp_ratios=list(cfg.mlp_ratios), decoder_hidden_size=cfg.decoder_dim,
        num_labels=num_labels,
    )
    kwargs.update(overrides)
    return SegformerConfig(**kwargs)


# --------------------------------------------------------------------------- scaffold


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x.div(keep) * torch.floor(mask + keep)  # (B,1,..,1) in {0, 1/keep}

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MitStage(nn.Module):
    """One encoder stage: patch embedding -> blocks -> LayerNorm -> feature map (B,C,H,W)."""

    def __init__(self, patch_embed: nn.Module, blocks: Sequence[nn.Module], dim: int) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.patch_embed(x)
        if not (isinstance(out, tuple) and len(out) == 3):
            raise TypeError("the patch embedding must return (tokens (B,N,C), H, W), got "
                            f"{type(out).__name__}")
        tokens, h, w = out  # (B, N, C), N = h * w
        for block in self.blocks:
            tokens = block(tokens, h, w)
        tokens = self.norm(tokens)
        b, n, c = tokens.shape
        if n != h * w:
            raise ValueError(f"stage output has {n} tokens, expected H*W = {h}*{w}")
        return tokens.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


class SegFormer(nn.Module):
    """SegFormer from the student's parts: images (B,C_in,H,W) -> logits (B,K,ceil(H/4),ceil(W/4)).

    ``patch_embed_cls(*, in_channels, dim, patch_size, stride)``,
    ``block_cls(*, dim, heads, sr_ratio, mlp_ratio, drop_path)`` (whose ``.attn`` must be an
    ``attention_cls`` and ``.ffn`` a ``mix_ffn_cls``) and
    ``decoder_cls(*, in_dims, dim, num_classes)``. ``drop_path`` is the stochastic-depth rate of
    the last block, growing linearly from 0 over the blocks as in the paper.
    """

    def __init__(
        self,
        *,
        config: str | MitConfig = "b0",
        num_classes: int,
        patch_embed_cls: type[nn.Module],
        attention_cls: type[nn.Module],
        mix_ffn_cls: type[nn.Module],
        block_cls: type[nn.Module],
        decoder_cls: type[nn.Module],
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        cfg = get_config(config)
        self.config = cfg
        self.num_classes = num_classes
        total = sum(cfg.depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]  # as in HF / the paper
        stages, k = [], 0
        for i in range(cfg.num_stages):
            in_ch = cfg.in_channels if i == 0 else cfg.hidden_sizes[i - 1]
            embed = patch_embed_cls(in_channels=in_ch, dim=cfg.hidden_sizes[i],
                                    patch_size=cfg.patch_sizes[i], stride=cfg.strides[i])
            blocks = []
            for _ in range(cfg.depths[i]):
                block = block_cls(dim=cfg.hidden_sizes[i], heads=cfg.heads[i],
                                  sr_ratio=cfg.sr_ratios[i], mlp_ratio=cfg.mlp_ratios[i],
                                  drop_path=rates[k])
                k += 1
                for attr, cls in (("attn", attention_cls), ("ffn", mix_ffn_cls)):
                    part = getattr(block, attr, None)
                    if not isinstance(part, cls):
                        raise TypeError(f"{block_cls.__name__}.{attr} must be a {cls.__name__}, "
                                        f"got {type(part).__name__}")
                blocks.append(block)
            stages.append(MitStage(embed, blocks, cfg.hidden_sizes[i]))
        self.stages = nn.ModuleList(stages)
        self.decoder = decoder_cls(in_dims=tuple(cfg.hidden_sizes), dim=cfg.decoder_dim,
                                   num_classes=num_classes)

    def forward_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps [(B,C_i,H_i,W_i)] at strides 4, 8, 16, 32."""
        feats, x = [], images
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.forward_features(images))  # (B, K, H/4, W/4)


# --------------------------------------------------------------------------- HF names

_SUFFIX = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_STAGE_RULES = [  # (HF pattern without "segformer.", labkit replacement); 4.x and 5.x names
    (r"encoder\.patch_embeddings\.(\d+)\.proj\.", r"stages.\1.patch_embed.proj."),
    (r"encoder\.patch_embeddings\.(\d+)\.layer_norm\.", r"stages.\1.patch_embed.norm."),
    (r"stages\.(\d+)\.patch_embeddings\.proj\.", r"stages.\1.patch_embed.proj."),
    (r"stages\.(\d+)\.patch_embeddings\.layer_norm\.", r"stages.\1.patch_embed.norm."),
    (r"encoder\.layer_norm\.(\d+)\.", r"stages.\1.norm."),
    (r"stages\.(\d+)\.layer_norm\.", r"stages.\1.norm."),
]
_BLOCK_PREFIXES = [r"encoder\.block\.(\d+)\.(\d+)\.", r"stages\.(\d+)\.blocks\.(\d+)\."]
_BLOCK_RULES = [
    (r"layer_norm_1\.|layernorm_before\.", "norm1."),
    (r"layer_norm_2\.|layernorm_after\.", "norm2."),
    (r"attention\.self\.query\.|attention\.q_proj\.", "attn.query."),
    (r"attention\.self\.key\.|attention\.k_proj\.", "attn.key."),
    (r"attention\.self\.value\.|attention\.v_proj\.", "attn.value."),
    (r"attention\.self\.sr\.|attention\.sequence_reduction\.sequence_reduction\.", "attn.sr."),
    (r"attention\.self\.layer_norm\.|attention\.sequence_reduction\.layer_norm\.", "attn.norm."),
    (r"attention\.output\.dense\.|attention\.o_proj\.", "attn.proj."),
    (r"mlp\.dense1\.|mlp\.fc1\.", "ffn.fc1."),
    (r"mlp\.dwconv\.dwconv\.", "ffn.dwconv."),
    (r"mlp\.dense2\.|mlp\.fc2\.", "ffn.fc2."),
]
_DECODER_RULES = [
    (r"decode_head\.(?:linear_c|linear_projections)\.(\d+)\.proj\.", r"decoder.linear_c.\1."),
    (r"decode_head\.linear_fuse\.", "decoder.fuse.0."),
    (r"decode_head\.batch_norm\.", "decoder.fuse.1."),
    (r"decode_head\.classifier\.", "decoder.classifier."),
]


def hf_key_to_labkit(key: str) -> str | None:
    """The labkit name of a Hugging Face SegFormer parameter/buffer name (None if it has none)."""
    k = key.removeprefix("segformer.")
    for pattern, repl in _STAGE_RULES + _DECODER_RULES:
        m = re.fullmatch(pattern + _SUFFIX, k)
        if m:
            return m.expand(repl + r"\g<" + str(m.re.groups) + ">")
    for prefix in _BLOCK_PREFIXES:
        m = re.match(prefix, k)
        if not m:
            continue
        rest = k[m.end():]
        for pattern, repl in _BLOCK_RULES:
            mm = re.fullmatch(f"(?:{pattern}){_SUFFIX}", rest)
            if mm:
                return f"stages.{m.group(1)}.blocks.{m.group(2)}.{repl}{mm.group(1)}"
    return None


def hf_config(variant: str, num_labels: int):
    """``to_hf_config(variant, num_labels=num_labels)``: the config of a catalogue checkpoint
    (:data:`labkit.weights.CATALOG` names it to build random stand-ins)."""
    return to_hf_config(variant, num_labels=num_labels)
