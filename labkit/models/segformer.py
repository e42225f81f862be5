"""SegFormer scaffold: a Mix Transformer (MiT) encoder and an all-MLP decoder built from your parts.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
NeurIPS 2021, https://arxiv.org/abs/2105.15203. Parameter layout and numerics follow Hugging Face
``transformers/models/segformer/modeling_segformer.py``; the state-dict names of transformers 4.x
(``encoder.block.0.0.attention.self.query``) and 5.x (``stages.0.blocks.0.attention.q_proj``) are
both understood by :func:`hf_state_dict_to_labkit`.

The scaffold holds no exercise solution: :class:`SegFormer` assembles the classes written in the
lab 03 notebook (patch embedding, efficient self-attention, Mix-FFN, block, decoder) into the
4-stage encoder and the decoder::

    stages.{i}.patch_embed.{proj,norm}               # (B,C_in,H,W) -> (B,N,C_i), H_i, W_i
    stages.{i}.blocks.{j}.{norm1,attn,norm2,ffn}     # tokens (B,N,C_i) -> (B,N,C_i)
    stages.{i}.norm                                  # LayerNorm, then (B,C_i,H_i,W_i)
    decoder.{linear_c.{i},fuse.0,fuse.1,classifier}  # 4 maps -> logits (B,K,H/4,W/4)
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "MIT_CONFIGS",
    "DropPath",
    "MappingReport",
    "MitConfig",
    "MitStage",
    "SegFormer",
    "compare_part_with_hf",
    "compare_with_hf",
    "get_config",
    "hf_key_to_labkit",
    "hf_state_dict_to_labkit",
    "load_pretrained",
    "randomize_weights_",
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


# --------------------------------------------------------------------------- HF state dicts

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


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).exists():
                return _read_state_dict(path / name)
        raise FileNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin "
                                "(the files written by save_pretrained)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"],
                                                                           Mapping):
        data = data["state_dict"]
    return dict(data)


def _hub_state_dict(repo_id: str) -> dict[str, torch.Tensor]:
    from huggingface_hub import hf_hub_download

    where = os.environ.get("HF_HOME", "~/.cache/huggingface")
    errors = []
    for name in ("model.safetensors", "pytorch_model.bin"):
        try:
            return _read_state_dict(Path(hf_hub_download(repo_id, name)))
        except Exception as exc:  # offline, missing file, no such repo
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    raise FileNotFoundError(
        f"could not load the weights of {repo_id!r} from the Hugging Face hub or its cache "
        f"({where}): {'; '.join(errors)}. Offline, download them on a machine with internet "
        f"(`huggingface-cli download {repo_id}`, or SegformerForSemanticSegmentation."
        f"from_pretrained('{repo_id}').save_pretrained('<folder>')) and pass the folder (or its "
        "model.safetensors) as `source`.")


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
            state = _read_state_dict(path)
        elif isinstance(source, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", source):
            state = _hub_state_dict(source)
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


# --------------------------------------------------------------------------- checks against HF


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
    small = (8, 8, 8, 8)
    if kind == "decoder":
        cfg = MitConfig("part", tuple(in_dims), (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1),
                        decoder_dim=dim)
    else:
        cfg = MitConfig("part", (dim,) + small[1:], (1, 1, 1, 1), (heads, 1, 1, 1),
                        (sr_ratio, 1, 1, 1), patch_sizes=(patch_size, 3, 3, 3),
                        strides=(stride, 2, 2, 2), mlp_ratios=(mlp_ratio, 4, 4, 4),
                        decoder_dim=8, in_channels=in_channels)
    hf = SegformerForSemanticSegmentation(to_hf_config(cfg, num_labels=num_classes)).eval()
    prefix = _PART_PREFIX[kind]
    hf_part = hf.get_submodule(_hf_module_for(hf, prefix))
    inverse = {hf_key_to_labkit(k): k for k in hf.state_dict()}
    base = _hf_module_for(hf, prefix) + "."
    mine = copy.deepcopy(module).eval()
    randomize_weights_(mine, g)
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
        a, b = _first_tensor(mine(x, h, w)), _first_tensor(hf_part(x, h, w))
    a, b = _first_tensor(a), _first_tensor(b)
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max())


def _expected(inverse: Mapping[str | None, str], prefix: str) -> list[str]:
    return sorted(k[len(prefix):] for k in inverse if k and k.startswith(prefix))
