"""Lab 04 checks (trusted parent): compare the student's raw outputs with the references.

The probes hand back what the student's functions returned, the models' requires_grad flags and
their tensors before and after a call; every comparison is made here. The exercises are
independent: each call runs one of them.
"""

import numpy as np
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


def _tensors(result, prefix: str) -> dict[str, np.ndarray]:
    """The named tensors a probe flattened into ``prefix`` (+ ``_keys``, ``_shapes``)."""
    flat = result.arrays.get(prefix)
    keys, shapes = result.values.get(f"{prefix}_keys"), result.values.get(f"{prefix}_shapes")
    if (flat is None or flat.ndim != 1 or not isinstance(keys, list)
            or not isinstance(shapes, list) or len(keys) != len(shapes)
            or not all(isinstance(k, str) for k in keys)
            or not all(isinstance(sh, list) and all(isinstance(d, int) and d >= 0 for d in sh)
                       for sh in shapes)):
        raise StudentError("the model's tensors could not be read back (malformed output).")
    sizes = [int(np.prod(sh, dtype=np.int64)) for sh in shapes]
    if sum(sizes) != flat.size:
        raise StudentError("the model's tensors could not be read back (malformed output).")
    out, at = {}, 0
    for key, shape, size in zip(keys, shapes, sizes, strict=True):
        out[key] = flat[at:at + size].reshape(shape)
        at += size
    return out


def _differ(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is None or b is None or a.shape != b.shape or not np.array_equal(a, b)


class FreezeChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "freeze_encoder"), self.reference(cid)
        g, r = got.values, ref.values
        want, have = r["requires_grad"], g.get("requires_grad")
        if not isinstance(have, dict):
            raise StudentError("the model's requires_grad flags could not be read back.")
        still = [n for n, v in want.items() if not v and have.get(n)]
        wrong = [n for n, v in want.items() if v and not have.get(n)]
        if still:
            raise StudentError(f"these encoder parameters are still trainable: {_names(still)}.")
        if wrong:
            raise StudentError(f"these parameters outside model.encoder were frozen (or their "
                               f"flag changed): {_names(wrong)}; freeze only model.encoder.")
        if g.get("count_type") != "int" or g.get("count") != r["count"]:
            raise StudentError(f"freeze_encoder returned {g.get('count')!r} (a "
                               f"{g.get('count_type')}), expected the number of encoder "
                               f"parameter elements as an int ({int(r['count']):,}).")

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
        got, ref = self.outputs("freeze_step", "freeze_encoder"), self.reference("freeze_step")
        before, after = _tensors(ref, "before"), _tensors(got, "after")
        encoder = set(ref.values["encoder"])
        changed = [k for k in before if _differ(after.get(k), before[k])]
        if [k for k in changed if k in encoder]:
            raise StudentError(f"after a training step these encoder parameters changed: "
                               f"{_names(k for k in changed if k in encoder)}.")
        if not [k for k in changed if k not in encoder]:
            raise StudentError("after a training step the head did not change: it must stay "
                               "trainable.")


class ParamGroupChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "param_groups"), self.reference(cid)
        have, want = got.values.get("groups"), ref.values["groups"]
        if not isinstance(have, list) or not all(
                isinstance(x, dict) and isinstance(x.get("params"), list) for x in have):
            raise StudentError("param_groups must return a list of dicts with a 'params' list.")
        members = [n for x in have for n in x["params"]]
        foreign = sum(n is None for n in members)
        if foreign:
            raise StudentError(f"{foreign} tensors in the groups are not parameters of the "
                               "model.")
        duplicates = len(members) - len(set(members))
        if duplicates:
            raise StudentError(f"{duplicates} parameters are in more than one group (or twice "
                               "in one): each trainable parameter goes in exactly one.")
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
        got = self.outputs("groups_fcn_optimizer", "param_groups").values.get("lrs")
        want = self.reference("groups_fcn_optimizer").values["lrs"]
        if got != want:
            raise StudentError(f"torch.optim.AdamW(groups) gave learning rates {got!r}, "
                               f"expected {want!r}.")

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
            have = g.get(key)
            if not isinstance(have, list) or not all(isinstance(k, str) for k in have):
                raise StudentError(f"report[{key!r}] must be a list of keys.")
            if len(have) != len(set(have)):
                raise StudentError(f"report[{key!r}] lists some keys twice.")
            want = r[key]
            if key == "missing":  # load_state_dict's own missing_keys (which the text mentions)
                # leaves out BatchNorm's num_batches_tracked counters: either way is right
                want = [k for k in want if k in have or not k.endswith(".num_batches_tracked")]
            wrong = _set_difference(have, want, "lacks", "should not list")
            if wrong:
                raise StudentError(f"report[{key!r}] {wrong}.")

    def _tensors(self, cid: str) -> None:
        got, ref = self.outputs(cid, "load_encoder_weights"), self.reference(cid)
        have, want = _tensors(got, "after"), _tensors(ref, "after")
        if sorted(have) != sorted(want):
            raise StudentError("the model's state_dict() names changed: "
                               f"{_set_difference(have, want, 'lacks', 'has unexpected')}.")
        matched = set(ref.values["matched"])
        bad = [k for k in want if _differ(have[k], want[k])]
        for copied, what in ((True, "were not copied from the checkpoint"),
                             (False, "should have kept their values")):
            wrong = [k for k in bad if (k in matched) == copied]
            if wrong:
                raise StudentError(f"these tensors of the model {what}: {_names(wrong)}.")

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
        if g.get("returned") != "the model":
            raise StudentError(f"reinit_head must return the model it was given (it returned "
                               f"{g.get('returned')!r}).")
        convs, want = g.get("convs"), r["convs"][-1]
        if not isinstance(convs, list) or not convs or not isinstance(convs[-1], dict):
            raise StudentError("model.head has no nn.Conv2d any more.")
        last = convs[-1]
        if last.get("name") != want["name"]:
            raise StudentError(f"the head's last nn.Conv2d is now {last.get('name')!r}, "
                               f"expected it at {want['name']!r} (replace the layer in place, "
                               "keep its name).")
        if last != want:
            diff = {k: last.get(k) for k in want if last.get(k) != want[k]}
            raise StudentError(f"the new last layer has {diff}, expected "
                               f"{ {k: want[k] for k in diff} } (in_channels, kernel_size, "
                               "stride and padding of the old one, num_classes outputs, a bias).")
        before, ref_after, after = _tensors(ref, "before"), _tensors(ref, "after"), \
            _tensors(got, "after")
        if sorted(after) != sorted(ref_after):
            raise StudentError("state_dict() names changed: keep the replaced layer's name and "
                               "every other module ("
                               f"{_set_difference(after, ref_after, 'lacks', 'has unexpected')}).")
        layer = [k for k in ref_after if _differ(ref_after[k], before.get(k))]
        changed = [k for k in after if _differ(after[k], before.get(k))]
        extra = [k for k in changed if k not in layer]
        if extra:
            raise StudentError(f"tensors other than the last layer changed: {_names(extra)}.")
        dtypes, ref_dtypes = g.get("dtypes") or {}, r["dtypes"]
        wrong = [k for k in layer if k in ref_dtypes and dtypes.get(k) != ref_dtypes[k]]
        if wrong:
            raise StudentError(f"the new layer's {_names(wrong)} have dtype "
                               f"{[dtypes.get(k) for k in wrong]}, expected "
                               f"{[ref_dtypes[k] for k in wrong]} (the old layer's).")
        if g.get("logits_shape") != r["logits_shape"]:
            raise StudentError(f"logits of shape {g.get('logits_shape')}, expected "
                               f"{r['logits_shape']}.")
        if fresh:
            if [k for k in layer if k not in changed]:
                raise StudentError("with the same class count the last layer kept its old "
                                   "weights: it must be freshly initialised.")
            fan_in = want["in"] * int(np.prod(want["kernel"]))
            bound = 1.0 / fan_in ** 0.5 + 1e-6
            if any(np.abs(after[k]).max(initial=0.0) > bound for k in layer):
                raise StudentError("the new layer's weights exceed PyTorch's default "
                                   "initialisation bound 1/sqrt(fan_in).")
            flags = g.get("requires_grad") or {}
            if not all(flags.get(k) is True for k in layer):
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
