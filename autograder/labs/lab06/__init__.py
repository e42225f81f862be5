"""Lab 06 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

import numpy as np

from labkit.checking import lab06 as L
from labkit.checking.spec import Check, Fail, module, normal, param_shapes, probe, same

# CutMix over 300 draws of (4, 1, 16, 16) batches, by alpha: the ranges are 5 or more standard
# errors of a 300-draw sample around the solution's statistics over 20,000 draws (bootstrap)
STATS = {1.0: {"mean of lam": (0.674, 0.774), "std of the box centres' x": (1.75, 16)},
         0.1: {"mean of lam": (0.686, 0.826), "std of lam": (0.19, 0.29),
               "share of draws that cut nothing": (0.22, 0.47)},
         50.0: {"mean of lam": (0.683, 0.743), "std of lam": (0.06, 0.12),
                "share of draws that cut nothing": (0.0, 0.01)}}


def _stats(got, call):
    alpha, (boxes, lams) = call.args["alpha"], L.draws(got, call)
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    measured = {"mean of lam": lams.mean(), "std of lam": lams.std(),
                "share of draws that cut nothing": (area == 0).mean(),
                "std of the box centres' x": ((boxes[:, 2] + boxes[:, 3]) / 2)[area > 0].std()}
    for what, (lo, hi) in STATS[alpha].items():
        if not lo <= measured[what] <= hi:
            raise Fail(f"alpha={alpha}: the {what} over {len(lams)} draws is {measured[what]:.3f}"
                       f", expected {lo} to {hi}: sample lam from Beta(alpha, alpha), the cut "
                       "ratio sqrt(1 - lam), a box centre uniform over the image, clip the box.")


def _train_mode(got, ref):
    x_eval, x_train = got.arrays.get("forward.0"), got.arrays.get("train")
    if x_eval is None or getattr(x_train, "shape", None) != x_eval.shape or not np.abs(
            x_train - x_eval.astype(np.float64)).max(initial=0.0) < 1e-5:
        raise Fail("with dropout=0 and drop_path=0, train mode must give the eval output x.")
    if not np.abs(got.arrays.get("grad.norm1.weight", 0.0)).sum() > 0:
        raise Fail("no gradient reaches norm1.weight: is norm1 used in forward?")


vit = lambda pos=True, **changes: L.vit(dict(L.SMALL_VIT, **changes), pos=pos, maps=True)
stats = lambda alpha: L.cutmix_draws((4, 1, 16, 16), alpha, range(1000, 1300), _stats)
PE, MHSA, BLOCK, VIT, CUTMIX, LOSS, ROLLOUT = (e.name for e in L.EXERCISES)
HIDDEN = [Check(number, exercise, title, 1, *steps) for number, exercise, title, *steps in [
    ("1.2", PE, "patch 2 on a one-channel 16x16 image (64 tokens)", L.patch_embed(16, 2, 1, 8, 3)),
    ("1.3", PE, "patch 8 on 24x24 images (9 tokens)", L.patch_embed(24, 8, 3, 12, 2)),
    ("2.2", MHSA, "heads=1: one head of size dim", L.mhsa(12, 1, 5, 2)),
    ("2.3", MHSA, "dropout=0.5 does nothing in eval mode", L.mhsa(16, 2, 9, 3, 0.5)),
    ("2.4", MHSA, "8 heads of size 4, batch of one", L.mhsa(32, 8, 4, 1)),
    ("3.2", BLOCK, "dropout and drop_path are the identity in eval mode",
     L.block(16, 4, 2.0, 5, dropout=0.2, drop_path=0.5)),
    ("3.3", BLOCK, "MLP hidden size int(dim * mlp_ratio) with mlp_ratio=1.5",
     L.block(12, 3, 1.5, 4)),
    ("3.4", BLOCK, "without dropout, train mode equals eval mode and gradients flow",
     L.built(BLOCK, dict(dim=8, heads=2, mlp_ratio=2.0), normal((2, 5, 8)),
             grads=["norm1.weight"], checks=[_train_mode])),
    ("4.3", VIT, "pos_embed=False has no positional parameter", vit(pos=False)),
    ("4.4", VIT, "patch 2 gives 256 patches + the class token",
     vit(patch_size=2, num_classes=5, dim=8, depth=1)),
    ("4.5", VIT, "patch 4 (64 patches), 3 heads, mlp_ratio 1",
     vit(patch_size=4, num_classes=7, dim=12, heads=3, mlp_ratio=1.0)),
    ("4.6", VIT, "ViT(): the default model has the specified number of parameters",
     module(VIT, {}).expect(param_shapes("model.params", "ViT()", "dim 192, depth 6"))),
    ("5.3", CUTMIX, "alpha=1, lam and box centres over 300 draws", stats(1.0)),
    ("5.4", CUTMIX, "alpha=0.1 (lam near 0 or 1: often no box at all)", stats(0.1)),
    ("5.5", CUTMIX, "alpha=50 (lam near 0.5 before clipping)", stats(50.0)),
    ("5.6", CUTMIX, "24x40 two-channel images (height and width differ)",
     L.cutmix_draws((4, 2, 24, 40), 1.0, range(1000, 1020))),
    ("6.2", LOSS, "lam = 0 and lam = 1, with gradients", L.loss(0.0), L.loss(1.0)),
    ("7.3", ROLLOUT, "min over heads with discard_ratio=0.5", L.rollout(2, 2, 3, 10, "min", 0.5)),
    ("7.4", ROLLOUT, "a single layer", L.rollout(1, 3, 2, 5)),
    ("7.5", ROLLOUT, "max fusion, discard_ratio=0.9, batch of one",
     L.rollout(4, 1, 2, 17, "max", 0.9)),
    ("7.6", ROLLOUT, "ViT.forward_with_attention + attention_rollout on a fixed model",
     probe("rollout_pipeline", config=dict(L.SMALL_VIT, pos_embed=True),
           images=normal((2, 3, 32, 32))).expect(
         same("out", "the rollout mask of a ViT's attention maps", rtol=1e-4, dtype="f"))),
]]
