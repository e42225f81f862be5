"""Lab 04 style variants: correct code in other styles earns full marks; a typical mistake costs
only its own exercise's points.

Three correct variants of every exercise (one notebook each, all four functions replaced) and
two wrong variants of every exercise (one notebook per variant number and per half of the
exercises, the other half left as in the solution), each with its exact per-exercise score.
``wrong_notebooks()`` gives the shared self-check test (tests/labs/test_selfcheck.py) wrong
variant 0 and wrong variant 1 of every exercise, each set in one notebook.
"""

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py (the lead's helper) "
                                                  "has not landed yet")

LAB = "lab04"

# ----------------------------------------------------------------------------- freeze_encoder

FREEZE = [
    # the module method and a generator sum
    '''
def freeze_encoder(model):
    model.encoder.requires_grad_(False)
    return sum(p.numel() for p in model.encoder.parameters())
''',
    # a module-level lambda counting with NumPy; the attribute set directly
    '''
NUMEL = lambda params: int(np.sum([p.numel() for p in params], dtype=np.int64))  # noqa: E731


def freeze_encoder(model):
    encoder = list(model.encoder.parameters())
    for p in encoder:
        p.requires_grad = False
    return NUMEL(encoder)
''',
    # the model's named parameters filtered by a helper from another cell (see BEFORE)
    '''
def freeze_encoder(model):
    ids = encoder_ids(model)
    total = 0
    for _, p in model.named_parameters():
        if id(p) in ids:
            p.requires_grad_(False)
            total += p.numel()
    return total
''',
]
FREEZE_HELPER = '''
def encoder_ids(model):
    return {id(p) for p in model.encoder.parameters()}
'''

FREEZE_WRONG = [
    # freezes the whole model
    '''
def freeze_encoder(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return sum(p.numel() for p in model.encoder.parameters())
''',
    # counts the parameter tensors, not their elements
    '''
def freeze_encoder(model):
    params = list(model.encoder.parameters())
    for p in params:
        p.requires_grad_(False)
    return len(params)
''',
]

# ----------------------------------------------------------------------------- param_groups

GROUPS = [
    # comprehensions and a constant tuple of names built by a call
    '''
GROUP_NAMES = tuple(["encoder", "head"])


def param_groups(model, lr_encoder, lr_head):
    enc = set(map(id, model.encoder.parameters()))
    trainable = [p for p in model.parameters() if p.requires_grad]
    parts = ([p for p in trainable if id(p) in enc], [p for p in trainable if id(p) not in enc])
    return [{"name": n, "params": ps, "lr": lr}
            for n, ps, lr in zip(GROUP_NAMES, parts, (lr_encoder, lr_head)) if ps]
''',
    # a dict of groups filled through filter(lambda ...), empty ones dropped at the end
    '''
def param_groups(model, lr_encoder, lr_head):
    groups = {"encoder": {"name": "encoder", "params": [], "lr": lr_encoder},
              "head": {"name": "head", "params": [], "lr": lr_head}}
    enc = {id(p) for p in model.encoder.parameters()}
    for p in filter(lambda q: q.requires_grad, model.parameters()):
        groups["encoder" if id(p) in enc else "head"]["params"].append(p)
    return [g for g in groups.values() if len(g["params"]) > 0]
''',
    # identity tests against the encoder's own trainable parameters (encoder order kept)
    '''
def param_groups(model, lr_encoder, lr_head):
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    frozen_or_encoder = {id(p) for p in model.encoder.parameters()}
    head_params = [p for p in model.parameters()
                   if p.requires_grad and id(p) not in frozen_or_encoder]
    out = []
    if encoder_params:
        out.append(dict(name="encoder", params=encoder_params, lr=lr_encoder))
    if head_params:
        out.append(dict(name="head", params=head_params, lr=lr_head))
    return out
''',
]

GROUPS_WRONG = [
    # frozen parameters go into the groups too
    '''
def param_groups(model, lr_encoder, lr_head):
    in_encoder = {id(p) for p in model.encoder.parameters()}
    encoder = [p for p in model.parameters() if id(p) in in_encoder]
    head = [p for p in model.parameters() if id(p) not in in_encoder]
    groups = []
    if encoder:
        groups.append({"name": "encoder", "params": encoder, "lr": lr_encoder})
    if head:
        groups.append({"name": "head", "params": head, "lr": lr_head})
    return groups
''',
    # the two learning rates swapped
    '''
def param_groups(model, lr_encoder, lr_head):
    in_encoder = {id(p) for p in model.encoder.parameters()}
    encoder = [p for p in model.parameters() if p.requires_grad and id(p) in in_encoder]
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in in_encoder]
    groups = []
    if encoder:
        groups.append({"name": "encoder", "params": encoder, "lr": lr_head})
    if head:
        groups.append({"name": "head", "params": head, "lr": lr_encoder})
    return groups
''',
]

# ----------------------------------------------------------------------------- load_encoder_weights

LOAD = [
    # in-place copies into the state dict's tensors under no_grad
    '''
def load_encoder_weights(model, state_dict):
    own = model.state_dict()
    report = {"matched": [], "missing": [], "unexpected": []}
    with torch.no_grad():
        for key, value in state_dict.items():
            if key in own and own[key].shape == value.shape:
                own[key].copy_(value)
                report["matched"].append(key)
            else:
                report["unexpected"].append(key)
    done = set(report["matched"])
    report["missing"] = [k for k in own if k not in done]
    return report
''',
    # a strict load of the current state updated with what fits; sets for the report
    '''
def load_encoder_weights(model, state_dict):
    current = model.state_dict()
    fits = {k: v for k, v in state_dict.items()
            if k in current and tuple(v.shape) == tuple(current[k].shape)}
    model.load_state_dict({**current, **fits}, strict=True)
    return {"matched": list(fits), "missing": sorted(set(current) - set(fits)),
            "unexpected": sorted(set(state_dict) - set(fits))}
''',
    # a module-level lambda, filter() and the missing keys reported by load_state_dict
    '''
SHAPE = lambda t: tuple(t.shape)  # noqa: E731


def load_encoder_weights(model, state_dict):
    own = {k: SHAPE(v) for k, v in model.state_dict().items()}
    fitted = dict(filter(lambda kv: own.get(kv[0]) == SHAPE(kv[1]), state_dict.items()))
    result = model.load_state_dict(fitted, strict=False)
    return {"matched": [*fitted], "missing": list(result.missing_keys),
            "unexpected": [k for k in state_dict if k not in fitted]}
''',
]

LOAD_WRONG = [
    # shapes not compared: a head for another class count makes load_state_dict fail
    '''
def load_encoder_weights(model, state_dict):
    own = model.state_dict()
    fitted = {k: v for k, v in state_dict.items() if k in own}
    model.load_state_dict(fitted, strict=False)
    return {"matched": list(fitted), "missing": [k for k in own if k not in fitted],
            "unexpected": [k for k in state_dict if k not in fitted]}
''',
    # "missing" forgets the keys whose shape did not fit
    '''
def load_encoder_weights(model, state_dict):
    own = model.state_dict()
    fitted = {k: v for k, v in state_dict.items()
              if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(fitted, strict=False)
    return {"matched": list(fitted), "missing": [k for k in own if k not in state_dict],
            "unexpected": [k for k in state_dict if k not in fitted]}
''',
]

# ----------------------------------------------------------------------------- reinit_head

REINIT = [
    # a setter helper from another cell (see BEFORE); .to(tensor) for device and dtype
    '''
def reinit_head(model, num_classes):
    convs = [(n, m) for n, m in model.head.named_modules() if isinstance(m, nn.Conv2d)]
    name, old = convs[-1]
    new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding)
    set_submodule(model.head, name, new.to(old.weight))
    return model
''',
    # reversed(named_modules), keyword arguments from a constant tuple, functools.reduce
    '''
import functools

CONV_ARGS = ("in_channels", "kernel_size", "stride", "padding")


def reinit_head(model, num_classes):
    name, last = next((n, m) for n, m in reversed(list(model.head.named_modules()))
                      if isinstance(m, nn.Conv2d))
    kwargs = {a: getattr(last, a) for a in CONV_ARGS}
    new = nn.Conv2d(out_channels=num_classes, bias=True, device=last.weight.device,
                    dtype=last.weight.dtype, **kwargs)
    path, _, attr = name.rpartition(".")
    parent = functools.reduce(getattr, path.split("."), model.head) if path else model.head
    setattr(parent, attr, new)
    return model
''',
    # a recursive walk that remembers each convolution's parent
    '''
def reinit_head(model, num_classes):
    found = []

    def walk(module):
        for child_name, child in module.named_children():
            if isinstance(child, nn.Conv2d):
                found.append((module, child_name, child))
            walk(child)

    walk(model.head)
    if not found:
        raise ValueError("no convolution in model.head")
    parent, attr, old = found[-1]
    new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size,
                    stride=old.stride, padding=old.padding)
    parent._modules[attr] = new.to(device=old.weight.device, dtype=old.weight.dtype)
    return model
''',
]
REINIT_HELPER = '''
def set_submodule(root, dotted, module):
    *path, last = dotted.split(".")
    for part in path:
        root = getattr(root, part)
    setattr(root, last, module)
'''

REINIT_WRONG = [
    # the new layer without a bias
    '''
def reinit_head(model, num_classes):
    name, last = None, None
    for n, m in model.head.named_modules():
        if isinstance(m, nn.Conv2d):
            name, last = n, m
    new = nn.Conv2d(last.in_channels, num_classes, last.kernel_size, stride=last.stride,
                    padding=last.padding, bias=False)
    parent_name, _, child = name.rpartition(".")
    parent = model.head.get_submodule(parent_name) if parent_name else model.head
    setattr(parent, child, new)
    return model
''',
    # the first convolution of the head replaced, not the last
    '''
def reinit_head(model, num_classes):
    name, last = next((n, m) for n, m in model.head.named_modules()
                      if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(last.in_channels, num_classes, last.kernel_size, stride=last.stride,
                    padding=last.padding)
    parent_name, _, child = name.rpartition(".")
    parent = model.head.get_submodule(parent_name) if parent_name else model.head
    setattr(parent, child, new)
    return model
''',
]

EXERCISES = ("freeze_encoder", "param_groups", "load_encoder_weights", "reinit_head")
CORRECT = dict(zip(EXERCISES, (FREEZE, GROUPS, LOAD, REINIT), strict=True))
WRONG = dict(zip(EXERCISES, (FREEZE_WRONG, GROUPS_WRONG, LOAD_WRONG, REINIT_WRONG), strict=True))
# helpers "in another cell", placed before the exercise's cell (used by some variants)
BEFORE = {0: {"reinit_head": [REINIT_HELPER]}, 2: {"freeze_encoder": [FREEZE_HELPER]}}

# what a wrong variant earns of its exercise's points (every other exercise: full marks)
WRONG_SCORES = {
    ("freeze_encoder", 0): 0.0,  # the head is frozen too: no training step possible
    ("freeze_encoder", 1): 1.0,  # wrong count; the training step (1.5) is right
    ("param_groups", 0): 3.0,  # right while nothing is frozen (2.1, 2.3)
    ("param_groups", 1): 0.0,
    ("load_encoder_weights", 0): 2.0,  # right when every shape fits (3.4, 3.5)
    ("load_encoder_weights", 1): 4.0,  # tensors right (3.2); reports right when shapes fit
    ("reinit_head", 0): 0.0,
    ("reinit_head", 1): 0.0,
}


@pytest.mark.parametrize("which", range(3))
def test_correct_variants_earn_full_marks(tmp_path, which):
    nb = variants.variant_notebook(LAB, replace={ex: CORRECT[ex][which] for ex in EXERCISES},
                                   before=BEFORE.get(which, {}))
    results = variants.grade_variant(LAB, nb, tmp_path)
    scores = variants.exercise_scores(LAB, results)
    assert {ex: s for ex, s in scores.items() if s[0] != s[1]} == {}, \
        variants.failing_detail(results)


@pytest.mark.parametrize("which", range(2))
@pytest.mark.parametrize("half", [EXERCISES[0::2], EXERCISES[1::2]], ids=["odd", "even"])
def test_wrong_variants_lose_only_their_exercise(tmp_path, which, half):
    nb = variants.variant_notebook(LAB, replace={ex: WRONG[ex][which] for ex in half})
    results = variants.grade_variant(LAB, nb, tmp_path)
    scores = variants.exercise_scores(LAB, results)
    want = {ex: (WRONG_SCORES[ex, which] if ex in half else top, top)
            for ex, (_, top) in scores.items()}
    assert scores == want, variants.failing_detail(results)


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Wrong variant k (k = 0, 1) of all four exercises in one notebook each: every call runs one
    exercise on a model the probe builds, so the exercises never use each other."""
    return [(variants.variant_notebook(LAB, replace={ex: WRONG[ex][k] for ex in EXERCISES}),
             set(EXERCISES)) for k in range(2)]
