"""Lab 05 probes: run in the sandboxed child, call the student's code, return plain data.

Each probe gets the student's namespace and numeric inputs, and returns a dict of numbers and
NumPy arrays. No expected values live here.
"""

import torch
from probe_utils import as_tensor, number_out, tensor_out


def modality(ns, inputs, modality):
    images = torch.from_numpy(inputs["images"].copy())
    before = images.clone()
    out = ns["to_modality"](images, modality)
    got = as_tensor(out, "to_modality")
    return {"out": tensor_out(got, "to_modality"), "shape": [int(s) for s in got.shape],
            "dtype": str(got.dtype).replace("torch.", ""),
            "input_unchanged": bool(torch.equal(images, before))}


def modality_invalid(ns, inputs, modality):
    images = torch.from_numpy(inputs["images"].copy())
    try:
        ns["to_modality"](images, modality)
    except ValueError:
        return {"raised_value_error": True}
    return {"raised_value_error": False}


class _Counting(torch.nn.Module):
    """One 3x3 convolution (the parent's weights) that records train/eval mode and grad use."""

    def __init__(self, weight, bias):
        super().__init__()
        self.conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(weight))
            self.conv.bias.copy_(torch.from_numpy(bias))
        self.calls_in_train_mode = 0
        self.calls_with_grad = 0

    def forward(self, x):
        self.calls_in_train_mode += int(self.training)
        self.calls_with_grad += int(torch.is_grad_enabled())
        return self.conv(x)


def evaluate(ns, inputs, modalities, num_classes, batch_size, ignore_index=255, mean=None,
             std=None):
    torch.manual_seed(0)
    model = _Counting(inputs["weight"], inputs["bias"])
    model.train()  # the student must switch to eval mode
    images = torch.from_numpy(inputs["images"])
    masks = torch.from_numpy(inputs["masks"])
    loader = [(images[i:i + batch_size], masks[i:i + batch_size])
              for i in range(0, len(images), batch_size)]
    kwargs = {"num_classes": num_classes, "ignore_index": ignore_index}
    if mean is not None:
        kwargs["mean"], kwargs["std"] = tuple(mean), tuple(std)
    # evaluated with labkit's modality transform in place of the student's, so that a mistake in
    # to_modality (exercise 1) does not cost the marks of this exercise too
    from labkit.data.transforms import to_modality as reference_to_modality

    own = ns.get("to_modality")
    ns["to_modality"] = reference_to_modality
    try:
        out = ns["evaluate_modalities"](model, loader, list(modalities), **kwargs)
    finally:
        ns["to_modality"] = own
    if not isinstance(out, dict):
        raise TypeError(f"evaluate_modalities must return a dict, got {type(out).__name__}")
    result = {"keys": [str(k) for k in out], "calls_in_train_mode": model.calls_in_train_mode,
              "calls_with_grad": model.calls_with_grad}
    for key, value in out.items():
        result[f"iou_{key}"] = tensor_out(value, f"evaluate_modalities(...)[{key!r}]")
    return result


def degradation(ns, inputs, order, base=None):
    table = {m: torch.from_numpy(inputs[m]) for m in order}
    out = (ns["relative_degradation"](table) if base is None
           else ns["relative_degradation"](table, base=base))
    if not isinstance(out, dict):
        raise TypeError(f"relative_degradation must return a dict, got {type(out).__name__}")
    result = {"keys": [str(k) for k in out]}
    for key, value in out.items():
        result[f"value_{key}"] = number_out(value, f"relative_degradation(...)[{key!r}]")
    return result


def degradation_missing(ns, inputs):
    table = {m: torch.from_numpy(v) for m, v in inputs.items()}
    try:
        ns["relative_degradation"](table)
    except KeyError:
        return {"raised_key_error": True}
    return {"raised_key_error": False}
