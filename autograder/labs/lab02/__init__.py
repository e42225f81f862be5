"""Lab 02 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

import numpy as np

from labkit.checking.lab02 import CM, DICE, FCN, IOU, UNET, UNET_BASE, cm, dice, fcn, iou, unet
from labkit.checking.spec import Check, labels, module, normal, probe, same

_perfect = np.random.default_rng(7).integers(0, 3, size=(2, 9, 11))
_batches = dict(preds=labels((4, 24, 48), 19), targets=labels((4, 24, 48), 19, 0.15),
                num_classes=19)

HIDDEN = [
    Check("1.3", CM, "honours a non-default ignore_index", 1,
          cm(labels((3, 8, 8), 4), labels((3, 8, 8), 4, 0.3, ignore_index=0), 4, ignore_index=0)),
    Check("1.4", CM, "every pixel ignored gives an all-zero matrix", 1,
          cm(labels((2, 5, 5), 3), np.full((2, 5, 5), 255), 3)),
    Check("1.5", CM, "classes absent from the batch still get rows and columns", 1,
          cm(labels((1, 9, 9), 3), labels((1, 9, 9), 3), 6)),
    Check("2.3", IOU, "only one class present", 1, iou([[0, 0], [0, 12]])),
    Check("2.4", IOU, "empty confusion matrix gives all NaN and a NaN mIoU", 1,
          iou(np.zeros((3, 3)))),
    Check("2.5", IOU, "19-class random confusion matrix", 1,
          iou(np.random.default_rng(19).integers(0, 50, size=(19, 19)))),
    Check("3.1", CM, "one image at a time over 4 batches of 19 classes (dataset-level counts)", 1,
          probe("confusion_matrix_batches", **_batches).expect(
              *[same(f"out.{i}", f"confusion_matrix of batch {i}", dtype="iu", atol=0)
                for i in range(4)])),
    Check("3.2", IOU, "of the confusion matrices summed over batches (dataset-level mIoU)", 1,
          probe("mean_iou_pipeline", **_batches).expect(
              same("out.0", "per-class IoU", dtype="f"), same("out.1", "mIoU"))),
    Check("4.3", FCN, "19 classes at an odd input size (45x61)", 1, fcn(19, (1, 3, 45, 61))),
    Check("5.3", UNET, 'skip="sum" (structure, forward at 21x19)', 1,
          unet((2, 3, 21, 19), skip="sum")),
    Check("5.4", UNET, "skip=None (structure, forward at 21x19)", 1,
          unet((2, 3, 21, 19), skip=None)),
    Check("5.5", UNET, "norm=False (no BatchNorm, convolutions with bias)", 1,
          unet((2, 3, 21, 19), norm=False)),
    Check("5.6", UNET, "act=None and act='gelu'", 1,
          unet((2, 3, 21, 19), act=None), unet(act="gelu")),
    Check("5.7", UNET, "other widths, depths, channels and classes (forward at 29x35, depth 4)",
          1, unet((2, 1, 29, 35), in_channels=1, num_classes=5, width=4, depth=4),
          unet(num_classes=19, width=16, depth=1, skip="sum", norm=False)),
    Check("5.8", UNET, "ValueError for an unknown skip or act", 1,
          module(UNET, dict(UNET_BASE, skip="add")).raises("ValueError", 'UNet(..., skip="add")'),
          module(UNET, dict(UNET_BASE, act="tanh")).raises("ValueError", 'UNet(..., act="tanh")'),
          needs=("5.1",)),
    Check("6.3", DICE, "19 classes, 30% ignored (value and gradient)", 1,
          dice(normal((2, 19, 12, 20)), labels((2, 12, 20), 19, 0.3))),
    Check("6.4", DICE, "honours a non-default ignore_index", 1,
          dice(normal((3, 4, 6, 5)), labels((3, 6, 5), 4), ignore_index=0)),
    Check("6.5", DICE, "classes absent from the targets still count in the mean over K", 1,
          dice(normal((1, 6, 7, 9)), labels((1, 7, 9), 2), grad=False)),
    Check("6.6", DICE, "a perfect prediction gives (almost) 0", 1,
          dice(np.eye(3, dtype=np.float32)[_perfect].transpose(0, 3, 1, 2) * 30.0, _perfect,
               atol=1e-4, grad=False)),
    Check("6.7", DICE, "an all-ignored batch gives 0 with a finite gradient", 1,
          dice(normal((2, 3, 5, 5)), np.full((2, 5, 5), 255), atol=1e-7)),
]
