"""Lab 05 checks (trusted parent): compare the student's raw outputs with the references.

The probes only hand back what the student's functions returned (and what the probe's own model
observed); every comparison and verdict is made here. Each check grades one exercise; the other
exercises run as the reference implementation in its child, so a mistake costs only its own
points.
"""

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError, needs_passing

HIDDEN = "after_due_date"


def _short(value) -> str:
    """A value read from the child's result.json, for a message (untrusted: shortened)."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class ToModalityChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "to_modality"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("is_tensor") is not True:
            raise StudentError("to_modality must return a torch tensor (got a NumPy array or "
                               "another type).")
        if g.get("shape") != r["shape"]:
            raise StudentError(f"to_modality returned shape {_short(g.get('shape'))}, expected "
                               f"{r['shape']} (3 channels, same shape as the input).")
        if g.get("dtype") != r["dtype"]:
            raise StudentError(f"to_modality returned dtype {_short(g.get('dtype'))}, expected "
                               f"{r['dtype']} (keep the input's dtype).")
        after, before = got.arrays.get("input_after"), ref.arrays["input_after"]
        if (after is None or after.shape != before.shape or after.dtype != before.dtype
                or not np.array_equal(after, before, equal_nan=True)):
            raise StudentError("to_modality modified its input tensor in place; return a new "
                               "tensor instead.")
        self.check_array(got, ref, "out", what="to_modality output", dtype_kind="f",
                         rtol=1e-5, atol=1e-6)

    def _raises(self, cid: str, what: str) -> None:
        kind = self.raised(cid, "to_modality")
        if kind is None:
            raise StudentError(f"to_modality should raise ValueError for {what}; it returned.")
        if kind != "ValueError":
            raise StudentError(f"to_modality should raise ValueError for {what}; it raised "
                               f"{kind}.")

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_grayscale_batch(self):
        """to_modality: grayscale of a (B,3,H,W) batch (luma 0.299 R + 0.587 G + 0.114 B, 3 channels)"""
        self._check("mod_batch_grayscale")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    def test_inverted_batch(self):
        """to_modality: inverted grayscale of a (B,3,H,W) batch (1 - luma, 3 channels)"""
        self._check("mod_batch_inverted_grayscale")

    @weight(1)
    @number("1.3")
    @visibility("visible")
    def test_rgb_unchanged(self):
        """to_modality: "rgb" returns the images unchanged"""
        self._check("mod_batch_rgb")

    @weight(1)
    @number("1.4")
    @visibility(HIDDEN)
    def test_single_image(self):
        """to_modality: a single (3,H,W) image in both gray modalities"""
        self._check("mod_single_grayscale")
        self._check("mod_single_inverted_grayscale")

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_float64(self):
        """to_modality: float64 images keep their dtype"""
        self._check("mod_f64_grayscale")
        self._check("mod_f64_inverted_grayscale")

    @weight(1)
    @number("1.6")
    @visibility(HIDDEN)
    @needs_passing("1.1")
    def test_invalid(self):
        """to_modality: ValueError for an unknown modality and for a 1-channel input"""
        self._raises("mod_bad_name", "an unknown modality ('sepia')")
        self._raises("mod_bad_channels", "images with 1 channel")


class EvaluateModalitiesChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "evaluate_modalities"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("keys") != r["keys"]:
            raise StudentError(f"evaluate_modalities returned the keys {_short(g.get('keys'))}, "
                               f"expected "
                               f"{r['keys']} (one per modality, in the order given).")
        training, grad = g.get("training_flags"), g.get("grad_flags")
        if not isinstance(training, list) or not isinstance(grad, list):
            raise StudentError("evaluate_modalities: internal: the model's call record is "
                               "missing.")
        if any(flag is not False for flag in training):
            raise StudentError("the model was called in training mode: call model.eval() first.")
        if any(flag is not False for flag in grad):
            raise StudentError("the model was called with gradients enabled: wrap the "
                               "evaluation in torch.no_grad().")
        for i, key in enumerate(r["keys"]):
            self.check_array(got, ref, f"iou_{i}", what=f"per-class IoU for {key!r}",
                             dtype_kind="f", rtol=1e-5, atol=1e-6)

    @weight(3)
    @number("2.1")
    @visibility("visible")
    def test_three_modalities(self):
        """evaluate_modalities: per-class IoU in the three modalities (tiny conv model, 2 batches)"""
        self._check("eval_all")

    @weight(1)
    @number("2.2")
    @visibility("visible")
    def test_order(self):
        """evaluate_modalities: a subset of the modalities, keys in the order given"""
        self._check("eval_order")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_ignore_index_and_absent_classes(self):
        """evaluate_modalities: ignore_index=0 and classes absent from the targets (NaN or 0)"""
        self._check("eval_ignore_absent")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_mean_std(self):
        """evaluate_modalities: honours non-default mean and std (normalise after the modality)"""
        self._check("eval_mean_std")


class RelativeDegradationChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "relative_degradation"), self.reference(cid)
        if got.values.get("keys") != ref.values["keys"]:
            raise StudentError(f"relative_degradation returned the keys "
                               f"{_short(got.values.get('keys'))}, expected "
                               f"{ref.values['keys']} (the input's keys, in the same order).")
        for i, key in enumerate(ref.values["keys"]):
            self.check_number(got, ref, f"value_{i}",
                              what=f"relative degradation of {key!r}", rtol=1e-6, atol=1e-9)

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_simple(self):
        """relative_degradation: (mIoU_rgb - mIoU) / mIoU_rgb for each modality, 0 for rgb"""
        self._check("deg_simple")

    @weight(1)
    @number("3.2")
    @visibility(HIDDEN)
    def test_nan_classes(self):
        """relative_degradation: NaN classes left out of each mIoU; an all-NaN modality is NaN"""
        self._check("deg_nan")

    @weight(1)
    @number("3.3")
    @visibility(HIDDEN)
    def test_zero_base(self):
        """relative_degradation: a base mIoU of 0 gives NaN everywhere"""
        self._check("deg_zero_base")

    @weight(1)
    @number("3.4")
    @visibility(HIDDEN)
    def test_other_base(self):
        """relative_degradation: base="grayscale" and another key order"""
        self._check("deg_other_base")

    @weight(1)
    @number("3.5")
    @visibility(HIDDEN)
    @needs_passing("3.1")
    def test_missing_base(self):
        """relative_degradation: KeyError when the base modality is missing"""
        kind = self.raised("deg_missing_base", "relative_degradation")
        if kind != "KeyError":
            how = "it returned" if kind is None else f"it raised {kind}"
            raise StudentError("relative_degradation should raise KeyError when the base "
                               f"modality is not in the dict; {how}.")
