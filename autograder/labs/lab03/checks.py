"""Lab 03 checks (trusted parent): compare the student's raw outputs with the references.

Parts are compared with the solution's outputs (1e-5); the whole model with the reference's
logits (< 1e-4), which are those of Hugging Face's SegFormer holding the same weights
(tests/labs/test_lab03.py checks it: the child cannot import ``transformers``). Every check
grades one exercise: the whole-model checks exist once per part, with that part the student's and
the other four the reference, so a mistake costs only its own part's points. The probes hand back
tensors, numbers and names; every verdict is made here.
"""

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"
TOL = dict(rtol=1e-5, atol=1e-5)
_PARTS = ("OverlapPatchEmbed", "EfficientSelfAttention", "MixFFN", "SegFormerBlock",
          "AllMLPDecoder")


def _ints(values) -> list[int] | None:
    """``values`` (numbers from JSON) as ints, None unless every one is integral."""
    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
            for v in values):
        return None
    return [int(v) for v in values]


class PatchEmbedChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "OverlapPatchEmbed"), self.reference(cid)
        hw, want = _ints(got.values.get("hw")), _ints(ref.values["hw"])
        kinds = got.values.get("hw_types")
        if hw is None or not isinstance(kinds, list) or any(
                str(k).startswith(("float", "bool")) for k in kinds):
            raise StudentError(f"OverlapPatchEmbed returned H, W = {got.values.get('hw')} of "
                               f"types {kinds}: they must be Python ints (the size of the map "
                               "after proj).")
        if hw != want:
            raise StudentError(f"OverlapPatchEmbed returned (H, W) = {tuple(hw)}, expected "
                               f"{tuple(want)} (padding = patch_size // 2).")
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


def _size(parameters) -> int | None:
    """The number of parameter elements from ``{name: shape}`` (None when malformed)."""
    if not isinstance(parameters, dict) or not all(
            isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s)
            for s in parameters.values()):
        return None
    return int(sum(np.prod(shape, dtype=np.int64) for shape in parameters.values()))


class ModelChecks(LabCase):
    """The whole model from one student part (the others: reference), once per exercise."""

    def _model(self, cid: str, part: str) -> tuple:
        got, ref = self.outputs(cid, part), self.reference(cid)
        return got, ref, f"SegFormer with your {part} (the other parts: reference)"

    def _vs_hf(self, family: str, k: int) -> None:
        part = _PARTS[k - 1]
        got, ref, what = self._model(f"model_{family}_{k}", part)
        have, want = _size(got.values.get("parameters")), _size(ref.values["parameters"])
        if have != want:
            raise StudentError(f"{what} has {have} parameters, Hugging Face's {want}.")
        # the reference logits are Hugging Face's (same weights): max abs difference < 1e-4
        self.check_array(got, ref, "logits",
                         what=f"{what}: logits vs Hugging Face's (max abs difference 1e-4)",
                         rtol=0.0, atol=1e-4, dtype_kind="f")

    def _gradients(self, k: int) -> None:
        part = _PARTS[k - 1]
        got, ref, what = self._model(f"model_grad_{k}", part)
        logits, want = got.arrays.get("logits"), ref.arrays["logits"]
        if logits is None or logits.shape != want.shape:
            raise StudentError(f"{what} in train mode: logits of shape "
                               f"{None if logits is None else list(logits.shape)}, expected "
                               f"{list(want.shape)}.")
        if logits.dtype.kind != "f" or not np.isfinite(logits).all():
            raise StudentError(f"{what}: the logits contain NaN or Inf in train mode.")
        trainable = got.values.get("trainable")
        with_grad = got.values.get("with_grad")
        if not isinstance(trainable, list) or not isinstance(with_grad, list):
            raise StudentError(f"{what}: no parameter list came back.")
        missing = [n for n in trainable if n not in set(with_grad)]
        if missing:
            raise StudentError(f"{what}: {len(missing)} parameters get no gradient (e.g. "
                               f"{missing[:6]}): every layer of your {part} must be used in "
                               "forward.")


# share of each part in a whole-model check (powers of two: the totals stay exact): the
# attention, the block and the decoder count twice as much as the patch embedding and Mix-FFN
_SHARE = (0.125, 0.25, 0.125, 0.25, 0.25)


def _add_model_checks() -> None:
    """6.1.k (4 points in all, visible), 6.2.k (2, hidden), 6.3.k (1, hidden): k = exercise."""
    families = (
        ("6.1", "b0", 4, "visible",
         "{part} in SegFormer-B0 reproduces Hugging Face's logits (1x3x64x96, < 1e-4; the "
         "other parts: reference)"),
        ("6.2", "tiny_odd", 2, HIDDEN,
         "{part} in SegFormer with a custom encoder (heads > 1 in every stage) at 45x61 vs "
         "Hugging Face (the other parts: reference)"),
        ("6.3", "grad", 1, HIDDEN,
         "{part} in SegFormer in train mode (drop_path 0.1): every parameter receives a "
         "gradient (the other parts: reference)"),
    )
    for num, family, points, vis, title in families:
        for k, part in enumerate(_PARTS, start=1):
            if family == "grad":
                def test(self, k=k):
                    self._gradients(k)
            else:
                def test(self, k=k, family=family):
                    self._vs_hf(family, k)
            test.__name__ = f"test_{family}_{k}_{part}"
            test.__doc__ = title.format(part=part)
            test = weight(points * _SHARE[k - 1])(number(f"{num}.{k}")(visibility(vis)(test)))
            setattr(ModelChecks, test.__name__, test)


_add_model_checks()
