"""Lab 04 (transfer learning): exercises and public checks (probe: ``lab04_probes.transfer``)."""

from labkit.checking.spec import Check, Exercise, Fail, Lab, custom, probe

EXERCISES = (Exercise("freeze_encoder", ("model",)),
             Exercise("param_groups", ("model", "lr_encoder", "lr_head")),
             Exercise("load_encoder_weights", ("model", "state_dict"), forbidden=(
                 "load_into", "load_pretrained", "hf_state_dict_to_labkit")),
             Exercise("reinit_head", ("model", "num_classes")))
FREEZE, GROUPS, LOAD, REINIT = (e.name for e in EXERCISES)


def tensors(res) -> dict:
    """Facts of the fingerprints [hash, shape, max |x|] of the tensors after, before, checkpoint."""
    t = {p: res.values.get(f"_{p}", {}) for p in ("after", "before", "src")}
    changed, unlike = ([k for k, f in sorted(t["after"].items()) if t[o].get(k, [])[:2] != f[:2]]
                       for o in ("before", "src"))
    bound = res.values.get("the head's last nn.Conv2d", {}).get("fan_in", 1) ** -0.5 + 1e-6
    return {"the tensors that changed": changed, "the tensors unlike the checkpoint's": unlike,
            "the new weights are within PyTorch's default bound 1/sqrt(fan_in)": all(
                t["after"][k][2] <= bound for k in changed)}


def diff(have, want, what):
    """Fail unless ``have`` is ``want`` (lists of names as sets), naming the first difference."""
    if isinstance(want, dict) and isinstance(have, dict):
        return [diff(have.get(k), w, f"{what}[{k!r}]") for k, w in want.items()]
    if isinstance(want, list) and all(isinstance(n, str) for n in want):
        if not isinstance(have, list) or {type(n) for n in have} - {str}:
            raise Fail(f"{what} must be a list of names, got {str(have)[:80]}.")
        lacks = {n for n in set(want) - set(have) if "'missing'" not in what or "_tracked" not in n}
        parts = [f"{text} {', '.join(sorted(w)[:4])}" + f" (+{len(w) - 4} more)" * (len(w) > 4)
                 for w, text in ((lacks, "lacks"), (set(have) - set(want), "should not have"),
                                 ({n for n in have if have.count(n) > 1}, "lists twice")) if w]
        if parts:
            raise Fail(f"{what} {'; '.join(parts)}.")
    elif isinstance(want, list) and isinstance(have, list):
        if len(have) != len(want):
            raise Fail(f"{what} has {len(have)} items, expected {len(want)}.")
        return [diff(h, w, f"{what}[{i}]") for i, (h, w) in enumerate(zip(have, want))]
    elif type(have) is not type(want) or have != want:
        raise Fail(f"{what}: got {str(have)[:80]}, expected {str(want)[:80]}.")


def run(fn, kind, *args, only="", **kw):
    """``fn(model, *args)`` on a ``kind`` model: the reference's facts named ``only``... hold."""
    return probe("transfer", fn=fn, kind=kind, args=args, **kw).expect(custom(lambda got, ref: [
        diff({**got.values, **tensors(got)}.get(k), w, f"{fn}(...)" if k == "out" else k)
        for k, w in {**ref.values, **tensors(ref)}.items() if k.startswith(only) and k[0] != "_"]))


SEGFORMER_19 = dict(classes=3, checkpoint=dict(classes=19, add={"extra.weight": [2]}))
CHECKS = [Check(number, ex, title, 2, *calls) for number, ex, title, *calls in (
    ("1.1", FREEZE, "a small model with encoder and head attributes", run(FREEZE, "toy")),
    ("1.2", FREEZE, "Hugging Face SegFormer (tiny config)", run(FREEZE, "segformer")),
    ("2.1", GROUPS, "encoder and head groups with their learning rates (small model)",
     run(GROUPS, "toy", 1e-4, 1e-3)),
    ("2.2", GROUPS, "a frozen encoder leaves a single head group (SegFormer)",
     run(GROUPS, "segformer", 5e-5, 2e-4, frozen=("segformer.",)),  # and a partly frozen toy:
     run(GROUPS, "toy", 0.01, 0.1, frozen=("backbone.0.", "classifier.0.4.bias"))),
    ("3.1", LOAD, "19-class checkpoint into a 3-class SegFormer (report)",
     run(LOAD, "segformer", only="out", **SEGFORMER_19)),
    ("3.2", LOAD, "the matched tensors are copied, the others untouched",
     run(LOAD, "segformer", only="the tensors", **SEGFORMER_19)),
    ("4.1", REINIT, "SegFormer from 19 classes to 3 (decode_head.classifier)",
     run(REINIT, "segformer", 3, classes=19)),
    ("4.2", REINIT, "torchvision FCN from 21 classes to 3 (classifier.4)",
     run(REINIT, "fcn", 3, classes=21)))]
LAB = Lab("lab04_transfer", "Transfer learning: pre-training, from scratch, frozen encoder",
          EXERCISES, CHECKS)
