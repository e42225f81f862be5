"""Lab 01 probes: run in the sandboxed child, call the student's code, return plain data.

Each probe gets the student's namespace and numeric inputs and returns a dict of numbers and
NumPy arrays; structural facts (shapes, module kinds, agreement rates) are measured here, the
thresholds and reference values live in the parent's checks.
"""

import numpy as np
import torch
import torch.nn.functional as F
from probe_utils import as_tensor, tensor_out
from torch import nn

# ----------------------------------------------------------------------------- 1. VGGResNet


def _build(ns, config):
    model = ns["VGGResNet"](**config)
    if not isinstance(model, nn.Module):
        raise TypeError(f"VGGResNet(...) must be an nn.Module, got {type(model).__name__}")
    return model


def vggresnet_structure(ns, inputs, config):
    model = _build(ns, config)
    modules = list(model.modules())
    count = {kind.__name__: sum(isinstance(m, kind) for m in modules)
             for kind in (nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU, nn.GELU, nn.Linear)}
    features, fc = getattr(model, "features", None), getattr(model, "fc", None)
    return {
        "params": int(sum(p.numel() for p in model.parameters())),
        "has_maxpool": count["MaxPool2d"] > 0,
        "has_batchnorm": count["BatchNorm2d"] > 0,
        "has_relu": count["ReLU"] > 0,
        "has_gelu": count["GELU"] > 0,
        "features_is_module": isinstance(features, nn.Module),
        "fc_is_linear": isinstance(fc, nn.Linear),
        "fc_in": int(fc.in_features) if isinstance(fc, nn.Linear) else -1,
        "fc_out": int(fc.out_features) if isinstance(fc, nn.Linear) else -1,
        "conv_biases": int(sum(isinstance(m, nn.Conv2d) and m.bias is not None for m in modules)),
    }


def vggresnet_forward(ns, inputs, config):
    torch.manual_seed(0)
    model = _build(ns, config)
    images = torch.from_numpy(inputs["images"])
    model.train()
    logits = model(images)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"model(images) must return a logits tensor, got {type(logits).__name__}")
    loss = logits.float().pow(2).mean()
    loss.backward()
    no_grad = sum(p.grad is None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        logits = model(images)
        feats = model.features(images)
        manual = model.fc(torch.flatten(feats.mean((2, 3)), 1))
    logits, feats = as_tensor(logits, "model(images)"), as_tensor(feats, "model.features")
    consistent = float("inf")
    if logits.shape == manual.shape:
        consistent = float((logits - manual).abs().max())
    return {
        "logits_shape": list(logits.shape),
        "features_shape": list(feats.shape),
        "forward_vs_features_max_diff": consistent if np.isfinite(consistent) else 1e9,
        "finite": bool(torch.isfinite(logits).all()),
        "params_without_grad": int(no_grad),
    }


def vggresnet_invalid(ns, inputs, config):
    try:
        ns["VGGResNet"](**config)
    except ValueError:
        return {"raised_value_error": True}
    return {"raised_value_error": False}


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
    images = torch.from_numpy(inputs["images"])
    idx = torch.from_numpy(inputs["class_idx"]) if class_idx is None else int(class_idx)
    before = images.clone()
    out = ns["class_activation_map"](model, images, idx)
    if not isinstance(out, torch.Tensor):
        raise TypeError("class_activation_map must return a torch.Tensor, "
                        f"got {type(out).__name__}")
    return {"cams": tensor_out(out, "class_activation_map"),
            "requires_grad": bool(out.requires_grad),
            "input_unchanged": bool(torch.equal(images, before)),
            "model_in_eval": not model.training}


# ----------------------------------------------------------------------------- 3. make_spurious


def _corner_slices(h, w, size, corner):
    top = 0 if corner.startswith("top") else h - size
    left = 0 if corner.endswith("left") else w - size
    return slice(top, top + size), slice(left, left + size)


def _call_spurious(ns, inputs, p, seed, size, corner):
    keys = ("images", "labels", "digits", "digit_labels")
    args = [torch.from_numpy(inputs[k]).clone() for k in keys]
    out = ns["make_spurious"](*args, p=p, seed=seed, size=size, corner=corner)
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError("make_spurious must return a tuple (images, labels, digit_ids)")
    images, labels, ids = (as_tensor(v, "make_spurious") for v in out)
    unchanged = all(torch.equal(a, torch.from_numpy(inputs[k]))
                    for a, k in zip(args, keys, strict=True))
    return images, labels, ids, unchanged


def spurious(ns, inputs, p, seed=0, size=10, corner="top_left", check_patch=False):
    images_in = torch.from_numpy(inputs["images"])
    labels_in = torch.from_numpy(inputs["labels"])
    digits = torch.from_numpy(inputs["digits"])
    digit_labels = torch.from_numpy(inputs["digit_labels"])
    images, labels, ids, unchanged = _call_spurious(ns, inputs, p, seed, size, corner)
    n, _, h, w = images_in.shape
    out = {
        "images_shape": list(images.shape), "images_float": bool(images.is_floating_point()),
        "labels_shape": list(labels.shape), "ids_shape": list(ids.shape),
        "ids_int64": ids.dtype == torch.int64, "inputs_unchanged": bool(unchanged),
    }
    if list(images.shape) != list(images_in.shape) or list(ids.shape) != [n]:
        return out
    images = images.float()
    out["min"], out["max"] = float(images.min()), float(images.max())
    out["labels_equal"] = bool(labels.shape == labels_in.shape
                               and torch.equal(labels.long(), labels_in))
    rows, cols = _corner_slices(h, w, size, corner)
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[rows, cols] = True
    diff = (images - images_in).abs()[:, 0]  # (N, H, W)
    out["outside_max_diff"] = float(diff[:, ~inside].max())
    out["corner_changed_frac"] = float((diff[:, inside].amax(1) > 0).float().mean())
    out["ids_in_range"] = bool(((ids >= 0) & (ids <= 9)).all())
    out["agreement"] = float((ids.long() == labels_in).float().mean())
    again = _call_spurious(ns, inputs, p, seed, size, corner)
    out["same_seed_equal"] = bool(torch.equal(again[0], images) and torch.equal(again[2], ids))
    other = _call_spurious(ns, inputs, p, seed + 1, size, corner)
    out["other_seed_differs"] = not (torch.equal(other[0].float(), images)
                                     and torch.equal(other[2], ids))
    if check_patch:
        resized = F.interpolate(digits.float(), size=(size, size), mode="bilinear",
                                align_corners=False, antialias=False)  # (M, 1, s, s)
        errors = np.full(n, np.inf)
        for i in range(n):
            pool = resized[digit_labels == ids[i].long()]
            if len(pool):
                want = torch.maximum(images_in[i, :, rows, cols][None], pool)  # (k, 1, s, s)
                gap = (want - images[i, :, rows, cols][None]).abs().amax((1, 2, 3))
                errors[i] = float(gap.min())
        out["patch_errors"] = np.minimum(errors, 1e9)
    return out


def spurious_invalid(ns, inputs, corner):
    try:
        _call_spurious(ns, inputs, 0.5, 0, 10, corner)
    except ValueError:
        return {"raised_value_error": True}
    return {"raised_value_error": False}


# ----------------------------------------------------------------------------- 4. shift_images


def shift(ns, inputs, dx, dy):
    images = torch.from_numpy(inputs["images"])
    before = images.clone()
    out = ns["shift_images"](images, dx, dy)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"shift_images must return a torch.Tensor, got {type(out).__name__}")
    return {"shifted": tensor_out(out, "shift_images"),
            "input_unchanged": bool(torch.equal(images, before))}
