"""Lab 02 checks (trusted parent): compare the student's outputs with the references."""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

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
    @weight(2)
    @number("3.1")
    @visibility(HIDDEN)
    def test_dataset_level(self):
        """confusion_matrix + mean_iou accumulated over batches (dataset-level mIoU)"""
        self.exercise_ok("confusion_matrix")
        got, ref = self.outputs("pipeline", "mean_iou"), self.reference("pipeline")
        self.check_array(got, ref, "per_class_iou", what="per-class IoU", dtype_kind="f")
        self.check_number(got, ref, "miou", what="mIoU")


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else repr(value)


def _fmt_config(config: dict) -> str:
    return "UNet(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"


class FCNChecks(LabCase):
    def _heads(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_fcn"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("keys") != r["keys"]:
            raise StudentError(f"model(images) has keys {g.get('keys')}, expected {r['keys']} "
                               "(aux_loss=True keeps the auxiliary head).")
        for key in ("out_shape", "aux_shape"):
            if g.get(key) != r[key]:
                raise StudentError(f"model(images)[{key[:-6]!r}] has shape {g.get(key)}, "
                                   f"expected {r[key]}.")
        for key, what in (("classifier", "model.classifier[4]"),
                          ("aux_classifier", "model.aux_classifier[4]")):
            if g.get(key) != r[key]:
                raise StudentError(f"{what} is {g.get(key)}, expected {r[key]}.")
        if not g.get("finite"):
            raise StudentError("the logits contain NaN or Inf.")

    def _params(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_fcn"), self.reference(cid)
        if got.values.get("backbone_shape") != ref.values["backbone_shape"]:
            raise StudentError(
                f"backbone features of shape {got.values.get('backbone_shape')}, expected "
                f"{ref.values['backbone_shape']} (fcn_resnet50's dilated backbone, output "
                "stride 8).")
        if got.values.get("params") != ref.values["params"]:
            raise StudentError(f"{_n(got.values.get('params'))} parameters, expected "
                               f"{ref.values['params']:,} (fcn_resnet50 with aux_loss=True and "
                               "1x1 convolutions with bias as the new last layers).")

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


class UNetChecks(LabCase):
    def _structure(self, name: str) -> None:
        from autograder.labs.lab02 import UNET_CONFIGS

        cid, config = f"unet_{name}", _fmt_config(UNET_CONFIGS[name])
        got, ref = self.outputs(cid, "UNet"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("params") != r["params"]:
            raise StudentError(f"{config} has {_n(g.get('params'))} parameters, expected "
                               f"{r['params']:,}: follow the specification of the stub exactly.")
        if g.get("counts") != r["counts"]:
            diff = {k: f"{g.get('counts', {}).get(k)} (expected {v})"
                    for k, v in r["counts"].items() if g.get("counts", {}).get(k) != v}
            raise StudentError(f"{config}: module counts differ: {diff} (activations must be "
                               "nn.ReLU / nn.GELU modules, not functions).")
        if g.get("conv_biases") != r["conv_biases"]:
            raise StudentError(f"{config}: {g.get('conv_biases')} nn.Conv2d layers have a bias, "
                               f"expected {r['conv_biases']} (bias=not norm; the classifier has "
                               "one).")

    def _forward(self, cid: str) -> None:
        got, ref = self.outputs(cid, "UNet"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("shape") != r["shape"] or g.get("eval_shape") != r["eval_shape"]:
            raise StudentError(f"logits of shape {g.get('shape')} (train) / "
                               f"{g.get('eval_shape')} (eval), expected {r['shape']}: pad the "
                               "input to a multiple of 2**depth and crop the logits back.")
        if not g.get("finite"):
            raise StudentError("the logits contain NaN or Inf.")
        if g.get("params_without_grad") != 0:
            raise StudentError(f"{g.get('params_without_grad')} parameters get no gradient: "
                               "every layer must be used in forward.")

    @weight(2)
    @number("5.1")
    @visibility("visible")
    def test_base(self):
        """UNet: parameter and module counts (width 8, depth 2, concat), forward and gradients"""
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
    def test_invalid(self):
        """UNet: ValueError for an unknown skip or act"""
        for cid, what in (("unet_bad_skip", 'skip="add"'), ("unet_bad_act", 'act="tanh"')):
            got = self.outputs(cid, "UNet")
            if got.values.get("raised_value_error") is not True:
                raise StudentError(f"UNet(..., {what}) should raise ValueError.")


class DiceChecks(LabCase):
    def _value(self, cid: str, atol: float = 1e-5) -> None:
        got, ref = self.outputs(cid, "dice_loss"), self.reference(cid)
        if got.values.get("scalar_0d") is not True:
            raise StudentError("dice_loss must return a 0-dimensional tensor (a scalar).")
        self.check_number(got, ref, "loss", what="dice_loss", rtol=1e-4, atol=atol)

    def _grad(self, cid: str) -> None:
        got, ref = self.outputs(cid, "dice_loss"), self.reference(cid)
        if got.values.get("has_grad") is not True:
            raise StudentError("the loss does not back-propagate to the logits.")
        self.check_array(got, ref, "grad", what="gradient of dice_loss w.r.t. the logits",
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
