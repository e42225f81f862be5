"""Lab 02 probes: run in the sandboxed child, call the student's code, return plain data.

Each probe gets the student's namespace and numeric inputs, and returns a dict of numbers and
NumPy arrays. No expected values live here.
"""

import numpy as np
import torch


def _tensor_out(value, what):
    """A torch tensor or NumPy array returned by the student, as a plain ndarray."""
    if isinstance(value, torch.Tensor):
        t = torch.Tensor.detach(value)
        return np.array(torch.Tensor.tolist(t.cpu()), dtype=str(t.dtype).replace("torch.", ""))
    if type(value) is np.ndarray:
        return np.array(value.tolist(), dtype=value.dtype)
    raise TypeError(f"{what} must return a torch.Tensor, got {type(value).__name__}")


def _number_out(value, what):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{what}: expected a scalar, got a tensor of shape {tuple(value.shape)}")
        return float(torch.Tensor.item(value))
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{what}: expected a number, got {type(value).__name__}")


def confusion_matrix(ns, inputs, num_classes, ignore_index=255, device="cpu"):
    preds = torch.from_numpy(inputs["preds"]).to(device)
    targets = torch.from_numpy(inputs["targets"]).to(device)
    out = ns["confusion_matrix"](preds, targets, num_classes, ignore_index=ignore_index)
    return {"confmat": _tensor_out(out, "confusion_matrix")}


def mean_iou(ns, inputs):
    confmat = torch.from_numpy(inputs["confmat"])
    out = ns["mean_iou"](confmat)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("mean_iou must return a tuple (per_class_iou, miou)")
    per_class, miou = out
    return {"per_class_iou": _tensor_out(per_class, "mean_iou"),
            "miou": _number_out(miou, "mean_iou's miou")}


def pipeline(ns, inputs, num_classes, ignore_index=255):
    """confusion_matrix accumulated over batches, then mean_iou: the dataset-level mIoU."""
    preds, targets = torch.from_numpy(inputs["preds"]), torch.from_numpy(inputs["targets"])
    total = None
    for p, t in zip(preds, targets):
        cm = ns["confusion_matrix"](p[None], t[None], num_classes, ignore_index=ignore_index)
        total = cm if total is None else total + cm
    per_class, miou = ns["mean_iou"](total)
    return {"per_class_iou": _tensor_out(per_class, "mean_iou"), "miou": _number_out(miou, "miou")}
