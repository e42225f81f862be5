"""Lab 02 probes: run in the sandboxed child, call the student's code, return raw outputs.

Each probe gets the student's namespace and numeric inputs and returns what the student's objects
returned or are made of (base-class arrays, numbers, shapes, parameter names and shapes, the
torch.nn class of every module). No expected value and no verdict lives here: every comparison and
property is computed by the parent (checks.py). Exceptions propagate: the parent sees their type
(the error-handling checks expect a ValueError). The child that runs the calls of one exercise
binds every other exercise of the lab to the reference implementation (``mean_iou_pipeline``
accumulates with the reference ``confusion_matrix`` there).
"""

import torch
from probe_utils import (
    grad_out,
    nn_class,
    number_out,
    parameters_out,
    requires_grad,
    shape_of,
    tensor_out,
)

# ----------------------------------------------------------------------------- helpers


def _without_grad(model):
    """Names of the trainable parameters that got no gradient."""
    return [str(n) for n, p in model.named_parameters() if requires_grad(p) and grad_out(p) is None]


def _backward(out):
    """Back-propagate sum(out**2) through the base class (a subclass cannot intercept it)."""
    if requires_grad(out):
        with torch._C.DisableTorchFunction():
            out.float().pow(2).mean().backward()


# ----------------------------------------------------------------------------- metrics


def confusion_matrix(ns, inputs, num_classes, ignore_index=255):
    preds = torch.from_numpy(inputs["preds"])
    targets = torch.from_numpy(inputs["targets"])
    out = ns["confusion_matrix"](preds, targets, num_classes, ignore_index=ignore_index)
    return {"confmat": tensor_out(out, "confusion_matrix")}


def confusion_matrix_batches(ns, inputs, num_classes, ignore_index=255):
    """One image at a time, as an evaluation loop accumulates them: every batch's matrix."""
    preds, targets = torch.from_numpy(inputs["preds"]), torch.from_numpy(inputs["targets"])
    out = {}
    for i in range(len(preds)):
        cm = ns["confusion_matrix"](preds[i:i + 1], targets[i:i + 1], num_classes,
                                    ignore_index=ignore_index)
        out[f"confmat_{i}"] = tensor_out(cm, "confusion_matrix")
    return out


def _iou_out(out):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"mean_iou must return a tuple (per_class_iou, miou), got "
                        f"{type(out).__name__}")
    per_class, miou = out
    return {"per_class_iou": tensor_out(per_class, "mean_iou's per_class_iou"),
            "miou": number_out(miou, "mean_iou's miou")}


def mean_iou(ns, inputs):
    return _iou_out(ns["mean_iou"](torch.from_numpy(inputs["confmat"])))


def mean_iou_pipeline(ns, inputs, num_classes, ignore_index=255):
    """The dataset-level mIoU: the matrices of ``confusion_matrix`` (the reference one when
    mean_iou is graded) summed over the batches, then mean_iou."""
    preds, targets = torch.from_numpy(inputs["preds"]), torch.from_numpy(inputs["targets"])
    total = None
    for i in range(len(preds)):
        cm = ns["confusion_matrix"](preds[i:i + 1], targets[i:i + 1], num_classes,
                                    ignore_index=ignore_index)
        total = cm if total is None else total + cm
    return _iou_out(ns["mean_iou"](total))


# ----------------------------------------------------------------------------- build_fcn


def _conv_facts(head):
    """Class and shape facts of ``head[4]`` (None when the head is missing or shorter)."""
    ok = isinstance(head, torch.nn.Sequential) and len(head) > 4
    module = head[4] if ok else None
    facts = {"class": nn_class(module) if isinstance(module, torch.nn.Module) else None}
    if isinstance(module, torch.nn.Conv2d):
        facts.update(in_channels=int(module.in_channels), out_channels=int(module.out_channels),
                     kernel=[int(k) for k in module.kernel_size], bias=module.bias is not None)
    return facts


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
    result = {"keys": sorted(str(k) for k in out),
              "classifier": _conv_facts(getattr(model, "classifier", None)),
              "aux_classifier": _conv_facts(getattr(model, "aux_classifier", None)),
              "backbone_shape": shape_of(feats["out"]),
              "params": parameters_out(model)}
    for key in ("out", "aux"):
        if key in out:
            result[key] = tensor_out(out[key], f"model(images)[{key!r}]")
    return result


# ----------------------------------------------------------------------------- UNet


def _unet(ns, config):
    model = ns["UNet"](**config)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"UNet(...) must be an nn.Module, got {type(model).__name__}")
    return model


def unet_structure(ns, inputs, config):
    model = _unet(ns, config)
    convs = [[int(m.in_channels), int(m.out_channels), [int(k) for k in m.kernel_size],
              m.bias is not None]
             for m in model.modules() if type(m) is torch.nn.Conv2d]
    return {"params": parameters_out(model),
            "modules": [nn_class(m) for m in model.modules()],
            "convs": convs}


def unet_forward(ns, inputs, config):
    torch.manual_seed(0)
    model = _unet(ns, config)
    images = torch.from_numpy(inputs["images"])
    model.train()
    logits = model(images)
    train_logits = tensor_out(logits, "model(images)")
    _backward(logits)
    without_grad = _without_grad(model)
    model.eval()
    with torch.no_grad():
        eval_logits = tensor_out(model(images), "model(images)")
    return {"train_logits": train_logits, "eval_logits": eval_logits,
            "params_without_grad": without_grad}


def unet_invalid(ns, inputs, config):
    ns["UNet"](**config)  # the parent expects a ValueError
    return {"returned": True}


# ----------------------------------------------------------------------------- dice_loss


def dice(ns, inputs, ignore_index=255):
    logits = torch.from_numpy(inputs["logits"].copy()).requires_grad_(True)
    targets = torch.from_numpy(inputs["targets"])
    loss = ns["dice_loss"](logits, targets, ignore_index=ignore_index)
    out = {"loss": tensor_out(loss, "dice_loss"),
           "requires_grad": requires_grad(loss)}
    if out["requires_grad"] and out["loss"].size == 1:
        with torch._C.DisableTorchFunction():
            loss.reshape(()).backward()
    grad = grad_out(logits)
    if grad is not None:
        out["grad"] = grad
    return out
