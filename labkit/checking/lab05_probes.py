"""Lab 05's own probes (raw outputs only)."""

import torch

from labkit.checking.probe_utils import dtype_of, flatten, tensor_out


def modality(ns, inputs, modality):
    """``to_modality(images, modality)`` (``out``, ``out.dtype``); the images after: ``input``."""
    images = torch.from_numpy(inputs["images"].copy())
    result = ns["to_modality"](images, modality)
    out = flatten(result, "out", {"input": tensor_out(images, "the input images")})
    return {**out, "out.dtype": dtype_of(result) if isinstance(result, torch.Tensor) else None}


def _ordered(result, out):  # flattened under ``out``; a dict's keys in order: ``out.order``
    order = [str(k)[:40] for k in result] if isinstance(result, dict) else None
    return {**flatten(result, "out", out), "out.order": order}


def evaluate(ns, inputs, modalities, batch_size, **kwargs):
    """evaluate_modalities of a 3x3 conv left in train mode; ``calls``: its calls not in eval."""
    conv = torch.nn.Conv2d(3, len(inputs["bias"]), 3, padding=1)
    conv.load_state_dict({k: torch.from_numpy(inputs[k]) for k in ("weight", "bias")})
    log = []  # per call of the model: in train mode or with gradients on
    conv.register_forward_pre_hook(lambda m, _: log.append(m.training or torch.is_grad_enabled()))
    loader = list(zip(*(torch.tensor(inputs[k]).split(batch_size) for k in ("images", "masks"))))
    result = ns["evaluate_modalities"](conv.train(), loader, list(modalities), **kwargs)
    return _ordered(result, {"calls": sum(log)})


def degradation(ns, inputs, order, **kwargs):
    """``relative_degradation({key: row of rows}, **kwargs)`` (keys in ``order``)."""
    table = {m: torch.from_numpy(row) for m, row in zip(order, inputs["rows"], strict=True)}
    return _ordered(ns["relative_degradation"](table, **kwargs), {})
