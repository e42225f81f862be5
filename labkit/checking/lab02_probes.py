"""Lab 02's own probes: a dataset-level evaluation loop over batches (raw outputs only)."""

import torch

from labkit.checking.probe_utils import flatten, tensor_out


def _batches(ns, inputs, num_classes, ignore_index):
    preds, targets = torch.from_numpy(inputs["preds"]), torch.from_numpy(inputs["targets"])
    return [ns["confusion_matrix"](preds[i:i + 1], targets[i:i + 1], num_classes,
                                   ignore_index=ignore_index) for i in range(len(preds))]


def confusion_matrix_batches(ns, inputs, num_classes, ignore_index=255):
    """One image at a time, as an evaluation loop accumulates them: every batch's matrix."""
    cms = _batches(ns, inputs, num_classes, ignore_index)
    return {f"out.{i}": tensor_out(cm, "confusion_matrix") for i, cm in enumerate(cms)}


def mean_iou_pipeline(ns, inputs, num_classes, ignore_index=255):
    """mean_iou of the confusion matrices summed over the batches (the reference
    ``confusion_matrix`` when mean_iou is graded)."""
    cms = _batches(ns, inputs, num_classes, ignore_index)
    total = cms[0]
    for cm in cms[1:]:
        total = total + cm
    return flatten(ns["mean_iou"](total), "out", {})
