"""Lab 05 probes: run in the sandboxed child, call the student's code, return raw outputs.

Each probe gets the student's namespace and numeric inputs, and returns what the student's
objects returned (base-class arrays, shapes, dtypes, numbers, key lists) and what the probe's own
model observed. No expected value and no verdict lives here: every comparison is made by the
parent (checks.py). Exceptions propagate: the parent sees their type. The child that runs the
calls of one exercise binds every other exercise of the lab to the reference implementation
(evaluate_modalities calls the reference ``to_modality`` there).
"""

import torch

from labkit.checking.probe_utils import dtype_of, number_out, shape_of, tensor_out


def modality(ns, inputs, modality):
    images = torch.from_numpy(inputs["images"].copy())
    out = ns["to_modality"](images, modality)
    return {"out": tensor_out(out, "to_modality"), "shape": shape_of(out),
            "dtype": dtype_of(out), "is_tensor": isinstance(out, torch.Tensor),
            "input_after": tensor_out(images, "the input images")}


def modality_invalid(ns, inputs, modality):
    images = torch.from_numpy(inputs["images"].copy())
    ns["to_modality"](images, modality)  # the parent expects a ValueError
    return {"returned": True}


class _Recording(torch.nn.Module):
    """One 3x3 convolution (the parent's weights) that records, per forward call, its train/eval
    mode, whether gradients were enabled, and the input's shape."""

    def __init__(self, weight, bias):
        super().__init__()
        self.conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(weight))
            self.conv.bias.copy_(torch.from_numpy(bias))
        self.training_flags = []
        self.grad_flags = []

    def forward(self, x):
        self.training_flags.append(bool(self.training))
        self.grad_flags.append(bool(torch.is_grad_enabled()))
        return self.conv(x)


def evaluate(ns, inputs, modalities, num_classes, batch_size, ignore_index=255, mean=None,
             std=None):
    torch.manual_seed(0)
    model = _Recording(inputs["weight"], inputs["bias"])
    model.train()  # the student must switch to eval mode
    images = torch.from_numpy(inputs["images"])
    masks = torch.from_numpy(inputs["masks"])
    loader = [(images[i:i + batch_size], masks[i:i + batch_size])
              for i in range(0, len(images), batch_size)]
    kwargs = {"num_classes": num_classes, "ignore_index": ignore_index}
    if mean is not None:
        kwargs["mean"], kwargs["std"] = tuple(mean), tuple(std)
    out = ns["evaluate_modalities"](model, loader, list(modalities), **kwargs)
    if not isinstance(out, dict):
        raise TypeError(f"evaluate_modalities must return a dict, got {type(out).__name__}")
    result = {"keys": [str(k) for k in out], "training_flags": list(model.training_flags),
              "grad_flags": list(model.grad_flags)}
    for i, (key, value) in enumerate(out.items()):  # arrays by position: keys are student text
        result[f"iou_{i}"] = tensor_out(value, f"evaluate_modalities(...)[{key!r}]")
    return result


def degradation(ns, inputs, order, base=None):
    table = {m: torch.from_numpy(inputs[m]) for m in order}
    out = (ns["relative_degradation"](table) if base is None
           else ns["relative_degradation"](table, base=base))
    if not isinstance(out, dict):
        raise TypeError(f"relative_degradation must return a dict, got {type(out).__name__}")
    result = {"keys": [str(k) for k in out]}
    for i, (key, value) in enumerate(out.items()):
        result[f"value_{i}"] = number_out(value, f"relative_degradation(...)[{key!r}]")
    return result


def degradation_missing(ns, inputs):
    table = {m: torch.from_numpy(v) for m, v in inputs.items()}
    ns["relative_degradation"](table)  # the parent expects a KeyError
    return {"returned": True}
