"""Lab 04 probes: run in the sandboxed child, call the student's code, return plain data.

Models are built here with fixed seeds (small: no checkpoint is read): ``toy`` (encoder and a
nested head as attributes, plus a parameter outside both), ``fcn`` (torchvision ``FCN`` on a tiny
backbone, labkit's ``FCNSegmenter``) and ``segformer`` (tiny Hugging Face SegFormer). Raw
outputs only (returned values, flags, names, tensors before and after a call): every comparison
is made in the parent, and no expected value lives here.
"""

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# imported here, once for every exercise's child (the probes are loaded before the children fork)
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.fcn import FCNHead

from labkit.checking.probe_utils import dtype_of, number_out, requires_grad, shape_of, tensor_out
from labkit.models.fcn import FCNSegmenter
from labkit.models.segformer import get_config
from labkit.models.segformer_hf import segformer


class Toy(nn.Module):
    """encoder / head attributes; the head's last conv is nested ("2.1"); a stray parameter."""

    def __init__(self, num_classes):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                     nn.Conv2d(4, 8, 3, stride=2, padding=1))
        self.head = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Sequential(nn.Dropout(0.1), nn.Conv2d(8, num_classes, 1)))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, images):
        logits = self.head(self.encoder(images)) * self.scale
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)


def _tiny_fcn(num_classes):
    body = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), bn1=nn.BatchNorm2d(8),
        relu=nn.ReLU(), layer1=nn.Conv2d(8, 16, 3, stride=2, padding=1)))
    return FCNSegmenter(IntermediateLayerGetter(body, {"layer1": "out"}),
                        FCNHead(16, num_classes), None)


def _tiny_segformer(num_classes):
    cfg = get_config("b0").replace(name="tiny", hidden_sizes=(8, 16, 24, 32),
                                   depths=(1, 1, 1, 1), heads=(1, 1, 2, 2), decoder_dim=16)
    return segformer(variant=cfg, num_classes=num_classes)


def build(kind, num_classes, seed=0):
    torch.manual_seed(seed)
    if kind == "toy":
        return Toy(num_classes)
    if kind == "fcn":
        return _tiny_fcn(num_classes)
    return _tiny_segformer(num_classes)


def _encoder_names(model):
    ids = {id(p) for p in model.encoder.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _flat(named, prefix):
    """Named tensors as one float64 vector ``prefix`` plus ``prefix_keys`` and ``prefix_shapes``
    (the parent cuts it back into tensors; integer buffers are small counters, exact in float64)."""
    keys, shapes, parts = [], [], []
    for k, v in named:
        arr = tensor_out(v, k)
        keys.append(str(k))
        shapes.append([int(d) for d in arr.shape])
        parts.append(arr.astype(np.float64).ravel())
    return {prefix: np.concatenate(parts) if parts else np.zeros(0),
            f"{prefix}_keys": keys, f"{prefix}_shapes": shapes}


def _state_out(model, prefix):
    return _flat(model.state_dict().items(), prefix)


def _params_out(model, prefix):
    return _flat(model.named_parameters(), prefix)


# ----------------------------------------------------------------------------- freeze_encoder


def freeze(ns, inputs, kind, prefreeze=()):
    model = build(kind, 3)
    params = dict(model.named_parameters())
    for name in prefreeze:
        params[name].requires_grad_(False)
    count = ns["freeze_encoder"](model)
    return {"count": number_out(count, "freeze_encoder's return value"),
            "count_type": type(count).__name__,
            "requires_grad": {n: requires_grad(p) for n, p in model.named_parameters()}}


def freeze_step(ns, inputs, kind):
    """One SGD step on the trainable parameters after freeze_encoder: the parameters before
    (``before.<name>``) and after (``after.<name>``) and the encoder's names."""
    model = build(kind, 3)
    encoder = _encoder_names(model)
    before = _params_out(model, "before")
    ns["freeze_encoder"](model)
    trainable = [p for p in model.parameters() if requires_grad(p)]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    model.train()
    loss = F.cross_entropy(model(torch.from_numpy(inputs["images"])),
                           torch.from_numpy(inputs["targets"]))
    loss.backward()
    optimizer.step()
    return {**before, **_params_out(model, "after"), "encoder": encoder}


# ----------------------------------------------------------------------------- param_groups


def _freeze_for(model, frozen):
    encoder = _encoder_names(model)
    params = dict(model.named_parameters())
    chosen = encoder if frozen == "all" else encoder[:4] if frozen == "first" else []
    for n in chosen:
        params[n].requires_grad_(False)


def groups(ns, inputs, kind, lr_encoder, lr_head, frozen=None):
    """The groups as returned: per group its name, lr and the model's names of its tensors in
    order (None for a tensor that is not a parameter of the model; repeats kept)."""
    model = build(kind, 3)
    _freeze_for(model, frozen)
    out = ns["param_groups"](model, lr_encoder, lr_head)
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"param_groups must return a list of dicts, got {type(out).__name__}")
    names = {id(p): n for n, p in model.named_parameters()}
    described = []
    for g in out:
        if not isinstance(g, dict) or "params" not in g:
            raise TypeError("each parameter group must be a dict with a 'params' list")
        name, lr = dict.get(g, "name"), dict.get(g, "lr")
        described.append({
            "name": name if isinstance(name, str) else None,
            "lr": None if lr is None else number_out(lr, "a group's lr"),
            "params": [names.get(id(p)) for p in list(dict.get(g, "params"))]})
    return {"groups": described}


def groups_optimizer(ns, inputs, kind, lr_encoder, lr_head, frozen=None):
    """The learning rates of ``torch.optim.AdamW`` built from the returned groups."""
    model = build(kind, 3)
    _freeze_for(model, frozen)
    optimizer = torch.optim.AdamW(ns["param_groups"](model, lr_encoder, lr_head), lr=1.0)
    return {"lrs": [number_out(g["lr"], "an optimiser group's lr")
                    for g in optimizer.param_groups]}


# ----------------------------------------------------------------------------- load


def load(ns, inputs, kind, src_classes, dst_classes, extra=False, encoder_only=False):
    """The report's lists as returned and the model's state after the call (``after``)."""
    source = build(kind, src_classes, seed=1)
    state = dict(source.state_dict())
    if encoder_only:  # an ImageNet-classifier-like checkpoint: encoder keys plus a classifier
        prefix = "backbone." if kind == "fcn" else "encoder."
        state = {k: v for k, v in state.items() if k.startswith(prefix)}
        state[prefix + "fc.weight"] = torch.randn(10, 16)
        state[prefix + "fc.bias"] = torch.randn(10)
    if extra:
        state["extra.weight"] = torch.zeros(2)
        state["encoder.0.weight_old"] = torch.zeros(4, 3, 3, 3)
    model = build(kind, dst_classes, seed=2)
    report = ns["load_encoder_weights"](model, {k: v.clone() for k, v in state.items()})
    if not isinstance(report, dict):
        raise TypeError(f"load_encoder_weights must return a dict, got {type(report).__name__}")
    lists = {}
    for key in ("matched", "missing", "unexpected"):
        value = dict.get(report, key)
        if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"report[{key!r}] must be a list of keys (str), got "
                            f"{type(value).__name__}")
        lists[key] = [str.__str__(k) for k in value]
    return {**lists, "report_keys": [str(k) for k in dict.keys(report)],
            **_state_out(model, "after")}


# ----------------------------------------------------------------------------- reinit_head


def _convs(head):
    """Every nn.Conv2d of ``head`` in named_modules() order, with its hyper-parameters."""
    return [{"name": n, "in": int(m.in_channels), "out": int(m.out_channels),
             "kernel": [int(k) for k in m.kernel_size], "stride": [int(k) for k in m.stride],
             "padding": [int(k) for k in m.padding] if not isinstance(m.padding, str)
             else m.padding, "bias": m.bias is not None}
            for n, m in head.named_modules() if isinstance(m, nn.Conv2d)]


def reinit(ns, inputs, kind, src_classes, num_classes):
    """The model's state before (``before``) and after (``after``) the call, the head's
    convolutions after it, what came back, the flags and dtypes of the parameters, and the
    logits' shape."""
    model = build(kind, src_classes)
    before = _state_out(model, "before")
    out = ns["reinit_head"](model, num_classes)
    info = {**before, **_state_out(model, "after"),
            "returned": "the model" if out is model else type(out).__name__,
            "convs": _convs(model.head),
            "requires_grad": {n: requires_grad(p) for n, p in model.named_parameters()},
            "dtypes": {n: dtype_of(p) for n, p in model.named_parameters()}}
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs["images"]))
    info["logits_shape"] = shape_of(logits)
    return info
