"""Lab 06's own probes: modules run with fixed weights, calls that report their inputs after."""

import zlib
from functools import reduce

import numpy as np
import torch

from labkit.checking import probe_utils as pu


def _model(ns, cls, config):
    """``ns[cls](**config)`` in eval mode, each parameter drawn from its name: N(0, 1/fan_in) for
    weight matrices, 1 + N(0, 0.1^2) norm weights, N(0, 0.1^2) biases, N(0, 0.5^2) tokens."""
    torch.manual_seed(0)
    model = ns[cls](**config)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{cls}(...) must be an nn.Module, got {type(model).__name__}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = np.random.default_rng(zlib.crc32(name.encode())).normal(0, 1, tuple(p.shape))
            weight, vector = name.endswith("weight"), z.ndim == 1
            scale = z[0].size ** -0.5 if weight and not vector else 0.1 if vector else 0.5
            p.copy_(torch.from_numpy(z * scale + (weight and vector)))
    return model.eval()


def loaded(ns, inputs, cls, config, args=(), methods=("forward",), attrs=(), grads=()):
    """A module with fixed weights: ``params``, ``attr.<path>``, each method's output on ``args``;
    with ``grads``, x of ``(x, ...)`` in train mode and those parameters' ``grad.<name>``."""
    model, args = _model(ns, cls, config), pu._arguments(list(args), inputs, {})
    out = {"params": pu.parameters_out(model)}
    for path in attrs:
        obj = reduce(lambda o, a: getattr(o, a, None), path.split("."), model)
        pu.flatten(obj, f"attr.{path}", out)
    with torch.no_grad():
        for m in methods:
            pu.flatten((model if m == "forward" else getattr(model, m))(*args), m, out)
    if grads:
        x = model.train()(*args)[0]
        pu.flatten(x, "train", out)
        pu._backward(x)
        out.update({f"grad.{n}": g for n, p in model.named_parameters()
                    if n in grads and (g := pu.grad_out(p)) is not None})
    return out


def call_after(ns, inputs, fn, args=(), kwargs=None):
    """The generic ``call`` (``out``), then its arguments as they are after it (``after``)."""
    args, kwargs = (pu._arguments(a, inputs, {}) for a in (list(args), dict(kwargs or {})))
    return pu.flatten(args, "after", pu.flatten(ns[fn](*args, **kwargs), "out", {}))


def cutmix_draws(ns, inputs, alpha, seeds):
    """cutmix once per generator seed, the outputs stacked (``mixed_images``, ``targets_a``,
    ``targets_b``, ``lam``), then the inputs as they are after the calls (``after``)."""
    images, targets = (torch.from_numpy(inputs[k].copy()) for k in ("images", "targets"))
    keys, draws = ("mixed_images", "targets_a", "targets_b"), []
    for seed in seeds:  # each draw read at once (an in-place cutmix changes it later)
        d = ns["cutmix"](images, targets, alpha, generator=torch.Generator().manual_seed(seed))
        if not (isinstance(d, (tuple, list)) and len(d) == 4):
            raise TypeError("cutmix must return (mixed_images, targets_a, targets_b, lam)")
        draws.append([pu.tensor_out(x, k) for x, k in zip(d, keys)] + [pu.number_out(d[3], "lam")])
    out = {k: np.stack([d[i] for d in draws]) for i, k in enumerate(keys)}
    out["lam"] = [d[3] for d in draws]
    return pu.flatten([images, targets], "after", out)


def rollout_pipeline(ns, inputs, config):
    """attention_rollout of the maps of a ViT with fixed weights (``out``)."""
    with torch.no_grad():
        _, maps = _model(ns, "ViT", config).forward_with_attention(
            torch.from_numpy(inputs["images"]))
        return pu.flatten(ns["attention_rollout"](list(maps)), "out", {})
