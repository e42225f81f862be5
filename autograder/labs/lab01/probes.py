"""Lab 01 probes: run in the sandboxed child, call the student's code, return raw outputs.

Each probe gets the student's namespace and numeric inputs and returns what the student's objects
returned or are made of (base-class arrays, shapes, parameter names and shapes, the torch.nn class
of every module, the inputs as they are after the call). No expected value and no verdict lives
here: every comparison, threshold and property is computed by the parent (checks.py). Exceptions
propagate: the parent sees their type (the error-handling checks expect a ValueError).
"""

import torch
from torch import nn

from labkit.checking.probe_utils import (
    dtype_of,
    grad_out,
    nn_class,
    parameters_out,
    requires_grad,
    tensor_out,
)

# ----------------------------------------------------------------------------- helpers


def _attr_class(model, name):
    value = getattr(model, name, None)
    return nn_class(value) if isinstance(value, nn.Module) else None


# ----------------------------------------------------------------------------- 1. VGGResNet


def _build(ns, config):
    model = ns["VGGResNet"](**config)
    if not isinstance(model, nn.Module):
        raise TypeError(f"VGGResNet(...) must be an nn.Module, got {type(model).__name__}")
    return model


def vggresnet_structure(ns, inputs, config):
    model = _build(ns, config)
    fc = getattr(model, "fc", None)
    convs = [[int(m.in_channels), int(m.out_channels), [int(k) for k in m.kernel_size],
              [int(s) for s in m.stride], m.bias is not None]
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    return {
        "params": parameters_out(model),
        "modules": [nn_class(m) for m in model.modules()],
        "convs": convs,
        "features_class": _attr_class(model, "features"),
        "fc_class": _attr_class(model, "fc"),
        "fc_in": int(fc.in_features) if isinstance(fc, nn.Linear) else None,
        "fc_out": int(fc.out_features) if isinstance(fc, nn.Linear) else None,
    }


def vggresnet_forward(ns, inputs, config):
    torch.manual_seed(0)
    model = _build(ns, config)
    images = torch.from_numpy(inputs["images"])
    model.train()
    logits = model(images)
    train_logits = tensor_out(logits, "model(images)")
    if requires_grad(logits):
        with torch._C.DisableTorchFunction():
            logits.float().pow(2).mean().backward()
    without_grad = [str(n) for n, p in model.named_parameters()
                    if requires_grad(p) and grad_out(p) is None]
    model.eval()
    with torch.no_grad():
        logits = tensor_out(model(images), "model(images)")
        feats = tensor_out(model.features(images), "model.features(images)")
        pooled = torch.from_numpy(feats.astype("float32")).mean(dim=tuple(range(2, feats.ndim)))
        fc_of_pooled = tensor_out(model.fc(pooled), "model.fc(pooled features)")
    return {"train_logits": train_logits, "logits": logits, "features": feats,
            "fc_of_pooled": fc_of_pooled, "params_without_grad": without_grad}


def vggresnet_invalid(ns, inputs, config):
    ns["VGGResNet"](**config)  # the parent expects a ValueError
    return {"returned": True}


# ----------------------------------------------------------------------------- 2. CAM


class _TrustedNet(nn.Module):
    """Fixed model with .features (B,1,H,W) -> (B,8,H/2,W/2) and .fc (8 -> 10)."""

    def __init__(self, weights):
        super().__init__()
        bias = "conv1_b" in weights
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1, bias=bias), nn.ReLU(),
            nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=bias), nn.ReLU())
        self.fc = nn.Linear(8, 10)
        with torch.no_grad():
            self.features[0].weight.copy_(torch.from_numpy(weights["conv1_w"]))
            self.features[2].weight.copy_(torch.from_numpy(weights["conv2_w"]))
            if bias:
                self.features[0].bias.copy_(torch.from_numpy(weights["conv1_b"]))
                self.features[2].bias.copy_(torch.from_numpy(weights["conv2_b"]))
            self.fc.weight.copy_(torch.from_numpy(weights["fc_w"]))
            self.fc.bias.copy_(torch.from_numpy(weights["fc_b"]))

    def forward(self, images):
        return self.fc(self.features(images).mean((2, 3)))


def cam(ns, inputs, class_idx=None):
    model = _TrustedNet(inputs).eval()
    images = torch.from_numpy(inputs["images"].copy())
    idx = torch.from_numpy(inputs["class_idx"].copy()) if class_idx is None else int(class_idx)
    out = ns["class_activation_map"](model, images, idx)
    return {"cams": tensor_out(out, "class_activation_map"),
            "requires_grad": requires_grad(out),
            "images_after": tensor_out(images, "the input images"),
            "model_training": bool(nn.Module.__getattribute__(model, "training"))}


# ----------------------------------------------------------------------------- 3. make_spurious

_SPURIOUS_INPUTS = ("images", "labels", "digits", "digit_labels")


def _call_spurious(ns, inputs, p, seed, size, corner):
    args = [torch.from_numpy(inputs[k].copy()) for k in _SPURIOUS_INPUTS]
    out = ns["make_spurious"](*args, p=p, seed=seed, size=size, corner=corner)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise TypeError("make_spurious must return a tuple (images, labels, digit_ids), got "
                        f"{type(out).__name__}")
    return out, args


def spurious(ns, inputs, p, seed=0, size=10, corner="top_left", repeat_images=True):
    """One call, then the same seed again and seed + 1: raw outputs of all three (the images of
    the repeats only when ``repeat_images``: the large statistics cases compare the ids)."""
    (images, labels, ids), args = _call_spurious(ns, inputs, p, seed, size, corner)
    out = {
        "images": tensor_out(images, "make_spurious's images"),
        "images_dtype": dtype_of(images),
        "ids_dtype": dtype_of(ids),
        "labels": tensor_out(labels, "make_spurious's labels"),
        "ids": tensor_out(ids, "make_spurious's digit_ids"),
        "images_is_tensor": isinstance(images, torch.Tensor),
        "ids_is_tensor": isinstance(ids, torch.Tensor),
    }
    for key, arg in zip(_SPURIOUS_INPUTS, args, strict=True):
        out[f"{key}_after"] = tensor_out(arg, f"the input {key}")
    for tag, s in (("again", seed), ("other", seed + 1)):
        (images, _, ids), _ = _call_spurious(ns, inputs, p, s, size, corner)
        out[f"{tag}_ids"] = tensor_out(ids, "make_spurious's digit_ids")
        if repeat_images:
            out[f"{tag}_images"] = tensor_out(images, "make_spurious's images")
    return out


def spurious_invalid(ns, inputs, corner):
    _call_spurious(ns, inputs, 0.5, 0, 10, corner)  # the parent expects a ValueError
    return {"returned": True}


# ----------------------------------------------------------------------------- 4. shift_images


def shift(ns, inputs, dx, dy):
    images = torch.from_numpy(inputs["images"].copy())
    out = ns["shift_images"](images, dx, dy)
    return {"shifted": tensor_out(out, "shift_images"),
            "is_tensor": isinstance(out, torch.Tensor),
            "images_after": tensor_out(images, "the input images")}
