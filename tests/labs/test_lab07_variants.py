"""Lab 07 style variants: correct code in other styles earns full marks; a typical mistake costs
only its own exercise's points (every other exercise is graded with the reference there).

Three correct variants of every exercise (one notebook each, all three exercises replaced) and
three wrong variants of every exercise, each with its exact per-exercise score: wrong variants 1
and 2 in one notebook per half of the exercises (the other half as in the solution), wrong
variant 3 of every exercise together in one notebook. Eight notebooks graded in all.
"""

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py (the lead's helper) "
                                                  "has not landed yet")

LAB = "lab07"

# ----------------------------------------------------------------------------- build_detector

BUILD = [
    # dict comprehensions; module-level constants built by calls
    '''
INITS = tuple(det.PRETRAINED["resnet50_fpn"]) + ("random",)
FEATURE_PREFIX = {"resnet50_fpn": "", "mobilenet_v3_fpn": "features."}


def build_detector(num_classes, backbone_init, *, arch="resnet50_fpn", min_size=800,
                   max_size=1333):
    if backbone_init not in INITS:
        raise ValueError(backbone_init)
    pretrained = backbone_init != "random"
    model = det.fasterrcnn(arch=arch, num_classes=num_classes, frozen_bn=pretrained,
                           min_size=min_size, max_size=max_size)
    if not pretrained:
        return model, {"matched": [], "skipped": []}
    ckpt = lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init])
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    prefix = FEATURE_PREFIX[arch]
    if backbone_init == "coco":
        target = {k: k for k in ckpt if k.startswith("backbone.")}
    else:
        target = {k: "backbone.body." + k[len(prefix):] for k in ckpt if k.startswith(prefix)}
    fitted = {t: ckpt[k] for k, t in target.items() if shapes.get(t) == ckpt[k].shape}
    used = {k for k, t in target.items() if t in fitted}
    model.load_state_dict(fitted, strict=False)
    return model, {"matched": sorted(fitted), "skipped": sorted(set(ckpt) - used)}
''',
    # tensors copied in place into the state dict's views; the key mapping in another cell
    '''
def build_detector(num_classes, backbone_init, *, arch="resnet50_fpn", min_size=800,
                   max_size=1333):
    checkpoints = {"imagenet": True, "coco": True, "random": False}
    if backbone_init not in checkpoints:
        raise ValueError(f"unknown backbone_init {backbone_init}")
    model = det.fasterrcnn(arch=arch, num_classes=num_classes,
                           frozen_bn=checkpoints[backbone_init], min_size=min_size,
                           max_size=max_size)
    matched, skipped = [], []
    if checkpoints[backbone_init]:
        own = model.state_dict()
        state = lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init])
        with torch.no_grad():
            for key, value in state.items():
                target = source_to_target(key, arch, backbone_init)
                if target is not None and target in own and own[target].shape == value.shape:
                    own[target].copy_(value)
                    matched.append(target)
                else:
                    skipped.append(key)
    return model, {"matched": sorted(matched), "skipped": sorted(skipped)}
''',
    # named parameters and buffers, a regex rename, try/except KeyError
    '''
import re

RENAME = {"mobilenet_v3_fpn": (re.compile(r"^features\\."), "backbone.body."),
          "resnet50_fpn": (re.compile(r"^"), "backbone.body.")}


def build_detector(num_classes, backbone_init, *, arch="resnet50_fpn", min_size=800,
                   max_size=1333):
    if backbone_init == "random":
        return (det.fasterrcnn(arch=arch, num_classes=num_classes, min_size=min_size,
                               max_size=max_size), {"matched": [], "skipped": []})
    if backbone_init not in ("imagenet", "coco"):
        raise ValueError(backbone_init)
    model = det.fasterrcnn(arch=arch, num_classes=num_classes, frozen_bn=True,
                           min_size=min_size, max_size=max_size)
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    state = lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init])
    pattern, repl = RENAME[arch]
    report = {"matched": [], "skipped": []}
    for key in sorted(state):
        if backbone_init == "coco":
            target = key if key.startswith("backbone.") else ""
        else:
            target, n = pattern.subn(repl, key)
            target = target if n else ""
        try:
            slot = tensors[target]
        except KeyError:
            report["skipped"].append(key)
            continue
        if slot.shape != state[key].shape:
            report["skipped"].append(key)
            continue
        slot.data.copy_(state[key])
        report["matched"].append(target)
    report["matched"].sort()
    return model, report
''',
]
BUILD_BEFORE = {1: ['''
def source_to_target(key, arch, backbone_init):
    """The model key a checkpoint key goes to, or None."""
    if backbone_init == "coco":
        return key if key.startswith("backbone.") else None
    if arch == "mobilenet_v3_fpn":
        return "backbone.body." + key.removeprefix("features.") \\
            if key.startswith("features.") else None
    return "backbone.body." + key
''']}


def _build(target_rule, frozen="backbone_init != \"random\""):
    return f'''
def build_detector(num_classes, backbone_init, *, arch="resnet50_fpn", min_size=800,
                   max_size=1333):
    if backbone_init not in ("imagenet", "coco", "random"):
        raise ValueError(backbone_init)
    model = det.fasterrcnn(arch=arch, num_classes=num_classes, frozen_bn={frozen},
                           min_size=min_size, max_size=max_size)
    if backbone_init == "random":
        return model, {{"matched": [], "skipped": []}}
    state = lk.weights.load_state_dict(det.PRETRAINED[arch][backbone_init])
    own = model.state_dict()
    fitted, skipped = {{}}, []
    for key, value in state.items():
        target = {target_rule}
        if target in own and own[target].shape == value.shape:
            fitted[target] = value
        else:
            skipped.append(key)
    model.load_state_dict(fitted, strict=False)
    return model, {{"matched": sorted(fitted), "skipped": sorted(skipped)}}
'''


_RIGHT_RULE = ('(key if key.startswith("backbone.") else None) if backbone_init == "coco" else '
               '"backbone.body." + (key[len("features."):] if arch == "mobilenet_v3_fpn" '
               'else key)')
BUILD_WRONG = [
    # "coco" copies every tensor of matching name and shape: the RPN and RoI heads too
    _build('key if backbone_init == "coco" else "backbone.body." + '
           '(key[len("features."):] if arch == "mobilenet_v3_fpn" else key)'),
    # ordinary BatchNorm even when a checkpoint is loaded
    _build(_RIGHT_RULE, frozen="False"),
    # MobileNetV3's "features." prefix kept: nothing of the ImageNet classifier fits
    _build('(key if key.startswith("backbone.") else None) if backbone_init == "coco" else '
           '"backbone.body." + key'),
]

# ----------------------------------------------------------------------------- set_backbone_trainable

TRAINABLE = [
    # Module.requires_grad_, a generator for the count
    '''
def set_backbone_trainable(model, trainable, *, fpn=False):
    modules = (model.backbone.body, model.backbone.fpn) if fpn else (model.backbone.body,)
    for module in modules:
        module.requires_grad_(trainable)
    return sum(p.numel() for module in modules for p in module.parameters())
''',
    # parameter names against prefix constants
    '''
BODY, FPN = "backbone.body.", "backbone.fpn."


def set_backbone_trainable(model, trainable, *, fpn=False):
    prefixes = (BODY, FPN) if fpn else (BODY,)
    count = 0
    for name, param in model.named_parameters():
        if name.startswith(prefixes):
            param.requires_grad = bool(trainable)
            count += param.numel()
    return count
''',
    # itertools.chain over the parts a lambda in another cell lists; map(torch.numel)
    '''
import itertools


def set_backbone_trainable(model, trainable, *, fpn=False):
    params = list(itertools.chain.from_iterable(
        m.parameters() for m in backbone_parts(model, fpn)))
    for p in params:
        p.requires_grad_(trainable)
    return int(sum(map(torch.numel, params)))
''',
]
TRAINABLE_BEFORE = {2: ['''
backbone_parts = lambda model, fpn: [model.backbone.body] + ([model.backbone.fpn] if fpn else [])
''']}

TRAINABLE_WRONG = [
    # the whole backbone whatever fpn says
    '''
def set_backbone_trainable(model, trainable, *, fpn=False):
    params = list(model.backbone.parameters())
    for p in params:
        p.requires_grad_(trainable)
    return sum(p.numel() for p in params)
''',
    # the number of parameter tensors, not of scalar parameters
    '''
def set_backbone_trainable(model, trainable, *, fpn=False):
    params = list(model.backbone.body.parameters())
    if fpn:
        params += list(model.backbone.fpn.parameters())
    for p in params:
        p.requires_grad_(trainable)
    return len(params)
''',
    # fpn=True sets the FPN instead of the body and the FPN
    '''
def set_backbone_trainable(model, trainable, *, fpn=False):
    part = model.backbone.fpn if fpn else model.backbone.body
    part.requires_grad_(trainable)
    return sum(p.numel() for p in part.parameters())
''',
]

# ----------------------------------------------------------------------------- freeze_unfreeze_schedule

SCHEDULE = [
    # one list comprehension
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    if frozen_epochs < 0 or frozen_epochs > epochs:
        raise ValueError("frozen_epochs out of range")
    return [(lr * (1.0 if e < frozen_epochs else unfreeze_factor) * gamma ** e,
             e >= frozen_epochs) for e in range(epochs)]
''',
    # torch's ExponentialLR stepping a dummy optimizer
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    if not 0 <= frozen_epochs <= epochs:
        raise ValueError(frozen_epochs)
    dummy = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([dummy], lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    plan = []
    for epoch in range(epochs):
        current = opt.param_groups[0]["lr"]
        trainable = epoch >= frozen_epochs
        plan.append((float(current * (unfreeze_factor if trainable else 1.0)), trainable))
        opt.step()
        sched.step()
    return plan
''',
    # NumPy, vectorised; the range check in another cell
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    check_frozen(epochs, frozen_epochs)
    e = np.arange(epochs)
    trainable = e >= frozen_epochs
    lrs = lr * np.where(trainable, unfreeze_factor, 1.0) * np.power(gamma, e)
    return [(float(a), bool(t)) for a, t in zip(lrs, trainable)]
''',
]
SCHEDULE_BEFORE = {2: ['''
def check_frozen(epochs, frozen_epochs):
    if frozen_epochs not in range(epochs + 1):
        raise ValueError(f"frozen_epochs={frozen_epochs} not in [0, {epochs}]")
''']}

SCHEDULE_WRONG = [
    # the decay restarts at unfreezing instead of running from the first epoch
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    if not 0 <= frozen_epochs <= epochs:
        raise ValueError(frozen_epochs)
    plan = []
    for e in range(epochs):
        if e < frozen_epochs:
            plan.append((lr * gamma ** e, False))
        else:
            plan.append((lr * unfreeze_factor * gamma ** (e - frozen_epochs), True))
    return plan
''',
    # off by one: epoch frozen_epochs is still frozen
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    if not 0 <= frozen_epochs <= epochs:
        raise ValueError(frozen_epochs)
    return [(lr * (1.0 if e <= frozen_epochs else unfreeze_factor) * gamma ** e,
             e > frozen_epochs) for e in range(epochs)]
''',
    # no range check
    '''
def freeze_unfreeze_schedule(epochs, frozen_epochs, lr, *, unfreeze_factor=0.1, gamma=0.96):
    return [(lr * (1.0 if e < frozen_epochs else unfreeze_factor) * gamma ** e,
             e >= frozen_epochs) for e in range(epochs)]
''',
]

# ----------------------------------------------------------------------------- the suite

FULL = {"build_detector": 11, "set_backbone_trainable": 5, "freeze_unfreeze_schedule": 5}
CORRECT = {"build_detector": BUILD, "set_backbone_trainable": TRAINABLE,
           "freeze_unfreeze_schedule": SCHEDULE}
BEFORE = {"build_detector": BUILD_BEFORE, "set_backbone_trainable": TRAINABLE_BEFORE,
          "freeze_unfreeze_schedule": SCHEDULE_BEFORE}
WRONG = {"build_detector": BUILD_WRONG, "set_backbone_trainable": TRAINABLE_WRONG,
         "freeze_unfreeze_schedule": SCHEDULE_WRONG}
# the exact score of each wrong variant (the exercise's other points are those it still earns)
WRONG_SCORES = {
    # [0]: the "coco" checks (1.2, 1.6) fail; [1]: every checkpoint check (1.2, 1.3, 1.6, 1.7);
    # [2]: MobileNetV3 "imagenet" (1.3) only
    "build_detector": [7, 4, 9],
    # [0]: fpn=False (2.1, 2.3) fails; [1]: every count; [2]: fpn=True (2.2, 2.3, 2.4) fails
    "set_backbone_trainable": [2, 0, 2],
    # [0], [1]: every plan (the ValueError check does not count while 3.1 fails); [2]: 3.4 only
    "freeze_unfreeze_schedule": [0, 0, 4],
}
ODD = ("build_detector", "freeze_unfreeze_schedule")
EVEN = ("set_backbone_trainable",)


def _grade(tmp_path, replace, before):
    nb = variants.variant_notebook(LAB, replace=replace, before=before)
    results = variants.grade_variant(LAB, nb, tmp_path)
    return variants.exercise_scores(LAB, results), results


def test_variant_tables_are_complete():
    for table in (CORRECT, WRONG):
        assert set(table) == set(FULL) and all(len(v) >= 3 for v in table.values())
    assert set(ODD) | set(EVEN) == set(FULL) and not set(ODD) & set(EVEN)
    assert all(all(s < FULL[ex] for s in WRONG_SCORES[ex]) for ex in FULL)


@pytest.mark.parametrize("k", range(3))
def test_correct_variants_earn_full_marks(k, tmp_path):
    scores, results = _grade(tmp_path, {ex: src[k] for ex, src in CORRECT.items()},
                             {ex: b[k] for ex, b in BEFORE.items() if k in b})
    assert scores == {ex: (m, m) for ex, m in FULL.items()}, variants.failing_detail(results)


@pytest.mark.parametrize("k", range(2))
@pytest.mark.parametrize("half", ["odd", "even"])
def test_wrong_variants_lose_only_their_exercise(k, half, tmp_path):
    wrong = ODD if half == "odd" else EVEN
    scores, results = _grade(tmp_path, {ex: WRONG[ex][k] for ex in wrong}, {})
    expected = {ex: ((WRONG_SCORES[ex][k] if ex in wrong else m), m) for ex, m in FULL.items()}
    assert scores == expected, variants.failing_detail(results)


def test_third_wrong_variants_each_cost_their_own_points(tmp_path):
    """Every exercise wrong at once: each is still graded against the reference of the others."""
    scores, results = _grade(tmp_path, {ex: WRONG[ex][2] for ex in FULL}, {})
    assert scores == {ex: (WRONG_SCORES[ex][2], m) for ex, m in FULL.items()}, \
        variants.failing_detail(results)


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Wrong variant k (k = 0, 1) of every exercise in one notebook each (the three exercises do
    not use each other), for the test comparing the in-kernel self-check with the public checks."""
    return [(variants.variant_notebook(LAB, replace={ex: WRONG[ex][k] for ex in FULL}), set(FULL))
            for k in range(2)]
