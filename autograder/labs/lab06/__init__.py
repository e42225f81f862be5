"""Lab 06 (Vision Transformer on CIFAR-100) grading: exercises, deterministic probe inputs, spec.

The modules are graded by value: the parent makes a seeded state dict with the parameter names and
shapes the stubs specify, the probe loads it into the student's module (every parameter must
match by name and shape) and runs it on fixed inputs in eval mode. CutMix is random, so it is
graded by structure (box, pixels, labels, lam, computed in the parent from every returned draw)
and by the statistics of many seeded draws. Every call names the one exercise it grades; in its
child every other exercise is the reference implementation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

_TORCH_ATTENTION = ("MultiheadAttention", "scaled_dot_product_attention",
                    "multi_head_attention_forward", "TransformerEncoderLayer",
                    "TransformerEncoder", "timm")

EXERCISES = (
    Exercise("PatchEmbed", (), kind="class", forbidden=("timm",)),
    Exercise("MultiHeadSelfAttention", (), kind="class", forbidden=_TORCH_ATTENTION),
    Exercise("EncoderBlock", (), kind="class", forbidden=_TORCH_ATTENTION),
    Exercise("ViT", (), kind="class", forbidden=_TORCH_ATTENTION + ("VisionTransformer",)),
    Exercise("cutmix", ("images", "targets", "alpha"), forbidden=("CutMix", "timm")),
    Exercise("cutmix_loss", ("logits", "targets_a", "targets_b", "lam")),
    Exercise("attention_rollout", ("attentions",), forbidden=("pytorch_grad_cam",)),
)

# CutMix statistics over draws, measured on the solution with 20,000 draws of (4, 1, 16, 16)
# batches; a student's own (correct) RNG use gives another sample, so the checks use tolerances
# of 5 or more standard errors of a 300-draw sample (bootstrap of the solution's draws)
CUTMIX_DRAWS = 300
CUTMIX_STATS_SHAPE = (4, 1, 16, 16)
CUTMIX_STATS = {  # alpha: (mean lam, std lam, share of draws with an empty box)
    0.1: (0.756, 0.240, 0.342),
    1.0: (0.724, 0.175, 0.016),
    50.0: (0.713, 0.088, 0.0),
}
CUTMIX_CENTRE_STD = 3.5  # std of the box centre's x over draws (pixels, 16 wide), alpha 1


def _linear(rng, out_f, in_f, prefix):
    return {f"{prefix}weight": rng.normal(0, in_f ** -0.5, (out_f, in_f)),
            f"{prefix}bias": rng.normal(0, 0.1, (out_f,))}


def _norm(rng, dim, prefix):
    return {f"{prefix}weight": 1.0 + rng.normal(0, 0.1, (dim,)),
            f"{prefix}bias": rng.normal(0, 0.1, (dim,))}


def patch_embed_state(rng, *, patch_size, in_channels, dim, prefix=""):
    """Parameters of PatchEmbed: proj (Conv2d in_channels -> dim, kernel = stride = patch)."""
    fan_in = in_channels * patch_size * patch_size
    return {f"{prefix}proj.weight": rng.normal(0, fan_in ** -0.5,
                                               (dim, in_channels, patch_size, patch_size)),
            f"{prefix}proj.bias": rng.normal(0, 0.1, (dim,))}


def attention_state(rng, *, dim, prefix=""):
    """Parameters of MultiHeadSelfAttention: qkv Linear(dim, 3 dim), proj Linear(dim, dim)."""
    return {**_linear(rng, 3 * dim, dim, f"{prefix}qkv."),
            **_linear(rng, dim, dim, f"{prefix}proj.")}


def block_state(rng, *, dim, mlp_ratio, prefix=""):
    """Parameters of EncoderBlock: norm1, attn, norm2, mlp.0 Linear(dim, hidden), mlp.3."""
    hidden = int(dim * mlp_ratio)
    return {**_norm(rng, dim, f"{prefix}norm1."), **attention_state(rng, dim=dim,
                                                                   prefix=f"{prefix}attn."),
            **_norm(rng, dim, f"{prefix}norm2."), **_linear(rng, hidden, dim, f"{prefix}mlp.0."),
            **_linear(rng, dim, hidden, f"{prefix}mlp.3.")}


def vit_state(rng, *, img_size, patch_size, num_classes, dim, depth, mlp_ratio, pos_embed):
    """Parameters of ViT with the names of the stub (pos_embed only when ``pos_embed``)."""
    n = (img_size // patch_size) ** 2
    state = {"cls_token": rng.normal(0, 0.5, (1, 1, dim))}
    if pos_embed:
        state["pos_embed"] = rng.normal(0, 0.5, (1, n + 1, dim))
    state.update(patch_embed_state(rng, patch_size=patch_size, in_channels=3, dim=dim,
                                   prefix="patch_embed."))
    for i in range(depth):
        state.update(block_state(rng, dim=dim, mlp_ratio=mlp_ratio, prefix=f"blocks.{i}."))
    state.update(_norm(rng, dim, "norm."))
    state.update(_linear(rng, num_classes, dim, "head."))
    return state


def _weights(state):
    """State-dict arrays as probe inputs: float32, keys prefixed with "w." (the probe strips it)."""
    return {f"w.{k}": np.asarray(v, dtype=np.float32) for k, v in state.items()}


def _images(rng, shape):
    return rng.random(shape).astype(np.float32)


def _attentions(rng, layers, batch, heads, n, sharp=2.0):
    """Random attention maps: a list stacked as (L, B, heads, N, N), rows soft-maxed."""
    logits = rng.normal(0, sharp, (layers, batch, heads, n, n))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds."""
    rng = np.random.default_rng(606)
    calls = []
    # 1. PatchEmbed
    for cid, img, p, c, d, b in (("pe_base", 32, 4, 3, 16, 2), ("pe_patch2_gray", 16, 2, 1, 8, 3),
                                 ("pe_patch8", 24, 8, 3, 12, 2)):
        calls.append(Call(cid, "patch_embed", {
            **_weights(patch_embed_state(rng, patch_size=p, in_channels=c, dim=d)),
            "images": _images(rng, (b, c, img, img))},
            {"config": dict(img_size=img, patch_size=p, in_channels=c, dim=d)},
            exercise="PatchEmbed"))
    # 2. MultiHeadSelfAttention
    for cid, d, h, n, b, drop in (("mhsa_base", 16, 4, 7, 2, 0.0),
                                  ("mhsa_one_head", 12, 1, 5, 2, 0.0),
                                  ("mhsa_dropout_eval", 16, 2, 9, 3, 0.5),
                                  ("mhsa_many_heads", 32, 8, 4, 1, 0.0)):
        calls.append(Call(cid, "attention", {
            **_weights(attention_state(rng, dim=d)),
            "x": rng.normal(0, 1, (b, n, d)).astype(np.float32)},
            {"config": dict(dim=d, heads=h, dropout=drop)}, exercise="MultiHeadSelfAttention"))
    # 3. EncoderBlock
    for cid, d, h, r, n, extra in (("block_base", 16, 2, 4.0, 6, {}),
                                   ("block_drop_eval", 16, 4, 2.0, 5,
                                    {"dropout": 0.2, "drop_path": 0.5}),
                                   ("block_ratio", 12, 3, 1.5, 4, {})):
        calls.append(Call(cid, "block", {
            **_weights(block_state(rng, dim=d, mlp_ratio=r)),
            "x": rng.normal(0, 1, (2, n, d)).astype(np.float32)},
            {"config": dict(dim=d, heads=h, mlp_ratio=r, **extra)}, exercise="EncoderBlock"))
    calls.append(Call("block_train_mode", "block_train_mode", {
        **_weights(block_state(rng, dim=8, mlp_ratio=2.0)),
        "x": rng.normal(0, 1, (2, 5, 8)).astype(np.float32)},
        {"config": dict(dim=8, heads=2, mlp_ratio=2.0)}, exercise="EncoderBlock"))
    # 4. ViT
    vit_small = dict(img_size=32, patch_size=8, num_classes=10, dim=16, depth=2, heads=2,
                     mlp_ratio=2.0)
    vit_cases = (
        ("vit_base", vit_small, True),
        ("vit_no_pos", vit_small, False),
        ("vit_patch2", dict(img_size=32, patch_size=2, num_classes=5, dim=8, depth=1, heads=2,
                            mlp_ratio=2.0), True),
        ("vit_patch4", dict(img_size=32, patch_size=4, num_classes=7, dim=12, depth=2, heads=3,
                            mlp_ratio=1.0), True),
    )
    for cid, cfg, pos in vit_cases:
        state = vit_state(rng, pos_embed=pos, **{k: v for k, v in cfg.items() if k != "heads"})
        calls.append(Call(cid, "vit", {**_weights(state), "images": _images(rng, (2, 3, 32, 32))},
                          {"config": dict(cfg, pos_embed=pos)}, exercise="ViT"))
    calls.append(Call("vit_default_size", "vit_size", {}, {}, exercise="ViT"))
    # 5. cutmix: every draw comes back whole (mixed images, targets, lam); the parent finds the
    # box and checks the pixels, and computes the statistics (small images: a few MB per call)
    for cid, alpha, shape, draws in (("cutmix_structure", 1.0, (8, 3, 32, 32), 12),
                                     ("cutmix_alpha1", 1.0, CUTMIX_STATS_SHAPE, CUTMIX_DRAWS),
                                     ("cutmix_alpha_small", 0.1, CUTMIX_STATS_SHAPE, CUTMIX_DRAWS),
                                     ("cutmix_alpha_large", 50.0, CUTMIX_STATS_SHAPE,
                                      CUTMIX_DRAWS),
                                     ("cutmix_nonsquare", 1.0, (4, 2, 24, 40), 20)):
        calls.append(Call(cid, "cutmix_draws", {
            "images": _images(rng, shape),
            "targets": rng.permutation(np.arange(10, 10 + shape[0])).astype(np.int64)},
            {"alpha": alpha, "draws": draws}, exercise="cutmix"))
    calls.append(Call("cutmix_generator", "cutmix_determinism", {
        "images": _images(rng, (8, 3, 32, 32)), "targets": np.arange(8, dtype=np.int64)},
        {"alpha": 1.0}, exercise="cutmix"))
    # 6. cutmix_loss
    for cid, lam in (("loss_mid", 0.37), ("loss_lam0", 0.0), ("loss_lam1", 1.0)):
        calls.append(Call(cid, "mixed_loss", {
            "logits": rng.normal(0, 2, (6, 10)).astype(np.float32),
            "targets_a": rng.integers(0, 10, 6).astype(np.int64),
            "targets_b": rng.integers(0, 10, 6).astype(np.int64)}, {"lam": lam},
            exercise="cutmix_loss"))
    # 7. attention_rollout
    for cid, (layers, b, h, n), fusion, discard in (
            ("rollout_mean", (3, 2, 4, 17), "mean", 0.0),
            ("rollout_max", (3, 2, 4, 17), "max", 0.0),
            ("rollout_min_discard", (2, 2, 3, 10), "min", 0.5),
            ("rollout_single_layer", (1, 3, 2, 5), "mean", 0.0),
            ("rollout_max_discard", (4, 1, 2, 17), "max", 0.9)):
        calls.append(Call(cid, "rollout", {"attentions": _attentions(rng, layers, b, h, n)},
                          {"head_fusion": fusion, "discard_ratio": discard},
                          exercise="attention_rollout"))
    state = vit_state(rng, pos_embed=True, **{k: v for k, v in vit_small.items() if k != "heads"})
    calls.append(Call("rollout_pipeline", "rollout_pipeline",
                      {**_weights(state), "images": _images(rng, (2, 3, 32, 32))},
                      {"config": dict(vit_small, pos_embed=True)}, exercise="attention_rollout"))
    return calls



@lru_cache(maxsize=1)
def _inputs_by_id() -> dict[str, dict[str, np.ndarray]]:
    return {call.id: call.arrays for call in make_calls()}


def call_inputs(call_id: str) -> dict[str, np.ndarray]:
    """The input arrays of one call (the checks analyse CutMix draws against them)."""
    return _inputs_by_id()[call_id]


LAB = LabSpec("lab06", "lab06_vit", EXERCISES, make_calls,
              title="Vision Transformer on CIFAR-100 from scratch")
