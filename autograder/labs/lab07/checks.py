"""Lab 07 checks (trusted parent): compare the student's raw outputs with the references.

The probes only hand back raw facts (state-dict keys and shapes, tensor fingerprints, the report
as returned, requires_grad flags, plans); which tensors were copied from the checkpoint, and
every other verdict, is computed here. Each check grades one exercise.
"""

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError, needs_passing

HIDDEN = "after_due_date"
_PARAMS: dict[str, dict] = {}  # call id -> the call's parameters (made in the parent)


def _params(cid: str) -> dict:
    if not _PARAMS:
        from autograder.labs.lab07 import make_calls

        _PARAMS.update({c.id: c.params for c in make_calls()})
    return _PARAMS[cid]


def _diff(got, want, what, limit=4):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {_short(missing[:limit])})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {_short(extra[:limit])})")
    if not parts:
        parts.append("same entries, but not as expected (duplicates?)")
    return f"{what}: " + "; ".join(parts)


def _short(value) -> str:
    """A value read from the child's result.json, for a message (untrusted: shortened)."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _strings(value, what: str) -> list[str]:
    """A list of str read from the child's result.json (StudentError when it is not one)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StudentError(f"{what}: expected a list of strings, got {_short(value)}.")
    return value


def _split(entry: str) -> tuple[str, str]:
    key, _, shape = entry.rpartition(":")
    return key, shape


def _source_key(key: str, arch: str, backbone_init: str) -> str:
    """The checkpoint key a model key is copied from (the stub's mapping)."""
    if backbone_init != "coco" and key.startswith("backbone.body."):
        rest = key[len("backbone.body."):]
        return ("features." + rest) if arch == "mobilenet_v3_fpn" else rest
    return key


def _copied(values: dict, arrays: dict, arch: str, backbone_init: str) -> list[str]:
    """Model keys whose tensor has the shape and the fingerprint of the checkpoint tensor it
    should come from (computed from the raw outputs of one call)."""
    keys = _strings(values.get("keys"), "the model's state dict keys")
    served = _strings(values.get("served"), "the checkpoint keys served")
    fps, served_fps = arrays.get("fingerprints"), arrays.get("served_fingerprints")
    if fps is None \
            or served_fps is None or fps.shape != (len(keys), 16) \
            or served_fps.shape != (len(served), 16):
        raise StudentError("build_detector: internal: the model's fingerprints are missing.")
    source = {}
    for i, entry in enumerate(served):
        key, shape = _split(entry)
        source[key] = (shape, served_fps[i])
    out = []
    for i, entry in enumerate(keys):
        key, shape = _split(entry)
        src = source.get(_source_key(key, arch, backbone_init))
        if src is not None and src[0] == shape and np.array_equal(fps[i], src[1]):
            out.append(key)
    return sorted(out)


class BuildDetectorChecks(LabCase):
    def _architecture(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_detector"), self.reference(cid)
        g, r = got.values, ref.values
        keys = _strings(g.get("keys"), "the model's state dict keys")
        if sorted(keys) != sorted(r["keys"]):
            raise StudentError(_diff(keys, r["keys"], "the model's state dict "
                                     "(key:shape) differs from det.fasterrcnn's") +
                               ". Build it with det.fasterrcnn(arch=..., num_classes=..., "
                               "frozen_bn=..., min_size=..., max_size=...).")
        types, want = g.get("backbone_module_types"), r["backbone_module_types"]
        if not isinstance(types, dict):
            raise StudentError("build_detector: internal: the backbone's module types are "
                               "missing.")
        for name in ("FrozenBatchNorm2d", "BatchNorm2d"):
            if types.get(name, 0) != want.get(name, 0):
                frozen = want.get("FrozenBatchNorm2d", 0) > 0
                raise StudentError(
                    f"the backbone has {types.get(name, 0)} {name} layers, expected "
                    f"{want.get(name, 0)}: frozen BatchNorm (frozen_bn=True) exactly when a "
                    f"checkpoint is loaded, so {'frozen' if frozen else 'ordinary'} BatchNorm "
                    f"for backbone_init={_params(cid)['backbone_init']!r}.")
        for key, what in (("cls_out", "cls_score outputs"), ("box_out", "bbox_pred outputs"),
                          ("min_size", "transform.min_size"),
                          ("max_size", "transform.max_size")):
            if g.get(key) != r[key]:
                raise StudentError(f"{what}: {_short(g.get(key))}, expected {r[key]}.")

    def _transfer(self, cid: str) -> None:
        got, ref = self.outputs(cid, "build_detector"), self.reference(cid)
        g, r = got.values, ref.values
        arch = _params(cid).get("arch", "resnet50_fpn")
        init = _params(cid)["backbone_init"]
        if r["served"] and not g.get("served"):
            raise StudentError("the checkpoint was not read: use "
                               "lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init]).")
        if not r["served"] and g.get("served"):
            raise StudentError(f'backbone_init="{init}" must not read a checkpoint.')
        mine = _copied(g, got.arrays, arch, init)
        want = _copied(r, ref.arrays, arch, init)
        if mine != want:
            heads = [k for k in mine if not k.startswith("backbone.")]
            if heads:
                raise StudentError(f"{len(heads)} head tensors were copied from the checkpoint "
                                   f"(e.g. {heads[:3]}): only backbone (+FPN for coco) tensors "
                                   "may be copied; the RPN and RoI heads stay as initialised.")
            raise StudentError(_diff(mine, want,
                                     "the model tensors equal to their checkpoint tensors"))
        if g.get("report_keys") != ["matched", "skipped"]:
            raise StudentError(f"the report has the keys {_short(g.get('report_keys'))}, expected "
                               "exactly 'matched' and 'skipped'.")
        for key in ("matched", "skipped"):
            have = _strings(g.get(key), f'report["{key}"]')
            if sorted(have) != sorted(r[key]):
                raise StudentError(_diff(have, r[key], f'report["{key}"]'))

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
                raise StudentError(f"{key}: {_short(got.values.get(key))}, expected "
                                   f"{ref.values[key]}.")
        losses = got.arrays.get("loss_values")
        if losses is None or losses.shape != ref.arrays["loss_values"].shape:
            raise StudentError("the training losses are missing.")
        if not np.isfinite(losses).all():
            raise StudentError(f"the training losses are not finite: {losses.tolist()}.")

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
    @needs_passing("1.1")
    def test_invalid_init(self):
        """build_detector: an unknown backbone_init raises ValueError"""
        kind = self.raised("build_bad_init", "build_detector")
        if kind != "ValueError":
            how = "it returned" if kind is None else f"it raised {kind}"
            raise StudentError(f'backbone_init="imagenet21k" must raise ValueError; {how}.')

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
        names = ref.values["names"]
        if a is None or a.shape != b.shape or a.dtype != np.bool_:
            raise StudentError("set_backbone_trainable: internal: the requires_grad flags are "
                               "missing.")
        wrong = (a != b).nonzero()[0]
        if len(wrong):
            first = int(wrong[0])
            raise StudentError(f"requires_grad of {len(wrong)} parameters differs from the "
                               f"expected (first: {names[first]}, expected {bool(b[first])}): "
                               "only model.backbone.body (and model.backbone.fpn when fpn=True) "
                               "may change, and each of them to `trainable`.")
        self.check_number(got, ref, "count", what="the returned number of parameters (the sum "
                          "of numel() of the parameters set)", atol=0)

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
            raise StudentError(f"{_short(got.values.get('length'))} epochs in the plan, expected "
                               f"{ref.values['length']}.")
        types = got.values.get("flag_types")
        if not isinstance(types, list):
            raise StudentError("freeze_unfreeze_schedule: internal: the flags' types are "
                               "missing.")
        for epoch, name in enumerate(types):
            if name not in ("bool", "bool_"):
                raise StudentError(f"backbone_trainable of epoch {epoch} must be a bool, got "
                                   f"{_short(name)}.")
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
    @needs_passing("3.1")
    def test_invalid(self):
        """freeze_unfreeze_schedule: frozen_epochs < 0 or > epochs raises ValueError"""
        for cid, what in (("schedule_too_many_frozen", "frozen_epochs=4 > epochs=3"),
                          ("schedule_negative_frozen", "frozen_epochs=-1")):
            kind = self.raised(cid, "freeze_unfreeze_schedule")
            if kind != "ValueError":
                how = "it returned" if kind is None else f"it raised {kind}"
                raise StudentError(f"{what} must raise ValueError; {how}.")
