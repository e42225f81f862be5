"""Lab 03 checks (trusted parent): compare the student's outputs with the references.

Parts are compared with the solution's outputs (1e-5); the whole model with the logits of Hugging
Face's SegFormer holding the same weights, computed in the reference run (< 1e-4).
"""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"
TOL = dict(rtol=1e-5, atol=1e-5)
_PARTS = ("OverlapPatchEmbed", "EfficientSelfAttention", "MixFFN", "SegFormerBlock",
          "AllMLPDecoder")
_MODEL = "SegFormer (labkit's scaffold around your five classes)"


class PatchEmbedChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "OverlapPatchEmbed"), self.reference(cid)
        if got.values.get("hw") != ref.values["hw"]:
            raise StudentError(f"OverlapPatchEmbed returned (H, W) = {got.values.get('hw')}, "
                               f"expected {ref.values['hw']} (padding = patch_size // 2).")
        self.check_array(got, ref, "tokens", what="OverlapPatchEmbed tokens", dtype_kind="f",
                         **TOL)

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_stage1(self):
        """OverlapPatchEmbed: 7x7 stride 4 on a 32x48 image (tokens, H, W)"""
        self._check("embed_stage1")

    @weight(1)
    @number("1.2")
    @visibility(HIDDEN)
    def test_odd(self):
        """OverlapPatchEmbed: 3x3 stride 2, 5 input channels, odd 15x21 image"""
        self._check("embed_odd")


class AttentionChecks(LabCase):
    def _check(self, cid: str, hint: str = "") -> None:
        got, ref = self.outputs(cid, "EfficientSelfAttention"), self.reference(cid)
        try:
            self.check_array(got, ref, "out", what="EfficientSelfAttention output",
                             dtype_kind="f", **TOL)
        except StudentError as exc:
            raise StudentError(f"{exc} {hint}".strip()) from None

    @weight(3)
    @number("2.1")
    @visibility("visible")
    def test_sr2(self):
        """EfficientSelfAttention: 2 heads, sr_ratio 2, 8x6 tokens"""
        self._check("attn_sr2")

    @weight(1)
    @number("2.2")
    @visibility(HIDDEN)
    def test_sr1(self):
        """EfficientSelfAttention: sr_ratio 1 (no .sr / .norm layers)"""
        self._check("attn_sr1", "(with sr_ratio 1 keys and values come from x itself)")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_odd(self):
        """EfficientSelfAttention: odd 9x7 map with sr_ratio 4 (the reduction floors)"""
        self._check("attn_odd")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_heads(self):
        """EfficientSelfAttention: 8 heads of size 3 (head split and merge order)"""
        self._check("attn_heads", "(head h holds channels h*d:(h+1)*d of query/key/value)")
        self._check("attn_one_head")


class MixFFNChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "MixFFN"), self.reference(cid)
        self.check_array(got, ref, "out", what="MixFFN output", dtype_kind="f", **TOL)

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_basic(self):
        """MixFFN: dim 16, hidden 64, 4x6 tokens"""
        self._check("ffn_basic")

    @weight(1)
    @number("3.2")
    @visibility(HIDDEN)
    def test_odd(self):
        """MixFFN: odd 7x5 map, hidden width 20"""
        self._check("ffn_odd")


class BlockChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "SegFormerBlock"), self.reference(cid)
        self.check_array(got, ref, "out", what="SegFormerBlock output", dtype_kind="f", **TOL)

    @weight(2)
    @number("4.1")
    @visibility("visible")
    def test_basic(self):
        """SegFormerBlock: dim 16, 2 heads, sr_ratio 2, mlp_ratio 4 (eval mode)"""
        self._check("block_basic")

    @weight(1)
    @number("4.2")
    @visibility(HIDDEN)
    def test_sr1_drop_path(self):
        """SegFormerBlock: sr_ratio 1, 3 heads, mlp_ratio 2, drop_path 0.2 in eval mode"""
        self._check("block_sr1_droppath")


class DecoderChecks(LabCase):
    def _check(self, cid: str, hint: str = "") -> None:
        got, ref = self.outputs(cid, "AllMLPDecoder"), self.reference(cid)
        try:
            self.check_array(got, ref, "logits", what="AllMLPDecoder logits", dtype_kind="f",
                             **TOL)
        except StudentError as exc:
            raise StudentError(f"{exc} {hint}".strip()) from None

    @weight(2)
    @number("5.1")
    @visibility("visible")
    def test_basic(self):
        """AllMLPDecoder: 4 maps at 16x24 ... 2x3, 5 classes (eval mode)"""
        self._check("decoder_basic")

    @weight(1)
    @number("5.2")
    @visibility(HIDDEN)
    def test_odd(self):
        """AllMLPDecoder: odd maps 13x9, 7x5, 4x3, 2x2"""
        self._check("decoder_odd")

    @weight(1)
    @number("5.3")
    @visibility(HIDDEN)
    def test_concat_order(self):
        """AllMLPDecoder: concatenation order (stage 4 first, as in Hugging Face)"""
        self._check("decoder_order", "(the fuse layer here reads only the first slot of the "
                    "concatenation, which must hold stage 4: concatenate in reverse stage order)")


class ModelChecks(LabCase):
    def _vs_hf(self, cid: str) -> None:
        for name in _PARTS:
            self.exercise_ok(name)
        got, ref = self.outputs(cid, _MODEL), self.reference(cid)
        if got.values.get("params") != ref.values["params"]:
            raise StudentError(f"your SegFormer has {got.values.get('params')} parameters, "
                               f"Hugging Face's {ref.values['params']}.")
        # the reference run's Hugging Face logits (same weights): max abs difference < 1e-4
        self.check_array(got, ref, "logits", what="SegFormer logits", dtype_kind="f")
        ref_hf = type(ref)(arrays={"logits": ref.arrays["hf_logits"]})
        self.check_array(got, ref_hf, "logits",
                         what="SegFormer logits vs Hugging Face (max abs difference 1e-4)",
                         rtol=0.0, atol=1e-4, dtype_kind="f")

    @weight(4)
    @number("6.1")
    @visibility("visible")
    def test_b0_matches_hugging_face(self):
        """SegFormer-B0 from your parts reproduces Hugging Face's logits (1x3x64x96, < 1e-4)"""
        self._vs_hf("model_b0")

    @weight(2)
    @number("6.2")
    @visibility(HIDDEN)
    def test_custom_config_odd_size(self):
        """SegFormer with a custom encoder (heads > 1 in every stage) at 45x61 vs Hugging Face"""
        self._vs_hf("model_tiny_odd")

    @weight(1)
    @number("6.3")
    @visibility(HIDDEN)
    def test_gradients(self):
        """SegFormer in train mode (drop_path 0.1): every parameter receives a gradient"""
        for name in _PARTS:
            self.exercise_ok(name)
        got, ref = self.outputs("model_grad", _MODEL), self.reference("model_grad")
        if got.values.get("shape") != ref.values["shape"]:
            raise StudentError(f"logits of shape {got.values.get('shape')}, expected "
                               f"{ref.values['shape']}.")
        if not got.values.get("finite"):
            raise StudentError("the logits contain NaN or Inf in train mode.")
        if got.values.get("n_without_grad") != 0:
            raise StudentError(f"{got.values.get('n_without_grad')} parameters get no gradient "
                               f"(e.g. {got.values.get('params_without_grad')}): every layer "
                               "must be used in forward.")
