"""Lab 02 (segmentation): exercises and public checks."""

import numpy as np

from labkit.checking.spec import (
    Check,
    Exercise,
    Grad,
    Lab,
    all_used,
    fn,
    labels,
    module,
    normal,
    param_shapes,
    same,
    scalar,
    shape,
    with_modules,
)

_METRICS = ("SegmentationMetric", "iou_from_confmat", "MulticlassJaccardIndex", "torchmetrics",
            "sklearn", "multiclass_jaccard_index", "metrics")
EXERCISES = (
    Exercise("confusion_matrix", ("preds", "targets", "num_classes"), forbidden=_METRICS),
    Exercise("mean_iou", ("confmat",), forbidden=_METRICS),
    Exercise("build_fcn", ("num_classes",)),
    Exercise("UNet", (), kind="class", forbidden=("segmentation_models_pytorch", "monai", "timm",
                                                  "hourglass", "StackedHourglass")),
    Exercise("dice_loss", ("logits", "targets"), forbidden=(
        "monai", "segmentation_models_pytorch", "DiceLoss", "dice_score", "torchmetrics",
        "kornia")),
)
CM, IOU, FCN, UNET, DICE = (e.name for e in EXERCISES)
UNET_BASE = dict(in_channels=3, num_classes=3, width=8, depth=2)


def cm(*args, **kwargs):
    return fn(CM, *args, **kwargs).expect(
        same("out", "confusion_matrix", dtype="iu", atol=0))


def iou(confmat):
    return fn(IOU, np.asarray(confmat, dtype=np.int64)).expect(
        same("out.0", "per-class IoU", dtype="f"), same("out.1", "mIoU"))


def fcn(num_classes, size, heads=True, params=True):
    what = "model(images)[{!r}]"
    return module("build_fcn", {"num_classes": num_classes}, normal(size), train=False).expect(*[
        same("eval.keys", "the keys of model(images)", hint="(aux_loss=True keeps the auxiliary "
             "head)"), shape("eval.out", what.format("out")),
        shape("eval.aux", what.format("aux"))] * heads + [param_shapes(
            "model.params", "build_fcn", "fcn_resnet50 with aux_loss=True and 1x1 convolutions "
            "with bias as the new last layers")] * params)


def unet(size=None, structure=True, **config):
    config = dict(UNET_BASE, **config)
    text = "UNet(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"
    checks = [param_shapes("model.params", text, "follow the specification of the stub exactly"),
              with_modules("model.modules", ("ReLU", "GELU"), text)] if structure else []
    if size:
        hint = "(pad the input to a multiple of 2**depth and crop the logits back)"
        checks += [shape("train", f"{text}: the logits in train mode", hint),
                   shape("eval", f"{text}: the logits in eval mode", hint), all_used(text)]
    return module(UNET, config, *([normal(size)] if size else [])).expect(*checks)


def dice(logits, targets, atol=1e-5, value=True, grad=True, **kwargs):
    return fn(DICE, Grad(logits), targets, **kwargs).expect(
        scalar("out", "dice_loss"), *[same("out", "dice_loss", rtol=1e-4, atol=atol)] * value,
        *[same("grad.args.0", "gradient of dice_loss w.r.t. the logits", rtol=1e-3, dtype="f",
               nan_ok=False, hint="(does the loss back-propagate?)")] * grad)


CHECKS = [
    Check("1.1", CM, "2x2 image, 3 classes (rows = targets, columns = preds)", 2,
          cm(np.array([[[0, 1], [2, 2]]]), np.array([[[0, 1], [1, 2]]]), 3)),
    Check("1.2", CM, "random batch with ignored pixels", 2,
          cm(labels((2, 17, 23), 5), labels((2, 17, 23), 5, 0.1), 5)),
    Check("2.1", IOU, "3x3 confusion matrix", 2, iou([[1, 0, 0], [0, 1, 1], [0, 0, 1]])),
    Check("2.2", IOU, "a class absent from targets and predictions is NaN, excluded from the "
          "mean", 2, iou([[5, 1, 0, 0], [2, 7, 0, 0], [0, 0, 0, 0], [0, 3, 0, 4]])),
    Check("4.1", FCN, 'output dict "out"/"aux" of shape (B,K,H,W); both last layers predict K',
          2, fcn(3, (2, 3, 48, 40), params=False)),
    Check("4.2", FCN, "parameters of fcn_resnet50 (weights=None)", 1,
          fcn(3, (2, 3, 48, 40), heads=False)),
    Check("5.1", UNET, "parameter count (width 8, depth 2, concat), forward and gradients", 2,
          unet((2, 3, 32, 32))),
    Check("5.2", UNET, "output (B,K,37,53) for a 37x53 input", 1,
          unet((2, 3, 37, 53), structure=False)),
    Check("6.1", DICE, "value on a random batch with ignored pixels (3 classes)", 2,
          dice(normal((2, 3, 8, 8), 2.0), labels((2, 8, 8), 3, 0.2), grad=False)),
    Check("6.2", DICE, "gradient with respect to the logits", 1,
          dice(normal((2, 3, 8, 8), 2.0), labels((2, 8, 8), 3, 0.2), value=False)),
]

LAB = Lab("lab02_segmentation", "Semantic segmentation: datasets, mIoU, FCN and U-Net",
          EXERCISES, CHECKS)
