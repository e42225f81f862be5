"""Lab 01's own probes (raw outputs only)."""

import torch
from torch import nn

from labkit.checking.probe_utils import flatten, module, tensor_out


def after(ns, inputs, fn, names, *first, again=None, **kwargs):
    """``ns[fn](*first, *inputs[names], **kwargs)`` (``out``), the inputs after (``<name>.after``),
    with ``again`` = {tag: seed} the call again with that seed (``<tag>``)."""
    args = [torch.from_numpy(inputs[k].copy()) for k in names]
    out = flatten(ns[fn](*first, *args, **kwargs), "out", {})
    for tag, seed in (again or {}).items():
        fresh = [torch.from_numpy(inputs[k].copy()) for k in names]
        flatten(ns[fn](*first, *fresh, **{**kwargs, "seed": seed}), tag, out)
    return {**out, **{f"{k}.after": tensor_out(a, k) for k, a in zip(names, args, strict=True)}}


def vgg(ns, inputs, config, args):
    """``module`` of VGGResNet(**config) on ``args``; eval-mode ``features`` and ``pooled`` (fc)."""
    made = []
    out = module({"VGGResNet": lambda **c: made.append(ns["VGGResNet"](**c)) or made[0]}, inputs,
                 "VGGResNet", config, args)
    with torch.no_grad():
        features = made[0].features(torch.from_numpy(inputs["args.0"]))
        flatten(made[0].fc(features.mean((2, 3))), "pooled", flatten(features, "features", out))
    return out


def cam(ns, inputs, bias, class_idx=None):
    """``after`` of class_activation_map(fixed CNN, images, class_idx); its mode after the call."""
    model = nn.Module()
    model.features, model.fc = nn.Conv2d(1, 8, 3, 2, 1, bias=bias), nn.Linear(8, 10)
    model.forward = lambda images: model.fc(model.features(images).mean((2, 3)))
    weights = torch.from_numpy(inputs["weights"][:sum(p.numel() for p in model.parameters())])
    nn.utils.vector_to_parameters(weights, model.parameters())
    idx = torch.from_numpy(inputs["class_idx"]) if class_idx is None else class_idx
    out = after(ns, inputs, "class_activation_map", ["images"], model.eval(), class_idx=idx)
    return {**out, "training": model.training}
