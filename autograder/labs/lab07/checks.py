"""Lab 07 checks (trusted parent): compare the student's outputs with the references."""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"


def _diff(got, want, what, limit=4):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[:limit]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[:limit]})")
    return f"{what}: " + "; ".join(parts)


class BuildDetectorChecks(LabCase):
    def _architecture(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_detector"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("keys") != r["keys"]:
            raise StudentError(_diff(g.get("keys", []), r["keys"], "the model's state dict "
                                     "(key:shape) differs from det.fasterrcnn's") +
                               ". Build it with det.fasterrcnn(arch=..., num_classes=..., "
                               "frozen_bn=..., min_size=..., max_size=...).")
        if g.get("norms") != r["norms"]:
            raise StudentError(f"backbone normalisation layers {g.get('norms')}, expected "
                               f"{r['norms']}: frozen BatchNorm exactly when a checkpoint is "
                               "loaded.")
        for key, what in (("cls_out", "cls_score outputs"), ("box_out", "bbox_pred outputs"),
                          ("min_size", "transform.min_size"),
                          ("max_size", "transform.max_size")):
            if g.get(key) != r[key]:
                raise StudentError(f"{what}: {g.get(key)}, expected {r[key]}.")

    def _transfer(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_detector"), self.reference(cid)
        g, r = got.values, ref.values
        if r["served"] and not g.get("served"):
            raise StudentError("the checkpoint was not read: use "
                               "lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init]).")
        if g.get("copied") != r["copied"]:
            heads = [k for k in g.get("copied", []) if not k.startswith("backbone.")]
            if heads:
                raise StudentError(f"{len(heads)} head tensors were copied from the checkpoint "
                                   f"(e.g. {heads[:3]}): only backbone (+FPN for coco) tensors "
                                   "may be copied; the RPN and RoI heads stay as initialised.")
            raise StudentError(_diff(g.get("copied", []), r["copied"],
                                     "the model tensors equal to their checkpoint tensors"))
        for key in ("matched", "skipped"):
            if g.get(key) != r[key]:
                raise StudentError(_diff(g.get(key, []), r[key], f'report["{key}"]'))

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_architecture_random(self):
        """build_detector: MobileNetV3-FPN, "random": state dict, BatchNorm, heads, sizes, losses"""
        self._architecture("build_mnv3_random")
        got, ref = self.outputs("build_mnv3_random", "build_detector"), \
            self.reference("build_mnv3_random")
        self._transfer("build_mnv3_random")
        for key in ("loss_keys", "detection_keys"):
            if got.values.get(key) != ref.values[key]:
                raise StudentError(f"{key}: {got.values.get(key)}, expected {ref.values[key]}.")
        if not got.values.get("losses_finite"):
            raise StudentError("the training losses are not finite.")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    def test_coco_mobilenet(self):
        """build_detector: "coco" (MobileNetV3-FPN) copies exactly the backbone and FPN tensors"""
        self._architecture("build_mnv3_coco")
        self._transfer("build_mnv3_coco")

    @weight(2)
    @number("1.3")
    @visibility("visible")
    def test_imagenet_mobilenet(self):
        """build_detector: "imagenet" (MobileNetV3) fills backbone.body from features.*"""
        self._architecture("build_mnv3_imagenet")
        self._transfer("build_mnv3_imagenet")

    @weight(1)
    @number("1.4")
    @visibility("visible")
    def test_invalid_init(self):
        """build_detector: an unknown backbone_init raises ValueError"""
        got = self.outputs("build_bad_init", "build_detector")
        if got.values.get("raised_value_error") is not True:
            raise StudentError('backbone_init="imagenet21k" must raise ValueError.')

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_resnet50_random(self):
        """build_detector: ResNet-50-FPN "random" with the default sizes (800/1333)"""
        self._architecture("build_r50_random")
        self._transfer("build_r50_random")

    @weight(2)
    @number("1.6")
    @visibility(HIDDEN)
    def test_resnet50_coco(self):
        """build_detector: ResNet-50-FPN "coco" from the Mask R-CNN checkpoint, heads untouched"""
        self._architecture("build_r50_coco")
        self._transfer("build_r50_coco")

    @weight(1)
    @number("1.7")
    @visibility(HIDDEN)
    def test_resnet50_imagenet(self):
        """build_detector: ResNet-50 "imagenet", 11 classes at 320/480 px (fc skipped)"""
        self._architecture("build_r50_imagenet")
        self._transfer("build_r50_imagenet")


class TrainableChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "set_backbone_trainable"), self.reference(cid)
        a, b = got.arrays.get("flags"), ref.arrays["flags"]
        if a is None or a.shape != b.shape:
            raise StudentError("the model's parameters changed (internal: flags missing).")
        wrong = (a != b).nonzero()[0]
        if len(wrong):
            raise StudentError(f"requires_grad of {len(wrong)} parameters differs from the "
                               f"expected (first: parameter #{int(wrong[0])}, expected "
                               f"{bool(b[wrong[0]])}): only model.backbone.body (and "
                               "model.backbone.fpn when fpn=True) may change.")
        self.check_number(got, ref, "count", what="the returned number of parameters", atol=0)

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_freeze_body(self):
        """set_backbone_trainable: freeze the body only (FPN and heads untouched)"""
        self._check("trainable_freeze_body")

    @weight(1)
    @number("2.2")
    @visibility("visible")
    def test_freeze_all(self):
        """set_backbone_trainable: freeze body and FPN (fpn=True)"""
        self._check("trainable_freeze_all")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_unfreeze(self):
        """set_backbone_trainable: unfreezing leaves frozen heads frozen"""
        self._check("trainable_unfreeze_body")
        self._check("trainable_unfreeze_all")
        self._check("trainable_default_fpn")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_mobilenet(self):
        """set_backbone_trainable: MobileNetV3-FPN detector"""
        self._check("trainable_mnv3")


class ScheduleChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "freeze_unfreeze_schedule"), self.reference(cid)
        if got.values.get("length") != ref.values["length"]:
            raise StudentError(f"{got.values.get('length')} epochs in the plan, expected "
                               f"{ref.values['length']}.")
        self.check_array(got, ref, "flags", what="backbone_trainable per epoch", dtype_kind="b")
        self.check_array(got, ref, "lrs", what="learning rate per epoch", rtol=1e-9, atol=0)

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_basic(self):
        """freeze_unfreeze_schedule: 10 epochs, 3 frozen, defaults (factor 0.1, gamma 0.96)"""
        self._check("schedule_basic")

    @weight(1)
    @number("3.2")
    @visibility("visible")
    def test_small(self):
        """freeze_unfreeze_schedule: the notebook's hand-computed case"""
        self._check("schedule_defaults_small")

    @weight(1)
    @number("3.3")
    @visibility(HIDDEN)
    def test_edges(self):
        """freeze_unfreeze_schedule: no frozen epoch, all frozen, zero epochs, other factors"""
        for cid in ("schedule_no_freeze", "schedule_all_frozen", "schedule_zero_epochs",
                    "schedule_other_factors"):
            self._check(cid)

    @weight(1)
    @number("3.4")
    @visibility(HIDDEN)
    def test_invalid(self):
        """freeze_unfreeze_schedule: frozen_epochs < 0 or > epochs raises ValueError"""
        for cid in ("schedule_too_many_frozen", "schedule_negative_frozen"):
            got = self.outputs(cid, "freeze_unfreeze_schedule")
            if got.values.get("raised_value_error") is not True:
                raise StudentError("frozen_epochs outside [0, epochs] must raise ValueError.")
