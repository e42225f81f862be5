"""Lab 04 checks (trusted parent): compare the student's outputs with the references."""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"


def _names(names, limit=4):
    names = list(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _set_difference(have, want, lacks: str, extra: str) -> str:
    """"" when ``have`` and ``want`` hold the same names, else what is missing and what is extra."""
    missing, surplus = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    return "; ".join([f"{lacks} {_names(missing)}"] * bool(missing)
                     + [f"{extra} {_names(surplus)}"] * bool(surplus))


class FreezeChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "freeze_encoder"), self.reference(cid)
        g, r = got.values, ref.values
        want, have = r["requires_grad"], g.get("requires_grad", {})
        still = [n for n, v in want.items() if not v and have.get(n)]
        wrong = [n for n, v in want.items() if v and not have.get(n)]
        if still:
            raise StudentError(f"these encoder parameters are still trainable: {_names(still)}.")
        if wrong:
            raise StudentError(f"these parameters outside model.encoder were frozen (or their "
                               f"flag changed): {_names(wrong)}; freeze only model.encoder.")
        if not g.get("count_is_int") or g.get("count") != r["count"]:
            raise StudentError(f"freeze_encoder returned {g.get('count')!r}, expected the number "
                               f"of encoder parameter elements as an int ({int(r['count']):,}).")

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_toy(self):
        """freeze_encoder: a small model with encoder and head attributes"""
        self._check("freeze_toy")

    @weight(2)
    @number("1.2")
    @visibility("visible")
    def test_segformer(self):
        """freeze_encoder: Hugging Face SegFormer (tiny config)"""
        self._check("freeze_segformer")

    @weight(1)
    @number("1.3")
    @visibility(HIDDEN)
    def test_fcn(self):
        """freeze_encoder: torchvision FCN (tiny backbone)"""
        self._check("freeze_fcn")

    @weight(1)
    @number("1.4")
    @visibility(HIDDEN)
    def test_prefrozen_head(self):
        """freeze_encoder: a head parameter frozen beforehand stays frozen, the others trainable"""
        self._check("freeze_prefrozen")

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_training_step(self):
        """freeze_encoder: one optimiser step changes the head and leaves the encoder as it was"""
        got = self.outputs("freeze_step", "freeze_encoder").values
        if got.get("encoder_changed"):
            raise StudentError(f"after a training step these encoder parameters changed: "
                               f"{_names(got['encoder_changed'])}.")
        if not got.get("head_changed"):
            raise StudentError("after a training step the head did not change: it must stay "
                               "trainable.")


class ParamGroupChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "param_groups"), self.reference(cid)
        g, r = got.values, ref.values
        if g.get("foreign"):
            raise StudentError(f"{g['foreign']} tensors in the groups are not parameters of the "
                               "model.")
        if g.get("duplicates"):
            raise StudentError(f"{g['duplicates']} parameters are in more than one group (or "
                               "twice in one): each trainable parameter goes in exactly one.")
        have, want = g.get("groups", []), r["groups"]
        if [x.get("name") for x in have] != [x["name"] for x in want]:
            raise StudentError(f"groups named {[x.get('name') for x in have]}, expected "
                               f"{[x['name'] for x in want]} (frozen parameters are left out and "
                               "empty groups dropped; 'encoder' first).")
        for h, w in zip(have, want, strict=True):
            if h.get("lr") != w["lr"]:
                raise StudentError(f"group {w['name']!r} has lr {h.get('lr')!r}, expected "
                                   f"{w['lr']!r}.")
            wrong = _set_difference(h["params"], w["params"], "missing", "should not contain")
            if wrong:
                raise StudentError(f"group {w['name']!r}: {wrong}.")
        if g.get("optimizer_lrs") != r["optimizer_lrs"]:
            raise StudentError(f"torch.optim.AdamW(groups) gave learning rates "
                               f"{g.get('optimizer_lrs')!r}, expected {r['optimizer_lrs']!r}.")

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_trainable(self):
        """param_groups: encoder and head groups with their learning rates (small model)"""
        self._check("groups_toy")

    @weight(2)
    @number("2.2")
    @visibility("visible")
    def test_frozen_encoder(self):
        """param_groups: a frozen encoder leaves a single head group (SegFormer)"""
        self._check("groups_frozen")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_fcn(self):
        """param_groups: torchvision FCN, an optimiser built from the groups"""
        self._check("groups_fcn")

    @weight(1)
    @number("2.4")
    @visibility(HIDDEN)
    def test_partly_frozen(self):
        """param_groups: a partly frozen encoder keeps only its trainable parameters"""
        self._check("groups_partial")


class LoadChecks(LabCase):
    def _report(self, cid: str) -> None:
        got, ref = self.outputs(cid, "load_encoder_weights"), self.reference(cid)
        g, r = got.values, ref.values
        if not {"matched", "missing", "unexpected"} <= set(g.get("report_keys", [])):
            raise StudentError(f"the report has keys {g.get('report_keys')}, expected "
                               "'matched', 'missing' and 'unexpected'.")
        for key in ("matched", "missing", "unexpected"):
            if g.get(key + "_duplicates"):
                raise StudentError(f"report[{key!r}] lists some keys twice.")
            wrong = _set_difference(g[key], r[key], "lacks", "should not list")
            if wrong:
                raise StudentError(f"report[{key!r}] {wrong}.")

    def _tensors(self, cid: str) -> None:
        got, ref = self.outputs(cid, "load_encoder_weights"), self.reference(cid)
        have, want = got.values.get("origin", {}), ref.values["origin"]
        for origin, what in (("checkpoint", "were not copied from the checkpoint"),
                             ("unchanged", "should have kept their values")):
            bad = [k for k, v in want.items() if v == origin and have.get(k) != v]
            if bad:
                raise StudentError(f"these tensors of the model {what}: {_names(bad)}.")

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_report_other_class_count(self):
        """load_encoder_weights: 19-class checkpoint into a 3-class SegFormer (report)"""
        self._report("load_segformer")

    @weight(2)
    @number("3.2")
    @visibility("visible")
    def test_tensors_loaded(self):
        """load_encoder_weights: the matched tensors are copied, the others untouched"""
        self._tensors("load_segformer")

    @weight(1)
    @number("3.3")
    @visibility(HIDDEN)
    def test_fcn(self):
        """load_encoder_weights: torchvision FCN, 5-class checkpoint into 3 classes"""
        self._report("load_fcn")
        self._tensors("load_fcn")

    @weight(1)
    @number("3.4")
    @visibility(HIDDEN)
    def test_unknown_keys(self):
        """load_encoder_weights: unknown checkpoint keys are reported, everything else loads"""
        self._report("load_toy_extra")
        self._tensors("load_toy_extra")

    @weight(1)
    @number("3.5")
    @visibility(HIDDEN)
    def test_encoder_only_checkpoint(self):
        """load_encoder_weights: an encoder-only checkpoint with a classifier (ImageNet-like)"""
        self._report("load_encoder_only")
        self._tensors("load_encoder_only")


class ReinitChecks(LabCase):
    def _check(self, cid: str, *, fresh: bool = False) -> None:
        got, ref = self.outputs(cid, "reinit_head"), self.reference(cid)
        g, r = got.values, ref.values
        if not g.get("returned_model"):
            raise StudentError("reinit_head must return the model it was given.")
        if g.get("last_conv_name") != r["last_conv_name"]:
            raise StudentError(f"the head's last nn.Conv2d is now {g.get('last_conv_name')!r}, "
                               f"expected it at {r['last_conv_name']!r} (replace the layer "
                               "in place, keep its name).")
        if g.get("last_conv") != r["last_conv"]:
            raise StudentError(f"the new last layer is {g.get('last_conv')}, expected "
                               f"{r['last_conv']}.")
        if not g.get("same_keys"):
            raise StudentError("state_dict() names changed: keep the replaced layer's name and "
                               "every other module.")
        if g.get("changed") != r["changed"]:
            extra = sorted(set(g.get("changed", [])) - set(r["changed"]))
            raise StudentError(f"tensors other than the last layer changed: {_names(extra)}."
                               if extra else f"changed tensors {g.get('changed')}, expected "
                               f"{r['changed']}.")
        if g.get("logits_shape") != r["logits_shape"]:
            raise StudentError(f"logits of shape {g.get('logits_shape')}, expected "
                               f"{r['logits_shape']}.")
        if fresh:
            if not g.get("fresh"):
                raise StudentError("with the same class count the last layer kept its old "
                                   "weights: it must be freshly initialised.")
            if not g.get("within_default_init"):
                raise StudentError("the new layer's weights exceed PyTorch's default "
                                   "initialisation bound 1/sqrt(fan_in).")
            if not g.get("trainable"):
                raise StudentError("the new layer's parameters must require gradients.")

    @weight(2)
    @number("4.1")
    @visibility("visible")
    def test_segformer(self):
        """reinit_head: SegFormer from 19 classes to 3 (decode_head.classifier)"""
        self._check("reinit_segformer")

    @weight(2)
    @number("4.2")
    @visibility("visible")
    def test_fcn(self):
        """reinit_head: torchvision FCN from 21 classes to 3 (classifier.4)"""
        self._check("reinit_fcn")

    @weight(1)
    @number("4.3")
    @visibility(HIDDEN)
    def test_nested_head(self):
        """reinit_head: the last convolution sits in a nested module of the head"""
        self._check("reinit_toy")

    @weight(1)
    @number("4.4")
    @visibility(HIDDEN)
    def test_fresh_weights(self):
        """reinit_head: same class count: fresh default-initialised trainable weights"""
        self._check("reinit_same", fresh=True)
