"""Lab 02 (segmentation) grading: exercises, deterministic probe inputs, spec."""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

_METRIC_NAMES = ("SegmentationMetric", "iou_from_confmat", "MulticlassJaccardIndex",
                 "torchmetrics", "sklearn", "multiclass_jaccard_index")

_DICE_NAMES = ("monai", "segmentation_models_pytorch", "DiceLoss", "dice_score", "torchmetrics",
               "kornia")

EXERCISES = (
    Exercise("confusion_matrix", ("preds", "targets", "num_classes"),
             forbidden=_METRIC_NAMES + ("metrics",)),
    Exercise("mean_iou", ("confmat",), forbidden=_METRIC_NAMES + ("metrics",)),
    Exercise("build_fcn", ("num_classes",)),
    Exercise("UNet", (), kind="class",
             forbidden=("segmentation_models_pytorch", "monai", "timm", "hourglass",
                        "StackedHourglass")),
    Exercise("dice_loss", ("logits", "targets"), forbidden=_DICE_NAMES),
)

# UNet configurations whose structure (parameter count, activation modules) is compared with the
# solution
UNET_CONFIGS = {
    "base": dict(in_channels=3, num_classes=3, width=8, depth=2),
    "sum": dict(in_channels=3, num_classes=3, width=8, depth=2, skip="sum"),
    "none": dict(in_channels=3, num_classes=3, width=8, depth=2, skip=None),
    "no_norm": dict(in_channels=3, num_classes=3, width=8, depth=2, norm=False),
    "no_act": dict(in_channels=3, num_classes=3, width=8, depth=2, act=None),
    "gelu": dict(in_channels=3, num_classes=3, width=8, depth=2, act="gelu"),
    "deep_narrow": dict(in_channels=1, num_classes=5, width=4, depth=4),
    "shallow_wide": dict(in_channels=3, num_classes=19, width=16, depth=1, skip="sum",
                         norm=False),
}


def _labels(rng, shape, num_classes, ignore_frac=0.0):
    x = rng.integers(0, num_classes, size=shape, dtype=np.int64)
    if ignore_frac:
        x[rng.random(shape) < ignore_frac] = 255
    return x


CM, IOU, FCN, UNET, DICE = "confusion_matrix", "mean_iou", "build_fcn", "UNet", "dice_loss"


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds; one exercise per call."""
    rng = np.random.default_rng(2024)
    calls = []
    # confusion_matrix: a hand-sized case, random with ignore, absent class, all ignored, 1 class
    calls.append(Call("cm_small", "confusion_matrix", {
        "preds": np.array([[[0, 1], [2, 2]]], dtype=np.int64),
        "targets": np.array([[[0, 1], [1, 2]]], dtype=np.int64)}, {"num_classes": 3},
        exercise=CM))
    calls.append(Call("cm_random", "confusion_matrix", {
        "preds": _labels(rng, (2, 17, 23), 5),
        "targets": _labels(rng, (2, 17, 23), 5, 0.1)}, {"num_classes": 5}, exercise=CM))
    calls.append(Call("cm_ignore_other", "confusion_matrix", {
        "preds": _labels(rng, (3, 8, 8), 4),
        "targets": np.where(rng.random((3, 8, 8)) < 0.3, 0, _labels(rng, (3, 8, 8), 4))},
        {"num_classes": 4, "ignore_index": 0}, exercise=CM))
    calls.append(Call("cm_all_ignored", "confusion_matrix", {
        "preds": _labels(rng, (2, 5, 5), 3),
        "targets": np.full((2, 5, 5), 255, dtype=np.int64)}, {"num_classes": 3}, exercise=CM))
    calls.append(Call("cm_absent_class", "confusion_matrix", {
        "preds": _labels(rng, (1, 9, 9), 3),
        "targets": _labels(rng, (1, 9, 9), 3)}, {"num_classes": 6}, exercise=CM))
    # mean_iou: hand case, absent classes (NaN), perfect, single class, all zero
    for cid, confmat in (
            ("iou_small", [[1, 0, 0], [0, 1, 1], [0, 0, 1]]),
            ("iou_absent", [[5, 1, 0, 0], [2, 7, 0, 0], [0, 0, 0, 0], [0, 3, 0, 4]]),
            ("iou_single_class", [[0, 0], [0, 12]]),
            ("iou_empty", np.zeros((3, 3))),
            ("iou_random", rng.integers(0, 50, size=(19, 19)))):
        calls.append(Call(cid, "mean_iou", {"confmat": np.asarray(confmat, dtype=np.int64)},
                          exercise=IOU))
    # dataset-level accumulation over batches (Cityscapes-like: 19 classes, 255 ignored), one
    # call per exercise: confusion_matrix image by image, and mean_iou of the sum of the
    # (reference) matrices; run last, so that a metric that hangs costs at most one restart
    batches = {"preds": _labels(rng, (4, 24, 48), 19),
               "targets": _labels(rng, (4, 24, 48), 19, 0.15)}
    pipeline = [Call("pipeline_cm", "confusion_matrix_batches", batches, {"num_classes": 19},
                     exercise=CM),
                Call("pipeline", "mean_iou_pipeline", batches, {"num_classes": 19},
                     exercise=IOU)]
    return calls + _model_calls(np.random.default_rng(2025)) + pipeline


def _images(rng, shape):
    return rng.normal(0, 1, size=shape).astype(np.float32)


def _model_calls(rng) -> list[Call]:
    calls = []
    # build_fcn: 3 classes at a small even size; 19 classes at an odd size (weights=None)
    calls.append(Call("fcn_pets", "fcn", {"images": _images(rng, (2, 3, 48, 40))},
                      {"num_classes": 3}, exercise=FCN))
    calls.append(Call("fcn_odd", "fcn", {"images": _images(rng, (1, 3, 45, 61))},
                      {"num_classes": 19}, exercise=FCN))
    # UNet: structure per configuration, forward at odd sizes, invalid flags
    for name, cfg in UNET_CONFIGS.items():
        calls.append(Call(f"unet_{name}", "unet_structure", {}, {"config": cfg}, exercise=UNET))
    calls.append(Call("unet_forward", "unet_forward", {"images": _images(rng, (2, 3, 32, 32))},
                      {"config": UNET_CONFIGS["base"]}, exercise=UNET))
    calls.append(Call("unet_forward_odd", "unet_forward",
                      {"images": _images(rng, (2, 3, 37, 53))}, {"config": UNET_CONFIGS["base"]},
                      exercise=UNET))
    for name in ("sum", "none", "no_norm", "no_act"):
        calls.append(Call(f"unet_forward_{name}", "unet_forward",
                          {"images": _images(rng, (2, 3, 21, 19))},
                          {"config": UNET_CONFIGS[name]}, exercise=UNET))
    calls.append(Call("unet_forward_deep", "unet_forward",
                      {"images": _images(rng, (2, 1, 29, 35))},
                      {"config": UNET_CONFIGS["deep_narrow"]}, exercise=UNET))
    calls.append(Call("unet_bad_skip", "unet_invalid", {},
                      {"config": dict(UNET_CONFIGS["base"], skip="add")}, exercise=UNET))
    calls.append(Call("unet_bad_act", "unet_invalid", {},
                      {"config": dict(UNET_CONFIGS["base"], act="tanh")}, exercise=UNET))
    # dice_loss: random with ignored pixels, 19 classes, another ignore_index, absent classes,
    # a perfect prediction, an all-ignored batch
    cases = [
        ("dice_random", {"logits": _images(rng, (2, 3, 8, 8)) * 2,
                         "targets": _labels(rng, (2, 8, 8), 3, 0.2)}, {}),
        ("dice_19", {"logits": _images(rng, (2, 19, 12, 20)),
                     "targets": _labels(rng, (2, 12, 20), 19, 0.3)}, {}),
        ("dice_ignore_other", {"logits": _images(rng, (3, 4, 6, 5)),
                               "targets": _labels(rng, (3, 6, 5), 4)}, {"ignore_index": 0}),
        ("dice_absent", {"logits": _images(rng, (1, 6, 7, 9)),
                         "targets": _labels(rng, (1, 7, 9), 2)}, {}),
    ]
    perfect = _labels(rng, (2, 9, 11), 3)
    cases.append(("dice_perfect", {
        "logits": (np.eye(3, dtype=np.float32)[perfect].transpose(0, 3, 1, 2) * 30.0),
        "targets": perfect}, {}))
    cases.append(("dice_all_ignored", {"logits": _images(rng, (2, 3, 5, 5)),
                                       "targets": np.full((2, 5, 5), 255, dtype=np.int64)}, {}))
    calls += [Call(cid, "dice", arrays, params, exercise=DICE) for cid, arrays, params in cases]
    return calls


LAB = LabSpec("lab02", "lab02_segmentation", EXERCISES, make_calls,
              title="Semantic segmentation: datasets, mIoU, FCN and U-Net")
