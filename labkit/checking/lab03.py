"""Lab 03 (SegFormer from scratch): exercises and public checks.

Parts run with weights drawn from their names (:mod:`labkit.checking.lab03_probes`) and are
compared with the reference's outputs (1e-5). The whole model (labkit's scaffold around one
student part, the reference for the other four) is compared with the reference's logits (1e-4),
which are Hugging Face's with the same weights (tests/labs/test_lab03.py); those checks are
hidden: a self-check right after an exercise cannot build the model from classes not yet written.
"""

from labkit.checking import spec
from labkit.checking.spec import Check, Exercise, Lab, normal, probe, same

_HF = ("transformers", "timm", "mmseg", "SegformerForSemanticSegmentation", "SegformerModel")
_ATTENTION = _HF + ("MultiheadAttention", "scaled_dot_product_attention",
                    "multi_head_attention_forward", "TransformerEncoderLayer")
EXERCISES = (Exercise("OverlapPatchEmbed", (), "class", _HF),
             Exercise("EfficientSelfAttention", (), "class", _ATTENTION),
             Exercise("MixFFN", (), "class", _HF),
             Exercise("SegFormerBlock", (), "class", _ATTENTION),
             Exercise("AllMLPDecoder", (), "class", _HF))
PARTS = EMBED, ATTN, FFN, BLOCK, DECODER = tuple(e.name for e in EXERCISES)
SHARE = (0.125, 0.25, 0.125, 0.25, 0.25)  # of a whole-model check, per part (exact in binary)


def part(cls, config, *args, zero=0, hint=""):
    """``cls(**config)`` on ``args`` (eval mode): its parameters are the specification's, its
    output the reference's (for the patch embedding: tokens, and H', W' as Python ints)."""
    what = f"{cls}({', '.join(f'{k}={v}' for k, v in config.items())})"

    outputs = [same("out", f"{what}: output", rtol=1e-5, atol=1e-5, hint=hint)]
    if cls == EMBED:  # (tokens, H', W')
        hw = "(the size of the map after proj, Python ints; padding = patch_size // 2)"
        outputs = [same(f"out.{i}{t}", f"{what}.forward(x)[{i}]{' type' * bool(t)}", hint=hw)
                   for i in (1, 2) for t in ("", ".type")]
        outputs.append(same("out.0", f"{what}: tokens", rtol=1e-5, atol=1e-5))
    return probe("part", cls=cls, config=config, args=list(args), zero=zero).expect(
        spec.param_names("params", what, "follow the specification"), *outputs)


def whole(k, config, num_classes, size, train=False):
    """SegFormer with part ``k`` (the other four: the reference's): its parameters and logits,
    or in train mode, that every parameter gets a gradient."""
    what = f"SegFormer-{config['name']} with your {PARTS[k]}"
    call = probe("model", config=config, num_classes=num_classes, part=PARTS[k], train=train,
                 images=normal(size))
    if train:
        return call.expect(spec.shape("train", f"{what}: logits in train mode"),
                           spec.all_used(what))
    return call.expect(spec.param_shapes("params", what), same(
        "logits", f"{what}: logits vs Hugging Face's (max abs difference 1e-4)", rtol=0,
        atol=1e-4))


CHECKS = [
    Check("1.1", EMBED, "7x7 stride 4 on a 32x48 image (tokens, H, W)", 2,
          part(EMBED, dict(in_channels=3, dim=16, patch_size=7, stride=4), normal((2, 3, 32, 48)))),
    Check("2.1", ATTN, "2 heads, sr_ratio 2, 8x6 tokens", 3,
          part(ATTN, dict(dim=16, heads=2, sr_ratio=2), normal((2, 48, 16)), 8, 6)),
    Check("3.1", FFN, "dim 16, hidden 64, 4x6 tokens", 2,
          part(FFN, dict(dim=16, hidden_dim=64), normal((2, 24, 16)), 4, 6)),
    Check("4.1", BLOCK, "dim 16, 2 heads, sr_ratio 2, mlp_ratio 4 (eval mode)", 2,
          part(BLOCK, dict(dim=16, heads=2, sr_ratio=2, mlp_ratio=4, drop_path=0.0),
               normal((2, 64, 16)), 8, 8)),
    Check("5.1", DECODER, "4 maps at 16x24 ... 2x3, 5 classes (eval mode)", 2,
          part(DECODER, dict(in_dims=[8, 16, 24, 32], dim=16, num_classes=5),
               [normal((2, c, 16 >> i, 24 >> i)) for i, c in enumerate((8, 16, 24, 32))])),
]

LAB = Lab("lab03_segformer", "SegFormer from scratch, matched against Hugging Face",
          EXERCISES, CHECKS)
