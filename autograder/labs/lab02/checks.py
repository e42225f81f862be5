"""Lab 02 checks (trusted parent): every verdict is computed here from the raw outputs of the
probes (arrays, numbers, parameter shapes, module classes) and the references."""

import math
from collections import Counter

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError, needs_passing

HIDDEN = "after_due_date"


class ConfusionMatrixChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "confusion_matrix"), self.reference(cid)
        self.check_array(got, ref, "confmat", what="confusion_matrix", dtype_kind="iu", atol=0)

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_small(self):
        """confusion_matrix: 2x2 image, 3 classes (rows = targets, columns = preds)"""
        self._check("cm_small")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    def test_random(self):
        """confusion_matrix: random batch with ignored pixels"""
        self._check("cm_random")

    @weight(1)
    @number("1.3")
    @visibility(HIDDEN)
    def test_ignore_index_argument(self):
        """confusion_matrix: honours a non-default ignore_index"""
        self._check("cm_ignore_other")

    @weight(1)
    @number("1.4")
    @visibility(HIDDEN)
    def test_all_ignored(self):
        """confusion_matrix: every pixel ignored gives an all-zero matrix"""
        self._check("cm_all_ignored")

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_absent_classes(self):
        """confusion_matrix: classes absent from the batch still get rows and columns"""
        self._check("cm_absent_class")


class MeanIoUChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "mean_iou"), self.reference(cid)
        self.check_array(got, ref, "per_class_iou", what="per-class IoU", dtype_kind="f")
        self.check_number(got, ref, "miou", what="mIoU")

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_small(self):
        """mean_iou: 3x3 confusion matrix"""
        self._check("iou_small")

    @weight(2)
    @number("2.2")
    @visibility("visible")
    def test_absent(self):
        """mean_iou: a class absent from targets and predictions is NaN, excluded from the mean"""
        self._check("iou_absent")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_single_class(self):
        """mean_iou: only one class present"""
        self._check("iou_single_class")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_empty(self):
        """mean_iou: empty confusion matrix gives all NaN and a NaN mIoU"""
        self._check("iou_empty")

    @weight(1)
    @number("2.5")
    @visibility(HIDDEN)
    def test_random(self):
        """mean_iou: 19-class random confusion matrix"""
        self._check("iou_random")


class PipelineChecks(LabCase):
    @weight(1)
    @number("3.1")
    @visibility(HIDDEN)
    def test_batches(self):
        """confusion_matrix: one image at a time over 4 batches of 19 classes (dataset-level counts)"""
        got, ref = self.outputs("pipeline_cm", "confusion_matrix"), self.reference("pipeline_cm")
        for key in sorted(ref.arrays):
            self.check_array(got, ref, key, what=f"confusion_matrix of batch {key[-1]}",
                             dtype_kind="iu", atol=0)

    @weight(1)
    @number("3.2")
    @visibility(HIDDEN)
    def test_dataset_level(self):
        """mean_iou: of the confusion matrices summed over batches (dataset-level mIoU)"""
        got, ref = self.outputs("pipeline", "mean_iou"), self.reference("pipeline")
        self.check_array(got, ref, "per_class_iou", what="per-class IoU", dtype_kind="f")
        self.check_number(got, ref, "miou", what="mIoU")


def _fmt_config(config: dict) -> str:
    return "UNet(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"


def _count(values: dict) -> int:
    params = values.get("params")
    if not isinstance(params, dict):
        raise StudentError("could not read the model's parameters.")
    return sum(math.prod(int(s) for s in shape) for shape in params.values())


def _shape_diff(got: dict, want: dict) -> str:
    """Which parameter shapes the student has too many / too few of (multisets: names differ
    between correct designs, shapes do not)."""
    g = Counter(tuple(int(s) for s in v) for v in got.get("params", {}).values())
    w = Counter(tuple(int(s) for s in v) for v in want["params"].values())
    extra, missing = sorted((g - w).elements()), sorted((w - g).elements())
    parts = []
    if extra:
        parts.append("unexpected parameters of shape " + ", ".join(map(str, extra[:4])))
    if missing:
        parts.append("missing parameters of shape " + ", ".join(map(str, missing[:4])))
    return "; ".join(parts)


def _fmt_conv(facts) -> str:
    if not isinstance(facts, dict) or facts.get("class") is None:
        return "missing"
    if "in_channels" not in facts:
        return f"an nn.{facts['class']}"
    k = "x".join(str(v) for v in facts["kernel"])
    return (f"nn.Conv2d({facts['in_channels']}, {facts['out_channels']}, kernel {k}, "
            f"{'with' if facts['bias'] else 'without'} bias)")


class FCNChecks(LabCase):
    def _heads(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_fcn"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("keys") != r["keys"]:
            raise StudentError(f"model(images) has keys {g.get('keys')}, expected {r['keys']} "
                               "(aux_loss=True keeps the auxiliary head).")
        for key in ("out", "aux"):
            a, b = got.arrays.get(key), ref.arrays[key]
            shape = None if a is None else list(a.shape)
            if shape != list(b.shape):
                raise StudentError(f"model(images)[{key!r}] has shape {shape}, expected "
                                   f"{list(b.shape)}.")
            if a.dtype.kind != "f" or not np.isfinite(a).all():
                raise StudentError(f"model(images)[{key!r}]: the logits contain NaN or Inf.")
        for key, what in (("classifier", "model.classifier[4]"),
                          ("aux_classifier", "model.aux_classifier[4]")):
            if g.get(key) != r[key]:
                raise StudentError(f"{what} is {_fmt_conv(g.get(key))}, expected "
                                   f"{_fmt_conv(r[key])}.")

    def _params(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_fcn"), self.reference(cid)
        if got.values.get("backbone_shape") != ref.values["backbone_shape"]:
            raise StudentError(
                f"backbone features of shape {got.values.get('backbone_shape')}, expected "
                f"{ref.values['backbone_shape']} (fcn_resnet50's dilated backbone, output "
                "stride 8).")
        count, ref_count = _count(got.values), _count(ref.values)
        if count != ref_count:
            raise StudentError(f"{count:,} parameters, expected {ref_count:,} (fcn_resnet50 with "
                               "aux_loss=True and 1x1 convolutions with bias as the new last "
                               f"layers): {_shape_diff(got.values, ref.values)}.")

    @weight(2)
    @number("4.1")
    @visibility("visible")
    def test_heads(self):
        """build_fcn: output dict "out"/"aux" of shape (B,K,H,W); both last layers predict K"""
        self._heads("fcn_pets")

    @weight(1)
    @number("4.2")
    @visibility("visible")
    def test_params(self):
        """build_fcn: parameter count and output stride 8 (weights=None)"""
        self._params("fcn_pets")

    @weight(1)
    @number("4.3")
    @visibility(HIDDEN)
    def test_odd_size_19_classes(self):
        """build_fcn: 19 classes at an odd input size (45x61)"""
        self._heads("fcn_odd")
        self._params("fcn_odd")


# the activation modules the stub of UNet asks for ("the activation as a module")
_ACTIVATIONS = {"ReLU": "relu", "GELU": "gelu"}


class UNetChecks(LabCase):
    def _structure(self, name: str) -> None:
        from autograder.labs.lab02 import UNET_CONFIGS

        cid, config = f"unet_{name}", _fmt_config(UNET_CONFIGS[name])
        got, ref = self.outputs(cid, "UNet"), self.reference(cid)
        g, r = got.values, ref.values
        count, ref_count = _count(g), _count(r)
        if count != ref_count:
            hint = _shape_diff(g, r)
            biases = sum(bool(c[3]) for c in g.get("convs") or [])
            ref_biases = sum(bool(c[3]) for c in r["convs"])
            if biases != ref_biases:
                hint += (f"; {biases} nn.Conv2d layers have a bias, expected {ref_biases} "
                         "(bias=not norm; the classifier has one)")
            raise StudentError(f"{config} has {count:,} parameters, expected {ref_count:,}: "
                               f"follow the specification of the stub exactly ({hint}).")
        mods, ref_mods = set(g.get("modules") or []), set(r["modules"])
        for kind, act in _ACTIVATIONS.items():
            if (kind in mods) != (kind in ref_mods):
                if kind in ref_mods:
                    raise StudentError(f"{config}: no nn.{kind} module; act={act!r} puts an "
                                       f"nn.{kind}() module after every convolution of a block.")
                raise StudentError(f"{config}: the model contains nn.{kind} modules; act="
                                   f"{UNET_CONFIGS[name].get('act', 'relu')!r} does not use "
                                   f"{act!r}.")

    def _forward(self, cid: str) -> None:
        got, ref = self.outputs(cid, "UNet"), self.reference(cid)
        g, r = got.arrays, ref.arrays
        shapes = {k: None if g.get(k) is None else list(g[k].shape)
                  for k in ("train_logits", "eval_logits")}
        want = list(r["train_logits"].shape)
        if shapes["train_logits"] != want or shapes["eval_logits"] != want:
            raise StudentError(f"logits of shape {shapes['train_logits']} (train) / "
                               f"{shapes['eval_logits']} (eval), expected {want}: pad the "
                               "input to a multiple of 2**depth and crop the logits back.")
        for key in ("train_logits", "eval_logits"):
            if g[key].dtype.kind != "f" or not np.isfinite(g[key]).all():
                raise StudentError("the logits contain NaN or Inf.")
        missing = list(got.values.get("params_without_grad") or [])
        if missing:
            raise StudentError(f"{len(missing)} parameters get no gradient "
                               f"({', '.join(missing[:4])}): every layer must be used in "
                               "forward.")

    @weight(2)
    @number("5.1")
    @visibility("visible")
    def test_base(self):
        """UNet: parameter count (width 8, depth 2, concat), forward and gradients"""
        self._structure("base")
        self._forward("unet_forward")

    @weight(1)
    @number("5.2")
    @visibility("visible")
    def test_odd_size(self):
        """UNet: output (B,K,37,53) for a 37x53 input"""
        self._forward("unet_forward_odd")

    @weight(1)
    @number("5.3")
    @visibility(HIDDEN)
    def test_sum(self):
        """UNet: skip="sum" (structure, forward at 21x19)"""
        self._structure("sum")
        self._forward("unet_forward_sum")

    @weight(1)
    @number("5.4")
    @visibility(HIDDEN)
    def test_no_skip(self):
        """UNet: skip=None (structure, forward at 21x19)"""
        self._structure("none")
        self._forward("unet_forward_none")

    @weight(1)
    @number("5.5")
    @visibility(HIDDEN)
    def test_no_norm(self):
        """UNet: norm=False (no BatchNorm, convolutions with bias)"""
        self._structure("no_norm")
        self._forward("unet_forward_no_norm")

    @weight(1)
    @number("5.6")
    @visibility(HIDDEN)
    def test_activation(self):
        """UNet: act=None and act='gelu'"""
        self._structure("no_act")
        self._structure("gelu")
        self._forward("unet_forward_no_act")

    @weight(1)
    @number("5.7")
    @visibility(HIDDEN)
    def test_width_depth(self):
        """UNet: other widths, depths, channels and classes (forward at 29x35, depth 4)"""
        self._structure("deep_narrow")
        self._structure("shallow_wide")
        self._forward("unet_forward_deep")

    @weight(1)
    @number("5.8")
    @visibility(HIDDEN)
    @needs_passing("5.1")
    def test_invalid(self):
        """UNet: ValueError for an unknown skip or act"""
        for cid, what in (("unet_bad_skip", 'skip="add"'), ("unet_bad_act", 'act="tanh"')):
            kind = self.raised(cid, "UNet")
            if kind == "NotImplementedError":
                self.outputs(cid, "UNet")  # "not implemented yet"
            if kind != "ValueError":
                did = "returned a model" if kind is None else f"raised {kind}"
                raise StudentError(f"UNet(..., {what}) should raise ValueError; it {did}.")


class DiceChecks(LabCase):
    def _loss(self, cid: str):
        got = self.outputs(cid, "dice_loss")
        loss = got.arrays.get("loss")
        if loss is None or loss.shape != ():
            shape = None if loss is None else tuple(loss.shape)
            raise StudentError(f"dice_loss must return a 0-dimensional tensor (a scalar), got "
                               f"shape {shape}.")
        if loss.dtype.kind != "f":
            raise StudentError(f"dice_loss must return a float tensor, got {loss.dtype}.")
        if got.values.get("requires_grad") is not True:
            raise StudentError("dice_loss must be differentiable: its result does not require "
                               "grad (computed from detached values or turned into a number?).")
        return got, float(loss)

    def _value(self, cid: str, atol: float = 1e-5) -> None:
        got, value = self._loss(cid)
        want = float(self.reference(cid).arrays["loss"])
        if not math.isfinite(value):
            raise StudentError(f"dice_loss: got {value}, expected {want:.6g}.")
        if not math.isclose(value, want, rel_tol=1e-4, abs_tol=atol):
            raise StudentError(f"dice_loss: got {value:.6g}, expected {want:.6g}.")

    def _grad(self, cid: str) -> None:
        got, _ = self._loss(cid)
        if "grad" not in got.arrays:
            raise StudentError("the loss does not back-propagate to the logits.")
        self.check_array(got, self.reference(cid), "grad",
                         what="gradient of dice_loss w.r.t. the logits",
                         rtol=1e-3, atol=1e-6, dtype_kind="f", equal_nan=False)

    @weight(2)
    @number("6.1")
    @visibility("visible")
    def test_value(self):
        """dice_loss: value on a random batch with ignored pixels (3 classes)"""
        self._value("dice_random")

    @weight(1)
    @number("6.2")
    @visibility("visible")
    def test_gradient(self):
        """dice_loss: gradient with respect to the logits"""
        self._grad("dice_random")

    @weight(1)
    @number("6.3")
    @visibility(HIDDEN)
    def test_19_classes(self):
        """dice_loss: 19 classes, 30% ignored (value and gradient)"""
        self._value("dice_19")
        self._grad("dice_19")

    @weight(1)
    @number("6.4")
    @visibility(HIDDEN)
    def test_ignore_index_argument(self):
        """dice_loss: honours a non-default ignore_index"""
        self._value("dice_ignore_other")
        self._grad("dice_ignore_other")

    @weight(1)
    @number("6.5")
    @visibility(HIDDEN)
    def test_absent_classes(self):
        """dice_loss: classes absent from the targets still count in the mean over K"""
        self._value("dice_absent")

    @weight(1)
    @number("6.6")
    @visibility(HIDDEN)
    def test_perfect(self):
        """dice_loss: a perfect prediction gives (almost) 0"""
        self._value("dice_perfect", atol=1e-4)

    @weight(1)
    @number("6.7")
    @visibility(HIDDEN)
    def test_all_ignored(self):
        """dice_loss: an all-ignored batch gives 0 with a finite gradient"""
        self._value("dice_all_ignored", atol=1e-7)
        self._grad("dice_all_ignored")
