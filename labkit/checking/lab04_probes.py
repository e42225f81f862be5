"""Lab 04's own probe: the student's function on a small model built here; raw facts back."""

import functools
import json
import re

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.fcn import FCNHead

from labkit.checking.probe_utils import dtype_of, requires_grad, tensor_out
from labkit.models import fcn, get_config, segformer_hf

TINY = get_config("b0").replace(name="tiny", hidden_sizes=(4, 8, 12, 16), depths=(1, 1, 1, 1),
                                heads=(1, 1, 2, 2), decoder_dim=8)


def build(kind, classes, seed=0):
    """Tiny ``segformer`` (HF), ``fcn`` (torchvision), ``toy`` (fcn, nested head, extra param)."""
    torch.manual_seed(seed)
    if kind == "segformer":
        return segformer_hf.segformer(variant=TINY, num_classes=classes)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, 2, 1))
    head = FCNHead(16, classes) if kind == "fcn" else nn.Sequential(FCNHead(16, classes))
    model = fcn.FCNSegmenter(IntermediateLayerGetter(body, {"3": "out"}), head, None)
    model.scale = nn.Parameter(torch.ones(1)) if kind == "toy" else None  # outside encoder, head
    return model


def transfer(ns, inputs, fn, kind, args=(), classes=3, frozen=(), checkpoint=None):
    """``ns[fn](model, *args)`` on ``build(kind, classes)`` with ``frozen*`` frozen; ``checkpoint``
    {classes, keep, add}: first another model's state dict (``keep``* keys, zeros ``add``)."""
    model = build(kind, classes, seed=2 if checkpoint else 0)
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(tuple(frozen)))
    snap = lambda pairs: {k: [hash(a.tobytes()), list(a.shape), float(abs(a).max(initial=0))]
                          for k, a in ((k, tensor_out(v, k)) for k, v in pairs)}  # fingerprints
    out = {"_before": snap(model.state_dict().items())}
    if checkpoint:
        state = {k: v for k, v in build(kind, checkpoint["classes"], 1).state_dict().items()
                 if k.startswith(checkpoint.get("keep", ""))}
        state.update({k: torch.zeros(s) for k, s in checkpoint.get("add", {}).items()})
        args, out["_src"] = (state, *args), snap(state.items())
    names = {id(p): n for n, p in model.named_parameters()}  # parameters by name, others by type
    result = ns[fn](model, *args)
    out["out"] = json.loads(json.dumps(result, default=lambda x: names.get(
        id(x), f"<{type(x).__name__}>")))
    if fn == "param_groups":
        out["the learning rates of torch.optim.AdamW(groups)"] = [
            float(g["lr"]) for g in torch.optim.AdamW(result, lr=1.0).param_groups]
    if fn == "freeze_encoder" and any(map(requires_grad, model.parameters())):  # an SGD step
        model.eval()(torch.randn(2, 3, 32, 32)).mean().backward()  # eval: BatchNorm stats stay
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    out["_after"] = snap(model.state_dict().items())
    out["the frozen parameters"] = [n for n, p in model.named_parameters() if not requires_grad(p)]
    for n, c in [(n, m) for n, m in model.head.named_modules() if isinstance(m, nn.Conv2d)][-1:]:
        out["the head's last nn.Conv2d"] = {"name": n, **{a: getattr(c, a) for a in (
            "in_channels", "out_channels", "kernel_size", "stride", "padding")},
            "bias": c.bias is not None, "dtype": dtype_of(c.weight), "fan_in": c.weight[0].numel()}
    return json.loads(functools.reduce(  # SegFormer names as transformers 5 writes them
        lambda text, rule: re.sub(*rule, text), segformer_hf._RENAMES, json.dumps(out)))
