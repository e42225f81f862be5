"""Lab 06 checks (trusted parent): every comparison, property and verdict, from raw outputs.

The probes hand back what the student's objects returned; here they are compared with the
references (the solution on the same inputs), and CutMix's draws are analysed (box, pixels,
labels, lam, statistics) against the call's own inputs.
"""

import math

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.labs.lab06 import CUTMIX_CENTRE_STD, CUTMIX_STATS, call_inputs
from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"
# float32 modules: a different (correct) order of operations moves the last digits
ATOL, RTOL = 2e-5, 1e-4


def _show(value, limit=120):
    """A value from the child's result.json, shortened for a message (it is untrusted data)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class PatchEmbedChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "PatchEmbed"), self.reference(cid)
        v, p = got.values, ref.values["proj_kernel_size"]
        classes = v.get("proj_classes")
        if not isinstance(classes, list) or "torch.nn.modules.conv.Conv2d" not in classes:
            name = classes[0] if isinstance(classes, list) and classes else "missing"
            name = "missing" if name == "builtins.NoneType" else _show(name)
            raise StudentError(f"PatchEmbed.proj is {name}: the stub asks for nn.Conv2d("
                               "in_channels, dim, kernel_size=patch_size, stride=patch_size).")
        if v.get("proj_kernel_size") != p or v.get("proj_stride") != ref.values["proj_stride"]:
            raise StudentError(f"PatchEmbed.proj has kernel_size {_show(v.get('proj_kernel_size'))} "
                               f"and stride {_show(v.get('proj_stride'))}, expected {p} and {p} "
                               "(kernel_size = stride = patch_size: patches without overlap).")
        if v.get("num_patches") is None:
            raise StudentError("PatchEmbed has no attribute num_patches (the stub asks for "
                               "(img_size // patch_size) ** 2).")
        if v.get("num_patches") != ref.values["num_patches"]:
            raise StudentError(f"PatchEmbed.num_patches is {_show(v.get('num_patches'))}, expected "
                               f"{ref.values['num_patches']:g}.")
        self.check_array(got, ref, "tokens", what="PatchEmbed output (B, N, dim)",
                         dtype_kind="f", rtol=RTOL, atol=ATOL)

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_base(self):
        """PatchEmbed: 32x32 RGB, patch 4 -> (B, 64, dim) tokens"""
        self._check("pe_base")

    @weight(1)
    @number("1.2")
    @visibility(HIDDEN)
    def test_patch2_gray(self):
        """PatchEmbed: patch 2 on a one-channel 16x16 image (64 tokens)"""
        self._check("pe_patch2_gray")

    @weight(1)
    @number("1.3")
    @visibility(HIDDEN)
    def test_patch8(self):
        """PatchEmbed: patch 8 on 24x24 images (9 tokens)"""
        self._check("pe_patch8")


class AttentionChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "MultiHeadSelfAttention"), self.reference(cid)
        self.check_array(got, ref, "attn", what="attention weights (B, heads, N, N)",
                         dtype_kind="f", rtol=RTOL, atol=ATOL)
        self.check_array(got, ref, "out", what="attention output (B, N, dim)", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_base(self):
        """MultiHeadSelfAttention: dim 16, 4 heads: output and attention weights"""
        self._check("mhsa_base")

    @weight(1)
    @number("2.2")
    @visibility(HIDDEN)
    def test_one_head(self):
        """MultiHeadSelfAttention: a single head"""
        self._check("mhsa_one_head")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_dropout_eval(self):
        """MultiHeadSelfAttention: dropout=0.5 does nothing in eval mode"""
        self._check("mhsa_dropout_eval")
        got = self.outputs("mhsa_dropout_eval", "MultiHeadSelfAttention")
        if not np.array_equal(got.arrays.get("out_again"), got.arrays["out"]):
            raise StudentError("two forward passes in eval mode differ: dropout must be off in "
                               "eval mode (use nn.Dropout).")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_many_heads(self):
        """MultiHeadSelfAttention: 8 heads of size 4, batch of one"""
        self._check("mhsa_many_heads")


class BlockChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "EncoderBlock"), self.reference(cid)
        self.check_array(got, ref, "attn", what="block attention weights", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)
        self.check_array(got, ref, "x", what="block output (B, N, dim)", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_base(self):
        """EncoderBlock: pre-norm attention and MLP with residuals"""
        self._check("block_base")

    @weight(1)
    @number("3.2")
    @visibility(HIDDEN)
    def test_drop_path_eval(self):
        """EncoderBlock: dropout and drop_path are the identity in eval mode"""
        self._check("block_drop_eval")

    @weight(1)
    @number("3.3")
    @visibility(HIDDEN)
    def test_mlp_ratio(self):
        """EncoderBlock: MLP hidden size int(dim * mlp_ratio) with mlp_ratio=1.5"""
        self._check("block_ratio")

    @weight(1)
    @number("3.4")
    @visibility(HIDDEN)
    def test_train_mode(self):
        """EncoderBlock: without dropout, train mode equals eval mode and gradients flow"""
        got = self.outputs("block_train_mode", "EncoderBlock")
        x_eval, x_train = got.arrays.get("x_eval"), got.arrays.get("x_train")
        if x_eval is None or x_train is None or x_eval.shape != x_train.shape:
            raise StudentError("EncoderBlock must return x of the same shape in train and eval "
                               "mode.")
        diff = np.abs(x_train.astype(np.float64) - x_eval.astype(np.float64))
        if not np.nanmax(diff, initial=0.0) < 1e-5 or np.isnan(diff).any():
            raise StudentError("with dropout=0 and drop_path=0, train mode must give the eval "
                               f"output (max difference {np.nanmax(diff, initial=0.0):.3g}).")
        grad = got.arrays.get("norm1_grad")
        if grad is None or not np.abs(grad.astype(np.float64)).sum() > 0:
            raise StudentError("no gradient reaches norm1.weight: is norm1 used in forward?")


class ViTChecks(LabCase):
    def _check(self, cid, attention=False):
        got, ref = self.outputs(cid, "ViT"), self.reference(cid)
        self.check_array(got, ref, "logits", what="ViT logits", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)
        self.check_array(got, ref, "logits_with_attention",
                         what="logits of forward_with_attention", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)
        if attention:
            want = ref.arrays["attentions"].shape
            if "attentions" not in got.arrays:
                raise StudentError("forward_with_attention must return one attention map "
                                   f"{tuple(want[1:])} per block ({want[0]} blocks); got "
                                   f"shapes {_show(got.values.get('attention_shapes'))}.")
            self.check_array(got, ref, "attentions",
                             what="attention maps (depth, B, heads, N+1, N+1)",
                             dtype_kind="f", rtol=RTOL, atol=ATOL)

    @weight(2)
    @number("4.1")
    @visibility("visible")
    def test_base(self):
        """ViT: logits of a 2-block ViT (patch 8, class token, positional embedding)"""
        self._check("vit_base")

    @weight(1)
    @number("4.2")
    @visibility("visible")
    def test_attentions(self):
        """ViT: forward_with_attention returns one (B, heads, N+1, N+1) map per block"""
        self._check("vit_base", attention=True)

    @weight(1)
    @number("4.3")
    @visibility(HIDDEN)
    def test_no_pos_embed(self):
        """ViT: pos_embed=False has no positional parameter"""
        self._check("vit_no_pos", attention=True)

    @weight(1)
    @number("4.4")
    @visibility(HIDDEN)
    def test_patch2(self):
        """ViT: patch 2 gives 256 patches + the class token"""
        self._check("vit_patch2", attention=True)

    @weight(1)
    @number("4.5")
    @visibility(HIDDEN)
    def test_patch4(self):
        """ViT: patch 4 (64 patches), 3 heads, mlp_ratio 1"""
        self._check("vit_patch4", attention=True)

    @weight(1)
    @number("4.6")
    @visibility(HIDDEN)
    def test_default_size(self):
        """ViT(): the default model has the specified number of parameters"""
        got, ref = self.outputs("vit_default_size", "ViT"), self.reference("vit_default_size")
        have, want = _shapes(got.values.get("parameters")), _shapes(ref.values["parameters"])
        if have is None:
            raise StudentError("could not read the parameters of ViT().")
        n_have, n_want = _count(have), _count(want)
        if n_have != n_want:
            extra = sorted(set(have) - set(want))[:4]
            missing = sorted(set(want) - set(have))[:4]
            detail = (f" Unexpected parameters: {extra}." if extra else "") + (
                f" Missing parameters: {missing}." if missing else "")
            raise StudentError(f"ViT() has {n_have:,} parameters, expected {n_want:,} (dim 192, "
                               f"depth 6, mlp_ratio 2).{detail}")


def _shapes(params):
    """{name: shape} from a probe's parameters output (None when it is not one)."""
    if not isinstance(params, dict) or not all(
            isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s)
            for s in params.values()):
        return None
    return {str(k): tuple(s) for k, s in params.items()}


def _count(shapes):
    return sum(math.prod(s) for s in shapes.values())


def _draw_facts(images, targets, mixed, ta, tb, lam, seed):
    """One CutMix draw checked against its inputs: (box (y1, y2, x1, x2) or None, lam).

    Raises StudentError naming the first property the draw breaks. The box is the bounding box of
    the pixels that changed in the images whose partner is another image (None: no image moved)."""
    where = f"generator seed {seed}"
    if mixed.shape != images.shape:
        raise StudentError(f"mixed_images has shape {tuple(mixed.shape)}, expected "
                           f"{tuple(images.shape)} ({where}).")
    if ta.shape != targets.shape or not np.array_equal(ta, targets):
        raise StudentError(f"targets_a must be the original targets ({where}).")
    if tb.shape != targets.shape or not np.array_equal(np.sort(tb), np.sort(targets)):
        raise StudentError(f"targets_b must be the targets of a permutation of the batch "
                           f"({where}): got {tb.tolist()[:8]} for targets {targets.tolist()[:8]}.")
    lookup = {int(t): i for i, t in enumerate(targets.tolist())}
    perm = np.array([lookup[int(t)] for t in tb.tolist()])
    moved = perm != np.arange(len(perm))
    if not moved.any():
        return None, lam
    H, W = images.shape[-2:]
    changed = (mixed[moved] != images[moved]).any(axis=(0, 1))  # (H, W)
    box = np.zeros((H, W), dtype=bool)
    corners = (0, 0, 0, 0)
    if changed.any():
        ys, xs = np.nonzero(changed)
        corners = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        box[corners[0]:corners[1], corners[2]:corners[3]] = True
    if not (mixed[:, :, box] == images[perm][:, :, box]).all():
        raise StudentError(
            f"the pasted region is not one rectangle taken, at the same position, from the image "
            f"that targets_b names (all channels, the same box for the whole batch) ({where}).")
    if not (mixed[:, :, ~box] == images[:, :, ~box]).all():
        raise StudentError(f"outside the pasted box the pixels must be the original ones "
                           f"({where}).")
    area = (corners[1] - corners[0]) * (corners[3] - corners[2]) / (H * W)
    if not abs(lam - (1.0 - area)) < 1e-6:
        raise StudentError(f"lam must be 1 - (box area) / (H * W) of the clipped box: the box "
                           f"{corners} (y1, y2, x1, x2) leaves {1 - area:.6f}, lam is {lam:.6f} "
                           f"({where}).")
    return corners, lam


class CutMixChecks(LabCase):
    def _draws(self, cid):
        """Check every draw of ``cid``; the boxes and lams of the draws in which images moved."""
        got = self.outputs(cid, "cutmix")
        inputs = call_inputs(cid)
        images, targets = inputs["images"], inputs["targets"]
        a = got.arrays
        if not np.array_equal(a.get("images_after"), images):
            raise StudentError("cutmix modified its input images in place: clone them first.")
        if not np.array_equal(a.get("targets_after"), targets):
            raise StudentError("cutmix modified its input targets in place.")
        mixed, ta, tb, lams = (a.get(k) for k in ("mixed", "targets_a", "targets_b", "lam"))
        draws = 0 if lams is None or lams.ndim != 1 else len(lams)
        if draws == 0 or any(x is None or x.ndim < 1 or len(x) != draws
                             for x in (mixed, ta, tb)):
            raise StudentError("cutmix must return (mixed_images, targets_a, targets_b, lam).")
        boxes, kept = [], []
        for i in range(draws):
            box, lam = _draw_facts(images, targets, mixed[i], ta[i], tb[i], float(lams[i]),
                                   1000 + i)
            if box is not None:
                boxes.append(box)
                kept.append(lam)
        if not boxes:
            raise StudentError("cutmix never moved a pixel between images: is the batch "
                               "permuted?")
        return np.array(boxes, dtype=np.float64), np.array(kept, dtype=np.float64)

    def _stats(self, lams, boxes, alpha, *, mean_tol, std_range=None, empty_range=None):
        mean, _, empty = CUTMIX_STATS[alpha]
        empty_share = float(((boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]) == 0)
                            .mean())
        if not abs(lams.mean() - mean) < mean_tol:
            raise StudentError(f"alpha={alpha}: the mean lam over many draws is "
                               f"{lams.mean():.3f}, expected about {mean:.3f}: sample lam "
                               "from Beta(alpha, alpha), the cut ratio sqrt(1 - lam), a uniform "
                               "box centre and clip the box.")
        if std_range and not std_range[0] <= lams.std() <= std_range[1]:
            raise StudentError(f"alpha={alpha}: the spread of lam ({lams.std():.3f}) is "
                               f"outside {std_range}: is lam drawn from Beta(alpha, alpha)?")
        if empty_range and not empty_range[0] <= empty_share <= empty_range[1]:
            raise StudentError(f"alpha={alpha}: {empty_share:.0%} of the draws cut "
                               f"nothing, expected about {empty:.0%}.")

    @weight(2)
    @number("5.1")
    @visibility("visible")
    def test_structure(self):
        """cutmix: one box pasted from the permuted batch; lam = 1 - box area"""
        self._draws("cutmix_structure")

    @weight(1)
    @number("5.2")
    @visibility("visible")
    def test_generator(self):
        """cutmix: the same generator seed gives the same mix, another seed a different one"""
        a = self.outputs("cutmix_generator", "cutmix").arrays
        v = self.outputs("cutmix_generator", "cutmix").values
        same = (np.array_equal(a.get("mixed_0"), a.get("mixed_1"))
                and np.array_equal(a.get("targets_b_0"), a.get("targets_b_1"))
                and v.get("lam_0") == v.get("lam_1"))
        if not same:
            raise StudentError("two calls with generators seeded alike gave different results: "
                               "draw every random number from `generator`.")
        if (np.array_equal(a.get("mixed_0"), a.get("mixed_2"))
                and np.array_equal(a.get("targets_b_0"), a.get("targets_b_2"))):
            raise StudentError("a different generator seed gave the same result.")

    @weight(1)
    @number("5.3")
    @visibility(HIDDEN)
    def test_distribution(self):
        """cutmix: alpha=1, lam and box centres over 300 draws"""
        boxes, lams = self._draws("cutmix_alpha1")
        self._stats(lams, boxes, 1.0, mean_tol=0.05)
        has_box = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]) > 0
        centre_x = (boxes[has_box, 2] + boxes[has_box, 3]) / 2
        if not (len(centre_x) > 1 and centre_x.std() > CUTMIX_CENTRE_STD / 2):
            raise StudentError("the box centres hardly move: draw the centre uniformly over the "
                               "image.")

    @weight(1)
    @number("5.4")
    @visibility(HIDDEN)
    def test_alpha_small(self):
        """cutmix: alpha=0.1 (lam near 0 or 1: often no box at all)"""
        boxes, lams = self._draws("cutmix_alpha_small")
        self._stats(lams, boxes, 0.1, mean_tol=0.07, std_range=(0.19, 0.29),
                    empty_range=(0.22, 0.47))

    @weight(1)
    @number("5.5")
    @visibility(HIDDEN)
    def test_alpha_large(self):
        """cutmix: alpha=50 (lam near 0.5 before clipping)"""
        boxes, lams = self._draws("cutmix_alpha_large")
        self._stats(lams, boxes, 50.0, mean_tol=0.03, std_range=(0.06, 0.12),
                    empty_range=(0.0, 0.01))

    @weight(1)
    @number("5.6")
    @visibility(HIDDEN)
    def test_nonsquare(self):
        """cutmix: 24x40 two-channel images (height and width differ)"""
        self._draws("cutmix_nonsquare")


class CutMixLossChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "cutmix_loss"), self.reference(cid)
        self.check_number(got, ref, "loss", what="cutmix_loss", rtol=1e-5, atol=1e-6)
        if "grad" not in got.arrays:
            raise StudentError("no gradient reached the logits: compute the loss from the logits "
                               "with differentiable operations (F.cross_entropy).")
        self.check_array(got, ref, "grad", what="gradient of cutmix_loss w.r.t. the logits",
                         dtype_kind="f", rtol=1e-4, atol=1e-6)

    @weight(1)
    @number("6.1")
    @visibility("visible")
    def test_value(self):
        """cutmix_loss: lam * CE(targets_a) + (1 - lam) * CE(targets_b)"""
        self._check("loss_mid")

    @weight(1)
    @number("6.2")
    @visibility(HIDDEN)
    def test_extremes(self):
        """cutmix_loss: lam = 0 and lam = 1, with gradients"""
        self._check("loss_lam0")
        self._check("loss_lam1")


class RolloutChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "attention_rollout"), self.reference(cid)
        if "attentions_after" in ref.arrays and not np.array_equal(
                got.arrays.get("attentions_after"), call_inputs(cid)["attentions"]):
            raise StudentError("attention_rollout modified the attention maps it was given.")
        self.check_array(got, ref, "mask", what="rollout mask (B, N-1)", dtype_kind="f",
                         rtol=RTOL, atol=1e-6)

    @weight(2)
    @number("7.1")
    @visibility("visible")
    def test_mean(self):
        """attention_rollout: mean over heads, 3 layers"""
        self._check("rollout_mean")

    @weight(1)
    @number("7.2")
    @visibility("visible")
    def test_max(self):
        """attention_rollout: max over heads"""
        self._check("rollout_max")

    @weight(1)
    @number("7.3")
    @visibility(HIDDEN)
    def test_min_discard(self):
        """attention_rollout: min over heads with discard_ratio=0.5"""
        self._check("rollout_min_discard")

    @weight(1)
    @number("7.4")
    @visibility(HIDDEN)
    def test_single_layer(self):
        """attention_rollout: a single layer"""
        self._check("rollout_single_layer")

    @weight(1)
    @number("7.5")
    @visibility(HIDDEN)
    def test_max_discard(self):
        """attention_rollout: max fusion, discard_ratio=0.9, batch of one"""
        self._check("rollout_max_discard")

    @weight(1)
    @number("7.6")
    @visibility(HIDDEN)
    def test_pipeline(self):
        """ViT.forward_with_attention + attention_rollout on a fixed model"""
        # the ViT is the reference one in this exercise's child: only the rollout is graded
        self._check("rollout_pipeline")
