"""Lab 06 (Vision Transformer): exercises and public checks. The modules get fixed weights by
parameter name (the stub's names are the specification) and run in eval mode; each CutMix draw
is checked against its inputs (one box from the permuted batch, lam = the share left)."""

import numpy as np

from labkit.checking import spec as S
from labkit.checking.spec import Check, Exercise, Fail, Gen, Lab, probe, same

_ATTENTION = ("MultiheadAttention", "scaled_dot_product_attention", "multi_head_attention_forward",
              "TransformerEncoderLayer", "TransformerEncoder", "timm")
EXERCISES = (
    Exercise("PatchEmbed", (), kind="class", forbidden=("timm",)),
    Exercise("MultiHeadSelfAttention", (), kind="class", forbidden=_ATTENTION),
    Exercise("EncoderBlock", (), kind="class", forbidden=_ATTENTION),
    Exercise("ViT", (), kind="class", forbidden=_ATTENTION + ("VisionTransformer",)),
    Exercise("cutmix", ("images", "targets", "alpha"), forbidden=("CutMix", "timm")),
    Exercise("cutmix_loss", ("logits", "targets_a", "targets_b", "lam")),
    Exercise("attention_rollout", ("attentions",), forbidden=("pytorch_grad_cam",)),
)
PE, MHSA, BLOCK, VIT, CUTMIX, LOSS, ROLLOUT = (e.name for e in EXERCISES)
SMALL_VIT = dict(img_size=32, patch_size=8, num_classes=10, dim=16, depth=2, heads=2, mlp_ratio=2)
FWA, CONV = "forward_with_attention", "nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)"
OUTPUTS = {  # exercise: the outputs compared with the solution's (key, what, hint)
    PE: [("forward", "the tokens (B, N, dim)", "patches in row-major order")],
    MHSA: [("forward.1", "attn (B, heads, N, N)", "(out, attn) = forward(x); q, k, v = qkv(x) as "
            "(B, N, 3, heads, head_dim); softmax(q @ k^T / sqrt(head_dim)) over the keys"),
           ("forward.0", "out (B, N, dim)", "dropout(attn) @ v, heads concatenated head-major, "
            "proj; nn.Dropout is off in eval mode")],
    BLOCK: [("forward.1", "attn (B, heads, N, N)", "(x, attn) = forward(x)"),
            ("forward.0", "x (B, N, dim)", "pre-norm: x + drop_path(attn(norm1(x))), then x + "
             "drop_path(mlp(norm2(x)))")],
    VIT: [("forward", "the logits", "head(norm(x)[:, 0]): the class token after the final norm"),
          (f"{FWA}.0", f"the logits of {FWA}", "")],
}


def built(cls, config, *args, checks=None, **opts):
    """``cls(**config)`` with fixed weights in eval mode on ``args``: names and shapes, then
    ``checks`` (default ``OUTPUTS[cls]``; (key, what, hint): an output at float32 precision)."""
    w = cls + "(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"

    return S.loaded(cls, config, *args, **opts).expect(S.param_names("params", w), *[
        same(c[0], f"{w}: {c[1]}", rtol=1e-4, atol=2e-5, dtype="f", hint=c[2] and f"({c[2]})")
        if isinstance(c, tuple) else c for c in (OUTPUTS[cls] if checks is None else checks)])


mhsa = lambda dim, heads, n, b, dropout=0.0: built(
    MHSA, dict(dim=dim, heads=heads, dropout=dropout), S.normal((b, n, dim)))
block = lambda dim, heads, r, n, **extra: built(
    BLOCK, dict(dim=dim, heads=heads, mlp_ratio=r, **extra), S.normal((2, n, dim)))


def patch_embed(img, p, c, dim, b):
    return built(PE, dict(img_size=img, patch_size=p, in_channels=c, dim=dim),
                 S.uniform((b, c, img, img)), attrs=["proj", "proj.stride", "num_patches"], checks=[
        same("attr.proj.type", "the class of PatchEmbed.proj", hint=f"(the stub asks for {CONV})"),
        same("attr.proj.stride.0", "PatchEmbed.proj.stride", hint=f"(no overlap: {CONV})"),
        same("attr.num_patches", "PatchEmbed.num_patches", hint="((img_size // patch_size)**2)"),
        *OUTPUTS[PE]])


def vit(cfg, pos=True, maps=False):
    count = same(f"{FWA}.1.len", f"the number of maps {FWA} returns", hint="(one per block)")
    return built(VIT, dict(cfg, pos_embed=pos), S.uniform((2, 3, 32, 32)), methods=[
        "forward", FWA], checks=OUTPUTS[VIT] + [count] * maps + [
        (f"{FWA}.1.{i}", f"the map of block {i}", "(B, heads, N+1, N+1)")
        for i in range(maps * cfg["depth"])])


def _draws(got, n):
    """The ``n`` draws of a ``cutmix_draws`` call: (mixed_images, targets_a, targets_b, lam)."""
    out = [got.arrays.get(k) for k in ("mixed_images", "targets_a", "targets_b")]
    if any(np.shape(x)[:1] != (n,) for x in out + [got.values.get("lam")]):
        raise Fail("cutmix must return (mixed_images, targets_a, targets_b, lam).")
    return list(zip(*out, got.values["lam"]))


def draws(got, call):
    """Every draw of a ``cutmix_draws`` call checked against its inputs: one box pasted from the
    permuted batch, lam = the share left; (boxes (y1, y2, x1, x2), lams) where images moved."""
    inputs, a = call.materialize()[0], got.arrays
    images, targets = inputs["images"], inputs["targets"]
    if not (np.array_equal(a.get("after.0"), images) and np.array_equal(a.get("after.1"), targets)):
        raise Fail("cutmix modified its inputs in place: paste into a copy (images.clone()).")
    boxes, lams = [], []
    for (mixed, ta, tb, lam), seed in zip(_draws(got, len(call.args["seeds"])), call.args["seeds"]):
        where = f"seed {seed}"
        if mixed.shape != images.shape or not np.array_equal(ta, targets) or sorted(
                tb.tolist()) != sorted(targets.tolist()):
            raise Fail("cutmix must return mixed_images of the images' shape, targets_a = targets "
                       f"and targets_b = targets[perm] for a permutation perm (generator {where}).")
        perm = np.argsort(targets)[np.searchsorted(np.sort(targets), tb)]
        moved = perm != np.arange(len(perm))
        if not moved.any():
            continue
        ys, xs = np.nonzero((mixed[moved] != images[moved]).any(axis=(0, 1)))  # the pasted box
        y1, y2, x1, x2 = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else [0] * 4
        box = np.zeros(images.shape[-2:], dtype=bool)
        box[y1:y2, x1:x2] = True
        if not np.array_equal(mixed, np.where(box, images[perm], images)):
            raise Fail("mixed_images must be the images with one rectangle (the same for every "
                       "image, all channels) pasted from the image that targets_b names, the "
                       f"other pixels untouched (generator {where}).")
        if not abs(lam - (1 - box.mean())) < 1e-6:
            raise Fail(f"lam must be 1 - (box area) / (H * W) of the clipped box: the box (y1, y2,"
                       f" x1, x2) = {(int(y1), int(y2), int(x1), int(x2))} leaves "
                       f"{1 - box.mean():.6f}, lam is {lam:.6f} (generator {where}).")
        boxes, lams = boxes + [(y1, y2, x1, x2)], lams + [lam]
    if not boxes:
        raise Fail("cutmix never moved a pixel between images: is the batch permuted?")
    return np.array(boxes, dtype=np.float64), np.array(lams)


def _seeded(got, call):
    """Generator seeds 7, 7, 8: the first two draws alike, the third different."""
    d = [(mixed, tb, lam) for mixed, _, tb, lam in _draws(got, 3)]
    alike = [all(np.array_equal(x, y) for x, y in zip(d[0], d[i])) for i in (1, 2)]
    if not alike[0]:
        raise Fail("two calls with generators seeded alike gave different results: draw every "
                   "random number from `generator` (lam, the permutation and the box centre).")
    if alike[1]:
        raise Fail("a different generator seed gave the same result.")


def cutmix_draws(shape, alpha, seeds, check=draws):
    """cutmix with a generator seeded by each of ``seeds``, then ``check(got, call)``."""
    targets = Gen(lambda rng, b: rng.permutation(np.arange(10, 10 + b)), (shape[0],))
    call = probe("cutmix_draws", images=S.uniform(shape), targets=targets, alpha=alpha,
                 seeds=list(seeds))
    return call.expect(lambda got, ref: check(got, call))


def loss(lam):
    return S.fn(LOSS, S.Grad(S.normal((6, 10), 2.0)), *[S.integers((6,), 0, 10)] * 2, lam).expect(
        S.scalar("out", "cutmix_loss"),
        same("out", f"cutmix_loss at lam={lam}", hint="(lam * CE(logits, targets_a) + (1 - lam) "
             "* CE(logits, targets_b), each the mean over the batch)"),
        same("grad.args.0", "the gradient of cutmix_loss w.r.t. the logits", rtol=1e-4,
             dtype="f", hint="(compute the loss with differentiable operations: F.cross_entropy)"))


def rollout(layers, b, heads, n, fusion="mean", discard=0.0):
    return S.fn(ROLLOUT, [S.uniform((b, heads, n, n))] * layers, head_fusion=fusion,
                discard_ratio=discard).after().expect(
        *[same(f"after.0.{i}", f"the attention map of layer {i} after the call", rtol=0, atol=0,
               hint="(attention_rollout must not modify its input)") for i in range(layers)],
        same("out", f"the mask (B, N-1) of {layers} layers (head_fusion={fusion!r}, discard_ratio"
             f"={discard})", rtol=1e-4, dtype="f", hint="(per layer: fuse the heads, discard, "
             "(A + I) / 2, each row divided by its sum; R = A_L ... A_2 A_1, each new layer "
             "multiplied from the left; mask = R[:, 0, 1:] / its max per image)"))


CHECKS = [Check(*c) for c in [
    ("1.1", PE, "32x32 RGB, patch 4 -> (B, 64, dim) tokens", 2, patch_embed(32, 4, 3, 16, 2)),
    ("2.1", MHSA, "dim 16, 4 heads: output and attention weights", 2, mhsa(16, 4, 7, 2)),
    ("3.1", BLOCK, "pre-norm attention and MLP with residuals", 2, block(16, 2, 4.0, 6)),
    ("4.1", VIT, "logits of a 2-block ViT (patch 8, class token, positional embedding)", 2,
     vit(SMALL_VIT)),
    ("4.2", VIT, "forward_with_attention returns one (B, heads, N+1, N+1) map per block", 1,
     vit(SMALL_VIT, maps=True)),
    ("5.1", CUTMIX, "one box pasted from the permuted batch; lam = 1 - box area", 2,
     cutmix_draws((6, 3, 16, 16), 1.0, range(1000, 1010))),
    ("5.2", CUTMIX, "the same generator seed gives the same mix, another seed a different one",
     1, cutmix_draws((4, 3, 16, 16), 1.0, (7, 7, 8), _seeded)),
    ("6.1", LOSS, "lam * CE(targets_a) + (1 - lam) * CE(targets_b)", 1, loss(0.37)),
    ("7.1", ROLLOUT, "mean over heads, 3 layers", 2, rollout(3, 2, 4, 17)),
    ("7.2", ROLLOUT, "max over heads", 1, rollout(3, 2, 4, 17, "max")),
]]
LAB = Lab("lab06_vit", "Vision Transformer on CIFAR-100 from scratch", EXERCISES, CHECKS)
