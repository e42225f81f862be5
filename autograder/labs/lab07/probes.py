"""Lab 07 probes: run in the sandboxed child, call the student's code, return raw outputs.

No pretrained checkpoint exists in the sandbox (and files there are capped at a few MB): the
probes create empty placeholder files in a temporary ``LABKIT_WEIGHTS`` folder and make
``labkit.weights`` serve, for each, a seeded random state dict of the real architecture (real key
names and shapes) from memory. The student's ``build_detector`` reads them through
``lk.weights.load_state_dict`` as it would read the real files.

The probes hand back raw facts only: the model's state-dict keys and shapes, a fingerprint of
each tensor (16 values at fixed positions), the fingerprints of the checkpoint tensors served,
the report as returned, requires_grad flags, plans. Which tensors were copied, and every other
verdict, is decided by the parent (checks.py). Exceptions propagate: the parent sees their type.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import labkit.weights as weights
from labkit.checking.probe_utils import number_out, requires_grad, tensor_out
from labkit.models import detection
from labkit.models.detection import PRETRAINED

FINGERPRINT = 16  # values sampled from each tensor, at evenly spaced flat positions

_SERVED = {}  # checkpoint name -> {key: (shape, fingerprint)} of what was served in this call
_POOL = []  # one buffer of seeded random numbers; served tensors are views into it


def _fingerprint(array):
    """``FINGERPRINT`` values of a flattened array at evenly spaced positions (NaN if empty)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return np.full(FINGERPRINT, np.nan)
    return flat[(np.arange(FINGERPRINT) * (flat.size - 1)) // (FINGERPRINT - 1)]


def _random_state(name):
    """The state dict of checkpoint ``name`` (real keys, shapes, dtypes) with seeded values that
    differ from tensor to tensor, in ~50 MB: the architecture is built on the meta device and
    every floating-point tensor is a view into one shared random buffer."""
    entry = weights.CATALOG[name]
    with torch.device("meta"):
        model = weights._import(entry.builder)(weights=None, **dict(entry.builder_kwargs))
    if not _POOL:
        _POOL.append(torch.randn(13_000_000, generator=torch.Generator().manual_seed(7)))
    pool = _POOL[0]
    state = {}
    for i, (key, meta) in enumerate(model.state_dict().items()):
        if not meta.is_floating_point():
            state[key] = torch.zeros(meta.shape, dtype=meta.dtype)
            continue
        n = meta.numel()
        start = (i * 1_000_003) % (pool.numel() - n + 1)
        value = pool[start:start + n].view(meta.shape)
        state[key] = value.abs() + 0.5 if key.endswith("running_var") else value
    return state


def _serve_random_checkpoints(arch):
    root = Path(tempfile.mkdtemp(prefix="lab07_weights_"))
    os.environ["LABKIT_WEIGHTS"] = str(root)
    os.environ["LABKIT_OFFLINE"] = "1"
    for name in PRETRAINED[arch].values():
        weights.local_path(name, root).write_bytes(b"")

    def read(path):
        name = Path(path).name[: -len(".pth")]
        state = _random_state(name)
        # fingerprinted as served, before student code can touch the tensors
        _SERVED[name] = {k: ([int(s) for s in v.shape], _fingerprint(v.numpy()))
                         for k, v in state.items()}
        return dict(state)

    weights._read = read


def _str_list(value, what):
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of state-dict keys (str)")
    return [str(v) for v in value]


def build(ns, inputs, num_classes, backbone_init, arch="resnet50_fpn", min_size=800,
          max_size=1333):
    _SERVED.clear()
    _serve_random_checkpoints(arch)
    torch.manual_seed(0)
    kwargs = {"arch": arch, "min_size": min_size, "max_size": max_size}
    if arch == "resnet50_fpn" and (min_size, max_size) == (800, 1333):
        kwargs = {}  # the defaults
    out = ns["build_detector"](num_classes, backbone_init, **kwargs)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("build_detector must return a tuple (model, report)")
    model, report = out
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"build_detector must return an nn.Module first, got {type(model).__name__}")
    if not isinstance(report, dict):
        raise TypeError(f"the report must be a dict, got {type(report).__name__}")
    state = sorted(model.state_dict().items())
    served = sorted(_SERVED.get(PRETRAINED[arch].get(backbone_init, ""), {}).items())
    types = {}
    for m in model.backbone.modules():
        types[type(m).__name__] = types.get(type(m).__name__, 0) + 1
    predictor = model.roi_heads.box_predictor
    result = {
        "keys": [f"{k}:{[int(s) for s in v.shape]}" for k, v in state],
        "fingerprints": np.stack([_fingerprint(tensor_out(v, k)) for k, v in state])
        if state else np.zeros((0, FINGERPRINT)),
        "served": [f"{k}:{shape}" for k, (shape, _) in served],
        "served_fingerprints": np.stack([fp for _, (_, fp) in served])
        if served else np.zeros((0, FINGERPRINT)),
        "backbone_module_types": types,
        "cls_out": int(predictor.cls_score.out_features),
        "box_out": int(predictor.bbox_pred.out_features),
        "min_size": [int(s) for s in model.transform.min_size],
        "max_size": int(model.transform.max_size),
        "report_keys": sorted(str(k) for k in report),
    }
    for key in ("matched", "skipped"):
        if key in report:
            result[key] = _str_list(report[key], f"report[{key!r}]")
    _SERVED.clear()
    if "images" in inputs:  # one training step's losses and one eval forward pass
        images = list(torch.from_numpy(inputs["images"]))
        targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]),
                    "labels": torch.tensor([1])}]
        model.train()
        losses = model(images, targets)
        model.eval()
        with torch.no_grad():
            detections = model(images)
        names = sorted(str(k) for k in losses)
        result["loss_keys"] = names
        result["loss_values"] = np.array(
            [number_out(losses[k], f"loss {k!r}") for k in names], dtype=np.float64)
        result["detection_keys"] = sorted(str(k) for k in detections[0])
    return result


def build_invalid(ns, inputs, num_classes, backbone_init, arch):
    _serve_random_checkpoints(arch)
    ns["build_detector"](num_classes, backbone_init, arch=arch)  # the parent expects ValueError
    return {"returned": True}


def _model(kind):
    torch.manual_seed(0)
    if kind == "tiny":
        return detection.tiny_fasterrcnn(num_classes=4)
    return detection.fasterrcnn(arch=kind, num_classes=5, min_size=64, max_size=96)


def trainable(ns, inputs, trainable, fpn, model):
    net = _model(model)
    start = inputs["start"]
    named = list(net.named_parameters())
    for i, (_, p) in enumerate(named):
        p.requires_grad_(bool(start[i % len(start)]))
    if fpn is None:
        count = ns["set_backbone_trainable"](net, trainable)
    else:
        count = ns["set_backbone_trainable"](net, trainable, fpn=fpn)
    return {"names": [n for n, _ in named],
            "flags": np.array([requires_grad(p) for _, p in named], dtype=bool),
            "count": number_out(count, "set_backbone_trainable's return value")}


def schedule(ns, inputs, args, kwargs):
    plan = ns["freeze_unfreeze_schedule"](*args, **kwargs)
    if not isinstance(plan, (list, tuple)):
        raise TypeError(f"freeze_unfreeze_schedule must return a list, got {type(plan).__name__}")
    lrs, flags, flag_types = [], [], []
    for i, item in enumerate(plan):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"entry {i} of the plan must be a pair (lr, backbone_trainable)")
        lrs.append(number_out(item[0], f"the learning rate of epoch {i}"))
        flag = item[1]
        flag_types.append(type(flag).__name__)
        flags.append(bool(flag) if isinstance(flag, (bool, np.bool_)) else False)
    return {"lrs": np.array(lrs, dtype=np.float64), "flags": np.array(flags, dtype=bool),
            "flag_types": flag_types, "length": len(plan)}


def schedule_invalid(ns, inputs, args):
    ns["freeze_unfreeze_schedule"](*args)  # the parent expects a ValueError
    return {"returned": True}
