"""Lab 02 probes: run in the sandboxed child, call the student's code, return plain data.

Each probe gets the student's namespace and numeric inputs, and returns a dict of numbers and
NumPy arrays. No expected values live here.
"""

import torch
from probe_utils import number_out, tensor_out


def confusion_matrix(ns, inputs, num_classes, ignore_index=255, device="cpu"):
    preds = torch.from_numpy(inputs["preds"]).to(device)
    targets = torch.from_numpy(inputs["targets"]).to(device)
    out = ns["confusion_matrix"](preds, targets, num_classes, ignore_index=ignore_index)
    return {"confmat": tensor_out(out, "confusion_matrix")}


def mean_iou(ns, inputs):
    confmat = torch.from_numpy(inputs["confmat"])
    out = ns["mean_iou"](confmat)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("mean_iou must return a tuple (per_class_iou, miou)")
    per_class, miou = out
    return {"per_class_iou": tensor_out(per_class, "mean_iou"),
            "miou": number_out(miou, "mean_iou's miou")}


def pipeline(ns, inputs, num_classes, ignore_index=255):
    """confusion_matrix accumulated over batches, then mean_iou: the dataset-level mIoU."""
    preds, targets = torch.from_numpy(inputs["preds"]), torch.from_numpy(inputs["targets"])
    total = None
    for p, t in zip(preds, targets, strict=True):
        cm = ns["confusion_matrix"](p[None], t[None], num_classes, ignore_index=ignore_index)
        total = cm if total is None else total + cm
    per_class, miou = ns["mean_iou"](total)
    return {"per_class_iou": tensor_out(per_class, "mean_iou"), "miou": number_out(miou, "miou")}


# ----------------------------------------------------------------------------- build_fcn


def _conv_out(module, what):
    if not isinstance(module, torch.nn.Conv2d):
        raise TypeError(f"{what} must be an nn.Conv2d, got {type(module).__name__}")
    return {"out_channels": int(module.out_channels), "in_channels": int(module.in_channels),
            "kernel": [int(k) for k in module.kernel_size], "bias": module.bias is not None}


def fcn(ns, inputs, num_classes):
    model = ns["build_fcn"](num_classes)  # pretrained_backbone defaults to False: no download
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"build_fcn must return an nn.Module, got {type(model).__name__}")
    images = torch.from_numpy(inputs["images"])
    model.eval()
    with torch.no_grad():
        out = model(images)
        feats = model.backbone(images)
    if not isinstance(out, dict):
        raise TypeError(f"model(images) must return a dict, got {type(out).__name__}")
    shapes = {}
    for key in ("out", "aux"):
        value = out.get(key)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"model(images)[{key!r}] must be a tensor, got {type(value).__name__}")
        shapes[key] = [int(s) for s in value.shape]
    classifier = _conv_out(model.classifier[4], "model.classifier[4]")
    aux = _conv_out(model.aux_classifier[4], "model.aux_classifier[4]")
    return {
        "keys": sorted(str(k) for k in out),
        "out_shape": shapes["out"],
        "aux_shape": shapes["aux"],
        "finite": bool(torch.isfinite(out["out"]).all() and torch.isfinite(out["aux"]).all()),
        "classifier": classifier,
        "aux_classifier": aux,
        "backbone_shape": [int(s) for s in feats["out"].shape],
        "params": int(sum(p.numel() for p in model.parameters())),
    }


# ----------------------------------------------------------------------------- UNet


def _unet(ns, config):
    model = ns["UNet"](**config)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"UNet(...) must be an nn.Module, got {type(model).__name__}")
    return model


def unet_structure(ns, inputs, config):
    model = _unet(ns, config)
    nn = torch.nn
    modules = list(model.modules())
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU, nn.GELU)
    count = {k.__name__: sum(type(m) is k for m in modules) for k in kinds}
    return {
        "params": int(sum(p.numel() for p in model.parameters())),
        "counts": count,
        "conv_biases": int(sum(type(m) is nn.Conv2d and m.bias is not None for m in modules)),
    }


def unet_forward(ns, inputs, config):
    torch.manual_seed(0)
    model = _unet(ns, config)
    images = torch.from_numpy(inputs["images"])
    model.train()
    logits = model(images)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"model(images) must return a logits tensor, got {type(logits).__name__}")
    logits.float().pow(2).mean().backward()
    no_grad = sum(p.grad is None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        again = model(images)
    return {
        "shape": [int(s) for s in logits.shape],
        "eval_shape": [int(s) for s in again.shape],
        "finite": bool(torch.isfinite(logits).all() and torch.isfinite(again).all()),
        "params_without_grad": int(no_grad),
    }


def unet_invalid(ns, inputs, config):
    try:
        ns["UNet"](**config)
    except ValueError:
        return {"raised_value_error": True}
    return {"raised_value_error": False}


# ----------------------------------------------------------------------------- dice_loss


def dice(ns, inputs, ignore_index=255):
    logits = torch.from_numpy(inputs["logits"]).requires_grad_(True)
    targets = torch.from_numpy(inputs["targets"])
    loss = ns["dice_loss"](logits, targets, ignore_index=ignore_index)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"dice_loss must return a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise TypeError(f"dice_loss must return a scalar, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise TypeError("dice_loss must be differentiable: its result does not require grad "
                        "(computed from detached values or turned into a number?)")
    loss.reshape(()).backward()
    grad = logits.grad if logits.grad is not None else torch.zeros_like(logits)
    return {
        "loss": float(torch.Tensor.item(torch.Tensor.detach(loss))),
        "scalar_0d": loss.ndim == 0,
        "grad": tensor_out(grad, "the gradient of dice_loss"),
        "has_grad": logits.grad is not None,
    }
