"""Lab 05 (robustness to input modalities): exercises and public checks."""

import numpy as np

from labkit.checking.spec import Check, Exercise, Lab, labels, normal, probe, same, uniform

TO, EVAL, DEG = "to_modality", "evaluate_modalities", "relative_degradation"
EXERCISES = (  # labkit's transform is off limits (torchvision's luma fails the tolerance anyway)
    Exercise(TO, ("images", "modality"), forbidden=(TO, "ToModality", "kornia", "cv2")),
    Exercise(EVAL, ("model", "loader", "modalities")), Exercise(DEG, ("per_class_iou",)))


def modality(m, images=(2, 3, 5, 7)):  # images: an array, or the shape of uniform random ones
    return probe("modality", images=uniform(images) if isinstance(images, tuple) else images,
                 modality=m).expect(
        same("out", f"to_modality(images, {m!r})", dtype="f"),
        same("out.dtype", "the dtype of to_modality's output", hint="(keep the input's dtype)"),
        same("input", "the images after to_modality", rtol=0, atol=0,
             hint="(to_modality changed its input in place: return a new tensor)"))


def evaluate(modalities, k, masks, batch_size=2, **kwargs):  # a 3x3 conv model, k classes
    n, *size = masks.args[0]
    return probe("evaluate", weight=normal((k, 3, 3, 3)), bias=normal((k,), 0.1),
                 images=uniform((n, 3, *size)), masks=masks, modalities=list(modalities),
                 num_classes=k, batch_size=batch_size, **kwargs).expect(
        same("out.order", "the keys of the result", hint="(a dict, in the order given)"),
        same("calls", "model calls in train mode or with gradients (call model.eval(), no_grad)"),
        *[same(f"out.{m}", f"the per-class IoU in {m!r}", dtype="f") for m in modalities])


def degradation(rows, keys=("rgb", "grayscale", "inverted_grayscale"), **kwargs):
    return probe("degradation", rows=np.array(rows, float), order=list(keys), **kwargs).expect(
        same("out.order", "the keys of the result", hint="(a dict, in the order given)"),
        *[same(f"out.{m}", f"relative degradation of {m!r}", rtol=1e-6, atol=1e-9) for m in keys])


CHECKS = [
    Check("1.1", TO, "grayscale of a (B,3,H,W) batch (luma 0.299 R + 0.587 G + 0.114 B, "
          "3 channels)", 2, modality("grayscale")),
    Check("1.2", TO, "inverted grayscale of a (B,3,H,W) batch (1 - luma, 3 channels)", 2,
          modality("inverted_grayscale")),
    Check("1.3", TO, '"rgb" returns the images unchanged', 1, modality("rgb")),
    Check("2.1", EVAL, "per-class IoU in the three modalities (tiny conv model, 2 batches)", 3,
          evaluate(("rgb", "grayscale", "inverted_grayscale"), 5, labels((4, 8, 12), 5, 0.15))),
    Check("2.2", EVAL, "a subset of the modalities, keys in the order given", 1,
          evaluate(["inverted_grayscale", "rgb"], 5, labels((3, 7, 9), 5, 0.1))),
    Check("3.1", DEG, "(mIoU_rgb - mIoU) / mIoU_rgb for each modality, 0 for rgb", 2,
          degradation([[0.8, 0.4, 0.6], [0.6, 0.3, 0.6], [0.2, 0.1, 0.3]])),
]
LAB = Lab("lab05_robustness", "Robustness to input modalities, and segmenting video",
          EXERCISES, CHECKS)
