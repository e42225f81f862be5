"""Lab 03 (SegFormer from scratch) grading: exercises, deterministic probe inputs, spec.

The parts are graded by value: the parent makes a seeded state dict with the parameter names and
shapes the stubs specify, the probe loads it into the student's module with ``strict=True`` (names
and shapes must match) and runs it on fixed inputs in eval mode. The whole model is built with
labkit's scaffold, loaded with the same kind of state dict (labkit names), and its logits are
compared with the reference's, which are those of Hugging Face's
``SegformerForSemanticSegmentation`` holding the same weights (tests/labs/test_lab03.py). Every call grades one exercise: the whole-model calls exist once
per exercise, the student's class in the scaffold and the reference for the other four parts.
"""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

_HF = ("transformers", "timm", "mmseg", "SegformerForSemanticSegmentation", "SegformerModel")
_TORCH_ATTENTION = ("MultiheadAttention", "scaled_dot_product_attention",
                    "multi_head_attention_forward", "TransformerEncoderLayer")

EXERCISES = (
    Exercise("OverlapPatchEmbed", (), kind="class", forbidden=_HF),
    Exercise("EfficientSelfAttention", (), kind="class", forbidden=_HF + _TORCH_ATTENTION),
    Exercise("MixFFN", (), kind="class", forbidden=_HF),
    Exercise("SegFormerBlock", (), kind="class", forbidden=_HF + _TORCH_ATTENTION),
    Exercise("AllMLPDecoder", (), kind="class", forbidden=_HF),
)
NAMES = tuple(e.name for e in EXERCISES)
EMBED, ATTN, FFN, BLOCK, DECODER = NAMES

# a small custom encoder for the hidden whole-model checks (heads > 1 from stage 1, odd sizes)
TINY_CONFIG = dict(name="tiny", hidden_sizes=(16, 24, 32, 40), depths=(1, 2, 1, 1),
                   heads=(2, 2, 4, 5), sr_ratios=(4, 2, 2, 1), patch_sizes=(7, 3, 3, 3),
                   strides=(4, 2, 2, 2), mlp_ratios=(4, 2, 2, 4), decoder_dim=24, in_channels=3)
B0_CONFIG = dict(name="b0", hidden_sizes=(32, 64, 160, 256), depths=(2, 2, 2, 2),
                 heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1), patch_sizes=(7, 3, 3, 3),
                 strides=(4, 2, 2, 2), mlp_ratios=(4, 4, 4, 4), decoder_dim=256, in_channels=3)


# ----------------------------------------------------------------------------- state dicts


def _linear(rng, out_f, in_f, prefix):
    return {f"{prefix}weight": rng.normal(0, in_f ** -0.5, (out_f, in_f)),
            f"{prefix}bias": rng.normal(0, 0.1, (out_f,))}


def _norm(rng, dim, prefix):
    return {f"{prefix}weight": 1.0 + rng.normal(0, 0.1, (dim,)),
            f"{prefix}bias": rng.normal(0, 0.1, (dim,))}


def _conv(rng, out_c, in_c, k, prefix, *, bias=True, groups=1):
    fan_in = in_c // groups * k * k
    out = {f"{prefix}weight": rng.normal(0, fan_in ** -0.5, (out_c, in_c // groups, k, k))}
    if bias:
        out[f"{prefix}bias"] = rng.normal(0, 0.1, (out_c,))
    return out


def patch_embed_state(rng, *, in_channels, dim, patch_size, stride, prefix=""):
    """OverlapPatchEmbed: proj (Conv2d in_channels -> dim, patch_size), norm (LayerNorm dim)."""
    del stride  # no parameter depends on it
    return {**_conv(rng, dim, in_channels, patch_size, f"{prefix}proj."),
            **_norm(rng, dim, f"{prefix}norm.")}


def attention_state(rng, *, dim, heads, sr_ratio, prefix=""):
    """EfficientSelfAttention: query/key/value/proj Linear; sr Conv2d + norm when sr_ratio > 1."""
    del heads
    out = {}
    for name in ("query", "key", "value"):
        out.update(_linear(rng, dim, dim, f"{prefix}{name}."))
    if sr_ratio > 1:
        out.update(_conv(rng, dim, dim, sr_ratio, f"{prefix}sr."))
        out.update(_norm(rng, dim, f"{prefix}norm."))
    out.update(_linear(rng, dim, dim, f"{prefix}proj."))
    return out


def mix_ffn_state(rng, *, dim, hidden_dim, prefix=""):
    """MixFFN: fc1 Linear, dwconv depthwise 3x3 Conv2d, fc2 Linear."""
    return {**_linear(rng, hidden_dim, dim, f"{prefix}fc1."),
            **_conv(rng, hidden_dim, hidden_dim, 3, f"{prefix}dwconv.", groups=hidden_dim),
            **_linear(rng, dim, hidden_dim, f"{prefix}fc2.")}


def block_state(rng, *, dim, heads, sr_ratio, mlp_ratio, drop_path=0.0, prefix=""):
    """SegFormerBlock: norm1, attn, norm2, ffn (hidden width int(dim * mlp_ratio))."""
    del drop_path
    return {**_norm(rng, dim, f"{prefix}norm1."),
            **attention_state(rng, dim=dim, heads=heads, sr_ratio=sr_ratio,
                              prefix=f"{prefix}attn."),
            **_norm(rng, dim, f"{prefix}norm2."),
            **mix_ffn_state(rng, dim=dim, hidden_dim=int(dim * mlp_ratio),
                            prefix=f"{prefix}ffn.")}


def decoder_state(rng, *, in_dims, dim, num_classes, prefix=""):
    """AllMLPDecoder: linear_c.i Linear, fuse.0 1x1 conv (no bias), fuse.1 BatchNorm, classifier."""
    out = {}
    for i, c in enumerate(in_dims):
        out.update(_linear(rng, dim, c, f"{prefix}linear_c.{i}."))
    out.update(_conv(rng, dim, len(in_dims) * dim, 1, f"{prefix}fuse.0.", bias=False))
    out.update(_norm(rng, dim, f"{prefix}fuse.1."))
    out[f"{prefix}fuse.1.running_mean"] = rng.normal(0, 0.1, (dim,))
    out[f"{prefix}fuse.1.running_var"] = rng.uniform(0.5, 1.5, (dim,))
    out[f"{prefix}fuse.1.num_batches_tracked"] = np.array([10], dtype=np.int64)  # () in torch
    out.update(_conv(rng, num_classes, dim, 1, f"{prefix}classifier."))
    return out


def segformer_state(rng, config: dict, num_classes: int) -> dict[str, np.ndarray]:
    """The scaffold's full state dict (labkit names) for a MitConfig given as a dict."""
    out = {}
    for i, dim in enumerate(config["hidden_sizes"]):
        in_ch = config["in_channels"] if i == 0 else config["hidden_sizes"][i - 1]
        out.update(patch_embed_state(rng, in_channels=in_ch, dim=dim,
                                     patch_size=config["patch_sizes"][i],
                                     stride=config["strides"][i],
                                     prefix=f"stages.{i}.patch_embed."))
        for j in range(config["depths"][i]):
            out.update(block_state(rng, dim=dim, heads=config["heads"][i],
                                   sr_ratio=config["sr_ratios"][i],
                                   mlp_ratio=config["mlp_ratios"][i],
                                   prefix=f"stages.{i}.blocks.{j}."))
        out.update(_norm(rng, dim, f"stages.{i}.norm."))
    out.update(decoder_state(rng, in_dims=config["hidden_sizes"], dim=config["decoder_dim"],
                             num_classes=num_classes, prefix="decoder."))
    return out


def _weights(state: dict) -> dict[str, np.ndarray]:
    return {f"w.{k}": (v.astype(np.float32) if v.dtype.kind == "f" else v)
            for k, v in state.items()}


def _x(rng, shape, scale=1.0):
    return (rng.normal(0, scale, size=shape)).astype(np.float32)


# ----------------------------------------------------------------------------- calls


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds.

    Every call grades one exercise (``Call.exercise``): its child runs the reference for the four
    other classes. The whole-model calls are made once per exercise (``model_*_<k>``, ``k`` the
    exercise's position), so a mistake in one part costs only that part's share of them.
    """
    rng = np.random.default_rng(2026)
    calls = []

    def part(cid, probe, state_fn, config, arrays, exercise, **params):
        calls.append(Call(cid, probe, {**_weights(state_fn(rng, **config)), **arrays},
                          {"config": config, **params}, exercise=exercise))

    # OverlapPatchEmbed: stage-1 settings on a non-square image; 3x3 stride 2, 5 channels, odd
    part("embed_stage1", "patch_embed", patch_embed_state,
         dict(in_channels=3, dim=16, patch_size=7, stride=4),
         {"images": _x(rng, (2, 3, 32, 48))}, EMBED)
    part("embed_odd", "patch_embed", patch_embed_state,
         dict(in_channels=5, dim=12, patch_size=3, stride=2),
         {"images": _x(rng, (1, 5, 15, 21))}, EMBED)
    # EfficientSelfAttention: 2 heads sr 2; sr 1 (no .sr); odd map with sr 4; 8 heads of 3
    for cid, cfg, (h, w) in (
        ("attn_sr2", dict(dim=16, heads=2, sr_ratio=2), (8, 6)),
        ("attn_sr1", dict(dim=16, heads=2, sr_ratio=1), (5, 7)),
        ("attn_odd", dict(dim=20, heads=4, sr_ratio=4), (9, 7)),
        ("attn_heads", dict(dim=24, heads=8, sr_ratio=2), (6, 10)),
        ("attn_one_head", dict(dim=8, heads=1, sr_ratio=8), (16, 16)),
    ):
        part(cid, "tokens_module", attention_state, cfg,
             {"tokens": _x(rng, (2, h * w, cfg["dim"]))}, ATTN, cls=ATTN, hw=[h, w])
    # MixFFN
    part("ffn_basic", "tokens_module", mix_ffn_state, dict(dim=16, hidden_dim=64),
         {"tokens": _x(rng, (2, 24, 16))}, FFN, cls=FFN, hw=[4, 6])
    part("ffn_odd", "tokens_module", mix_ffn_state, dict(dim=8, hidden_dim=20),
         {"tokens": _x(rng, (1, 35, 8))}, FFN, cls=FFN, hw=[7, 5])
    # SegFormerBlock (eval mode: drop_path is the identity)
    part("block_basic", "tokens_module", block_state,
         dict(dim=16, heads=2, sr_ratio=2, mlp_ratio=4, drop_path=0.0),
         {"tokens": _x(rng, (2, 64, 16))}, BLOCK, cls=BLOCK, hw=[8, 8])
    part("block_sr1_droppath", "tokens_module", block_state,
         dict(dim=24, heads=3, sr_ratio=1, mlp_ratio=2, drop_path=0.2),
         {"tokens": _x(rng, (2, 35, 24))}, BLOCK, cls=BLOCK, hw=[5, 7])
    # AllMLPDecoder: even maps; odd maps; a fuse layer that reads only the stage-4 slot
    part("decoder_basic", "decoder", decoder_state,
         dict(in_dims=[8, 16, 24, 32], dim=16, num_classes=5),
         {f"feat{i}": _x(rng, (2, c, 16 // 2**i, 24 // 2**i))
          for i, c in enumerate([8, 16, 24, 32])}, DECODER)
    part("decoder_odd", "decoder", decoder_state,
         dict(in_dims=[4, 8, 12, 16], dim=8, num_classes=3),
         {f"feat{i}": _x(rng, (1, c, s[0], s[1]))
          for i, (c, s) in enumerate(zip([4, 8, 12, 16], [(13, 9), (7, 5), (4, 3), (2, 2)],
                                         strict=True))}, DECODER)
    order_cfg = dict(in_dims=[6, 6, 6, 6], dim=6, num_classes=2)
    order_state = decoder_state(rng, **order_cfg)
    order_state["fuse.0.weight"][:, 6:] = 0.0  # only the first slot (stage 4 in HF's order)
    calls.append(Call("decoder_order", "decoder", {
        **_weights(order_state),
        **{f"feat{i}": _x(rng, (1, 6, 8 // 2**i, 8 // 2**i)) for i in range(4)}},
        {"config": order_cfg}, exercise=DECODER))
    # the whole model, once per exercise (same weights and images for every exercise):
    # B0 on a non-square image, a tiny custom encoder at an odd size, gradients in train mode
    # (tests/labs/test_lab03.py checks that the reference logits are Hugging Face's)
    b0 = {**_weights(segformer_state(rng, B0_CONFIG, 3)), "images": _x(rng, (1, 3, 64, 96))}
    tiny = {**_weights(segformer_state(rng, TINY_CONFIG, 4)), "images": _x(rng, (2, 3, 45, 61))}
    grad = {"images": _x(rng, (2, 3, 32, 32)), "targets": rng.integers(0, 4, (2, 32, 32))}
    for k, name in enumerate(NAMES, start=1):
        calls.append(Call(f"model_b0_{k}", "model", b0,
                          {"config": B0_CONFIG, "num_classes": 3, "part": name},
                          exercise=name))
        calls.append(Call(f"model_tiny_odd_{k}", "model", tiny,
                          {"config": TINY_CONFIG, "num_classes": 4, "part": name},
                          exercise=name))
        calls.append(Call(f"model_grad_{k}", "model_grad", grad,
                          {"config": TINY_CONFIG, "num_classes": 4, "part": name},
                          exercise=name))
    return calls


LAB = LabSpec("lab03", "lab03_segformer", EXERCISES, make_calls,
              title="SegFormer from scratch, matched against Hugging Face")
