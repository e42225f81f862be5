"""Lab 06 checks (trusted parent): compare the student's outputs with the references."""

import math

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.labs.lab06 import CUTMIX_STATS
from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"
# float32 modules: a different (correct) order of operations moves the last digits
ATOL, RTOL = 2e-5, 1e-4


class PatchEmbedChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "PatchEmbed"), self.reference(cid)
        if not got.values.get("proj_is_strided_conv"):
            raise StudentError("PatchEmbed.proj must be an nn.Conv2d with kernel_size = stride = "
                               "patch_size.")
        if got.values.get("num_patches") != ref.values["num_patches"]:
            raise StudentError(f"PatchEmbed.num_patches is {got.values.get('num_patches')}, "
                               f"expected {ref.values['num_patches']}.")
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
        if not self.outputs("mhsa_dropout_eval", "MultiHeadSelfAttention").values.get(
                "eval_deterministic"):
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
        if not got.values.get("max_diff", math.inf) < 1e-5:
            raise StudentError("with dropout=0 and drop_path=0, train mode must give the eval "
                               f"output (max difference {got.values.get('max_diff')}).")
        if not got.values.get("norm1_has_grad"):
            raise StudentError("no gradient reaches norm1.weight: is norm1 used in forward?")


class ViTChecks(LabCase):
    def _check(self, cid, attention=False):
        got, ref = self.outputs(cid, "ViT"), self.reference(cid)
        if got.values.get("has_pos_embed") != ref.values["has_pos_embed"]:
            want = "a" if ref.values["has_pos_embed"] else "no"
            raise StudentError(f"with pos_embed={ref.values['has_pos_embed']} the model must "
                               f"have {want} parameter named pos_embed.")
        self.check_array(got, ref, "logits", what="ViT logits", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)
        self.check_array(got, ref, "logits_with_attention",
                         what="logits of forward_with_attention", dtype_kind="f",
                         rtol=RTOL, atol=ATOL)
        if attention:
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
        if got.values.get("params") != ref.values["params"]:
            raise StudentError(f"ViT() has {got.values.get('params')} parameters, expected "
                               f"{ref.values['params']:,} (dim 192, depth 6, mlp_ratio 2).")


class CutMixChecks(LabCase):
    def _structure(self, cid):
        got = self.outputs(cid, "cutmix")
        v = got.values
        if not v.get("inputs_unchanged"):
            raise StudentError("cutmix modified its input images in place: clone them first.")
        if v.get("observed", 0) == 0:
            raise StudentError("cutmix never moved a pixel between images: is the batch "
                               "permuted?")
        if v.get("violations", 1) != 0:
            raise StudentError(
                "the pasted region is not one rectangle taken from the image at the same "
                "position in targets_b's source (outside the box, pixels must be the original "
                f"ones): {v.get('violations')} violations.")
        if not v.get("max_lam_error", math.inf) < 1e-6:
            raise StudentError("lam must be 1 - (box area) / (H * W) of the clipped box "
                               f"(largest error {v.get('max_lam_error')}).")
        return v

    def _stats(self, v, alpha, *, mean_tol, std_range=None, empty_range=None):
        mean, _, _ = CUTMIX_STATS[alpha]
        if not abs(v.get("mean_lam", math.nan) - mean) < mean_tol:
            raise StudentError(f"alpha={alpha}: the mean lam over many draws is "
                               f"{v.get('mean_lam'):.3f}, expected about {mean:.3f}: sample lam "
                               "from Beta(alpha, alpha), the cut ratio sqrt(1 - lam), a uniform "
                               "box centre and clip the box.")
        if std_range and not std_range[0] <= v.get("std_lam", math.nan) <= std_range[1]:
            raise StudentError(f"alpha={alpha}: the spread of lam ({v.get('std_lam'):.3f}) is "
                               f"outside {std_range}: is lam drawn from Beta(alpha, alpha)?")
        if empty_range and not empty_range[0] <= v.get("empty_share", math.nan) <= empty_range[1]:
            raise StudentError(f"alpha={alpha}: {v.get('empty_share'):.0%} of the draws cut "
                               f"nothing, expected about {CUTMIX_STATS[alpha][2]:.0%}.")

    @weight(2)
    @number("5.1")
    @visibility("visible")
    def test_structure(self):
        """cutmix: one box pasted from the permuted batch; lam = 1 - box area"""
        self._structure("cutmix_alpha1")

    @weight(1)
    @number("5.2")
    @visibility("visible")
    def test_generator(self):
        """cutmix: the same generator seed gives the same mix, another seed a different one"""
        v = self.outputs("cutmix_generator", "cutmix").values
        if not v.get("same_seed_same_output"):
            raise StudentError("two calls with generators seeded alike gave different results: "
                               "draw every random number from `generator`.")
        if not v.get("other_seed_differs"):
            raise StudentError("a different generator seed gave the same result.")

    @weight(1)
    @number("5.3")
    @visibility(HIDDEN)
    def test_distribution(self):
        """cutmix: alpha=1, lam and box centres over 300 draws"""
        v = self._structure("cutmix_alpha1")
        self._stats(v, 1.0, mean_tol=0.05)
        if not v.get("centre_x_std", 0.0) > 4.0:
            raise StudentError("the box centres hardly move: draw the centre uniformly over the "
                               "image.")

    @weight(1)
    @number("5.4")
    @visibility(HIDDEN)
    def test_alpha_small(self):
        """cutmix: alpha=0.1 (lam near 0 or 1: often no box at all)"""
        v = self._structure("cutmix_alpha_small")
        self._stats(v, 0.1, mean_tol=0.07, std_range=(0.2, 0.32), empty_range=(0.18, 0.43))

    @weight(1)
    @number("5.5")
    @visibility(HIDDEN)
    def test_alpha_large(self):
        """cutmix: alpha=50 (lam near 0.5 before clipping)"""
        v = self._structure("cutmix_alpha_large")
        self._stats(v, 50.0, mean_tol=0.03, std_range=(0.06, 0.14), empty_range=(0.0, 0.01))

    @weight(1)
    @number("5.6")
    @visibility(HIDDEN)
    def test_nonsquare(self):
        """cutmix: 24x40 two-channel images (height and width differ)"""
        self._structure("cutmix_nonsquare")


class CutMixLossChecks(LabCase):
    def _check(self, cid):
        got, ref = self.outputs(cid, "cutmix_loss"), self.reference(cid)
        self.check_number(got, ref, "loss", what="cutmix_loss", rtol=1e-5, atol=1e-6)
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
        if "inputs_unchanged" in ref.values and not got.values.get("inputs_unchanged"):
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
        self.exercise_ok("ViT")
        self._check("rollout_pipeline")
