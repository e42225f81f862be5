"""Lab 04 probes: run in the sandboxed child, call the student's code, return plain data.

Models are built here with fixed seeds (small: no checkpoint is read): ``toy`` (encoder and a
nested head as attributes, plus a parameter outside both), ``fcn`` (torchvision ``FCN`` on a tiny
backbone, labkit's ``FCNSegmenter``) and ``segformer`` (tiny Hugging Face SegFormer). No expected
values live here.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from probe_utils import number_out
from torch import nn


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
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.fcn import FCNHead

    from labkit.models.fcn import FCNSegmenter

    body = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), bn1=nn.BatchNorm2d(8),
        relu=nn.ReLU(), layer1=nn.Conv2d(8, 16, 3, stride=2, padding=1)))
    return FCNSegmenter(IntermediateLayerGetter(body, {"layer1": "out"}),
                        FCNHead(16, num_classes), None)


def _tiny_segformer(num_classes):
    from labkit.models.segformer import get_config
    from labkit.models.segformer_hf import segformer

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


# ----------------------------------------------------------------------------- freeze_encoder


def freeze(ns, inputs, kind, prefreeze=()):
    model = build(kind, 3)
    params = dict(model.named_parameters())
    for name in prefreeze:
        params[name].requires_grad_(False)
    count = ns["freeze_encoder"](model)
    return {"count": number_out(count, "freeze_encoder's return value"),
            "count_is_int": isinstance(count, int) and not isinstance(count, bool),
            "requires_grad": {n: bool(p.requires_grad) for n, p in model.named_parameters()}}


def freeze_step(ns, inputs, kind):
    model = build(kind, 3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ns["freeze_encoder"](model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    model.train()
    loss = F.cross_entropy(model(torch.from_numpy(inputs["images"])),
                           torch.from_numpy(inputs["targets"]))
    loss.backward()
    optimizer.step()
    encoder = set(_encoder_names(model))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return {"encoder_changed": sorted(changed & encoder)[:5],
            "head_changed": bool(changed - encoder)}


# ----------------------------------------------------------------------------- param_groups


def groups(ns, inputs, kind, lr_encoder, lr_head, frozen=None):
    model = build(kind, 3)
    encoder = _encoder_names(model)
    params = dict(model.named_parameters())
    if frozen == "all":
        for n in encoder:
            params[n].requires_grad_(False)
    elif frozen == "first":
        for n in encoder[:4]:
            params[n].requires_grad_(False)
    out = ns["param_groups"](model, lr_encoder, lr_head)
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"param_groups must return a list of dicts, got {type(out).__name__}")
    names = {id(p): n for n, p in model.named_parameters()}
    described, seen, duplicates, foreign = [], set(), 0, 0
    for g in out:
        if not isinstance(g, dict) or "params" not in g:
            raise TypeError("each parameter group must be a dict with a 'params' list")
        members = []
        for p in list(g["params"]):
            if id(p) not in names:
                foreign += 1
                continue
            duplicates += id(p) in seen
            seen.add(id(p))
            members.append(names[id(p)])
        lr = g.get("lr")
        described.append({"name": g.get("name") if isinstance(g.get("name"), str) else None,
                          "lr": number_out(lr, "a group's lr") if lr is not None else None,
                          "params": sorted(members)})
    try:
        opt = torch.optim.AdamW(out, lr=1.0)
        optimizer_lrs = [float(g["lr"]) for g in opt.param_groups]
    except Exception as exc:  # noqa: BLE001 - reported to the student
        optimizer_lrs = f"{type(exc).__name__}: {exc}"
    return {"groups": described, "duplicates": duplicates, "foreign": foreign,
            "optimizer_lrs": optimizer_lrs}


# ----------------------------------------------------------------------------- load


def load(ns, inputs, kind, src_classes, dst_classes, extra=False, encoder_only=False):
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
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = ns["load_encoder_weights"](model, {k: v.clone() for k, v in state.items()})
    if not isinstance(report, dict):
        raise TypeError(f"load_encoder_weights must return a dict, got {type(report).__name__}")
    lists = {}
    for key in ("matched", "missing", "unexpected"):
        value = report.get(key)
        if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"report[{key!r}] must be a list of keys (str), got "
                            f"{type(value).__name__}")
        lists[key] = sorted(value)
        lists[key + "_duplicates"] = len(value) - len(set(value))
    origin = {}
    for k, v in model.state_dict().items():
        if k in state and tuple(state[k].shape) == tuple(v.shape) and torch.equal(v, state[k]):
            origin[k] = "checkpoint"
        elif torch.equal(v, init[k]):
            origin[k] = "unchanged"
        else:
            origin[k] = "other"
    return {**lists, "report_keys": sorted(str(k) for k in report), "origin": origin}


# ----------------------------------------------------------------------------- reinit_head


def _last_conv(head):
    name, last = None, None
    for n, m in head.named_modules():
        if isinstance(m, nn.Conv2d):
            name, last = n, m
    return name, last


def reinit(ns, inputs, kind, src_classes, num_classes):
    model = build(kind, src_classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    old_name, old = _last_conv(model.head)
    old_weight = old.weight.detach().clone()
    out = ns["reinit_head"](model, num_classes)
    after = model.state_dict()
    name, conv = _last_conv(model.head)
    changed = sorted(k for k, v in after.items()
                     if k not in before or tuple(v.shape) != tuple(before[k].shape)
                     or not torch.equal(v, before[k]))
    info = {"returned_model": out is model, "same_keys": sorted(after) == sorted(before),
            "changed": changed, "last_conv_name": name, "old_name": old_name}
    if conv is not None:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        bound = 1.0 / fan_in ** 0.5 + 1e-6
        info["last_conv"] = {
            "in": int(conv.in_channels), "out": int(conv.out_channels),
            "kernel": [int(k) for k in conv.kernel_size], "bias": conv.bias is not None}
        info["within_default_init"] = bool(
            conv.weight.detach().abs().max() <= bound
            and (conv.bias is None or conv.bias.detach().abs().max() <= bound))
        info["fresh"] = bool(conv.weight.shape != old_weight.shape
                             or not torch.equal(conv.weight.detach(), old_weight))
        info["trainable"] = all(p.requires_grad for p in conv.parameters())
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs["images"]))
    info["logits_shape"] = [int(s) for s in logits.shape]
    return info
