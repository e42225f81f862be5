"""Lab 05 (robustness to input modalities) grading: exercises, deterministic probe inputs, spec."""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

MODALITIES = ("rgb", "grayscale", "inverted_grayscale")

EXERCISES = (
    # labkit's own transform is forbidden; torchvision's rgb_to_grayscale (0.2989 R) fails the
    # checks' tolerance by itself, so the names a student may give an own helper stay allowed
    Exercise("to_modality", ("images", "modality"),
             forbidden=("to_modality", "ToModality", "kornia", "cv2")),
    Exercise("evaluate_modalities", ("model", "loader", "modalities")),
    Exercise("relative_degradation", ("per_class_iou",)),
)

TO, EVAL, DEG = (e.name for e in EXERCISES)


def _images(rng, shape, dtype=np.float32):
    return rng.random(shape).astype(dtype)


def _labels(rng, shape, num_classes, ignore_frac=0.0, ignore_index=255):
    x = rng.integers(0, num_classes, size=shape, dtype=np.int64)
    if ignore_frac:
        x[rng.random(shape) < ignore_frac] = ignore_index
    return x


def _conv(rng, num_classes):
    # weights of the tiny deterministic "segmenter" of the evaluate_modalities probes: one 3x3
    # convolution (K, 3, 3, 3) with bias (K,)
    return {"weight": rng.normal(0, 1, size=(num_classes, 3, 3, 3)).astype(np.float32),
            "bias": rng.normal(0, 0.1, size=(num_classes,)).astype(np.float32)}


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds."""
    rng = np.random.default_rng(505)
    calls = []
    # to_modality: a batch in each modality, a single image, float64, a hand-made pixel
    batch = _images(rng, (2, 3, 5, 7))
    for m in MODALITIES:
        calls.append(Call(f"mod_batch_{m}", "modality", {"images": batch}, {"modality": m},
                          exercise=TO))
    single = _images(rng, (3, 6, 4))
    for m in ("grayscale", "inverted_grayscale"):
        calls.append(Call(f"mod_single_{m}", "modality", {"images": single}, {"modality": m},
                          exercise=TO))
    wide = _images(rng, (1, 3, 4, 9), np.float64)
    for m in ("grayscale", "inverted_grayscale"):
        calls.append(Call(f"mod_f64_{m}", "modality", {"images": wide}, {"modality": m},
                          exercise=TO))
    calls.append(Call("mod_bad_name", "modality_invalid", {"images": batch},
                      {"modality": "sepia"}, exercise=TO))
    calls.append(Call("mod_bad_channels", "modality_invalid",
                      {"images": _images(rng, (2, 1, 5, 7))}, {"modality": "grayscale"},
                      exercise=TO))

    # evaluate_modalities: a tiny conv model on fixed batches (its child runs the reference
    # to_modality, so a mistake in exercise 1 does not cost these marks too)
    k = 5
    calls.append(Call("eval_all", "evaluate", {
        **_conv(rng, k),
        "images": _images(rng, (4, 3, 8, 12)),
        "masks": _labels(rng, (4, 8, 12), k, 0.15)},
        {"modalities": list(MODALITIES), "num_classes": k, "batch_size": 2}, exercise=EVAL))
    calls.append(Call("eval_order", "evaluate", {
        **_conv(rng, k),
        "images": _images(rng, (3, 3, 7, 9)),
        "masks": _labels(rng, (3, 7, 9), k, 0.1)},
        {"modalities": ["inverted_grayscale", "rgb"], "num_classes": k, "batch_size": 2},
        exercise=EVAL))
    k2 = 7  # classes 5 and 6 never appear in the targets; ignore_index 0
    masks = _labels(rng, (2, 6, 10), 5)
    calls.append(Call("eval_ignore_absent", "evaluate", {
        **_conv(rng, k2),
        "images": _images(rng, (2, 3, 6, 10)),
        "masks": masks},
        {"modalities": ["grayscale", "rgb"], "num_classes": k2, "batch_size": 1,
         "ignore_index": 0}, exercise=EVAL))
    calls.append(Call("eval_mean_std", "evaluate", {
        **_conv(rng, 3),
        "images": _images(rng, (2, 3, 9, 9)),
        "masks": _labels(rng, (2, 9, 9), 3, 0.2)},
        {"modalities": ["grayscale"], "num_classes": 3, "batch_size": 2,
         "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 1.0]}, exercise=EVAL))

    # relative_degradation: hand-made tables
    nan = np.nan
    calls.append(Call("deg_simple", "degradation", {
        "rgb": np.array([0.8, 0.4, 0.6]), "grayscale": np.array([0.6, 0.3, 0.6]),
        "inverted_grayscale": np.array([0.2, 0.1, 0.3])}, {"order": list(MODALITIES)},
        exercise=DEG))
    calls.append(Call("deg_nan", "degradation", {
        "rgb": np.array([0.8, nan, 0.4, 0.0]), "grayscale": np.array([0.5, 0.2, nan, 0.1]),
        "inverted_grayscale": np.array([nan, nan, nan, nan])}, {"order": list(MODALITIES)},
        exercise=DEG))
    calls.append(Call("deg_zero_base", "degradation", {
        "rgb": np.zeros(4), "grayscale": np.array([0.1, 0.2, 0.0, 0.0])},
        {"order": ["grayscale", "rgb"]}, exercise=DEG))
    calls.append(Call("deg_other_base", "degradation", {
        "rgb": rng.random(19), "grayscale": rng.random(19),
        "inverted_grayscale": rng.random(19)},
        {"order": ["inverted_grayscale", "grayscale", "rgb"], "base": "grayscale"},
        exercise=DEG))
    calls.append(Call("deg_missing_base", "degradation_missing", {
        "grayscale": np.array([0.5, 0.5])}, {}, exercise=DEG))
    return calls


LAB = LabSpec("lab05", "lab05_robustness", EXERCISES, make_calls,
              title="Robustness to input modalities, and segmenting video")
