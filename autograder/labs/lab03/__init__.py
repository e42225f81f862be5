"""Lab 03 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

from dataclasses import asdict

from labkit.checking.lab03 import ATTN, BLOCK, DECODER, EMBED, FFN, PARTS, SHARE, part, whole
from labkit.checking.spec import Check, normal
from labkit.models.segformer import get_config

# a small custom encoder (heads > 1 from stage 1, odd sizes)
TINY = dict(name="tiny", hidden_sizes=(16, 24, 32, 40), depths=(1, 2, 1, 1), heads=(2, 2, 4, 5),
            sr_ratios=(4, 2, 2, 1), patch_sizes=(7, 3, 3, 3), strides=(4, 2, 2, 2),
            mlp_ratios=(4, 2, 2, 4), decoder_dim=24, in_channels=3)
HEADS = "(head h holds channels h*d:(h+1)*d of query/key/value)"
HIDDEN = [
    Check("1.2", EMBED, "3x3 stride 2, 5 input channels, odd 15x21 image", 1,
          part(EMBED, dict(in_channels=5, dim=12, patch_size=3, stride=2), normal((1, 5, 15, 21)))),
    Check("2.2", ATTN, "sr_ratio 1 (no .sr / .norm layers)", 1,
          part(ATTN, dict(dim=16, heads=2, sr_ratio=1), normal((2, 35, 16)), 5, 7,
               hint="(with sr_ratio 1 keys and values come from x itself)")),
    Check("2.3", ATTN, "odd 9x7 map with sr_ratio 4 (the reduction floors)", 1,
          part(ATTN, dict(dim=20, heads=4, sr_ratio=4), normal((2, 63, 20)), 9, 7)),
    Check("2.4", ATTN, "8 heads of size 3 (head split and merge order)", 1,
          part(ATTN, dict(dim=24, heads=8, sr_ratio=2), normal((2, 60, 24)), 6, 10, hint=HEADS),
          part(ATTN, dict(dim=8, heads=1, sr_ratio=8), normal((2, 256, 8)), 16, 16)),
    Check("3.2", FFN, "odd 7x5 map, hidden width 20", 1,
          part(FFN, dict(dim=8, hidden_dim=20), normal((1, 35, 8)), 7, 5)),
    Check("4.2", BLOCK, "sr_ratio 1, 3 heads, mlp_ratio 2, drop_path 0.2 in eval mode", 1,
          part(BLOCK, dict(dim=24, heads=3, sr_ratio=1, mlp_ratio=2, drop_path=0.2),
               normal((2, 35, 24)), 5, 7)),
    Check("5.2", DECODER, "odd maps 13x9, 7x5, 4x3, 2x2", 1,
          part(DECODER, dict(in_dims=[4, 8, 12, 16], dim=8, num_classes=3), [
              normal((1, c, h, w)) for c, (h, w) in zip((4, 8, 12, 16), ((13, 9), (7, 5), (4, 3),
                                                                        (2, 2)))])),
    Check("5.3", DECODER, "concatenation order (stage 4 first, as in Hugging Face)", 1,
          part(DECODER, dict(in_dims=[6, 6, 6, 6], dim=6, num_classes=2),
               [normal((1, 6, 8 >> i, 8 >> i)) for i in range(4)], zero=6,
               hint="(the fuse layer here reads only the first slot of the concatenation, which "
                    "must hold stage 4: concatenate in reverse stage order)")),
    *[Check(f"6.1.{k + 1}", ex, "your class in SegFormer-B0 reproduces Hugging Face's logits "
            "(1x3x64x96, < 1e-4; the other parts: reference)", 4 * SHARE[k],
            whole(k, asdict(get_config("b0")), 3, (1, 3, 64, 96))) for k, ex in enumerate(PARTS)],
    *[Check(f"6.2.{k + 1}", ex, "your class in SegFormer with a custom encoder (heads > 1 in "
            "every stage) at 45x61 vs Hugging Face (the other parts: reference)", 2 * SHARE[k],
            whole(k, TINY, 4, (2, 3, 45, 61))) for k, ex in enumerate(PARTS)],
    *[Check(f"6.3.{k + 1}", ex, "your class in SegFormer in train mode (drop_path 0.1): every "
            "parameter receives a gradient (the other parts: reference)", SHARE[k],
            whole(k, TINY, 4, (2, 3, 32, 32), train=True)) for k, ex in enumerate(PARTS)],
]
