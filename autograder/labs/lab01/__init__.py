"""Lab 01 (CNN design choices, CAMs, spurious digits) grading: exercises, probe inputs, spec."""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

EXERCISES = (
    Exercise("VGGResNet", (), kind="class", forbidden=("torchvision", "timm")),
    Exercise("class_activation_map", ("model", "images", "class_idx"),
             forbidden=("pytorch_grad_cam", "captum", "torchcam")),
    Exercise("make_spurious", ("images", "labels", "digits", "digit_labels")),
    Exercise("shift_images", ("images", "dx", "dy"), forbidden=("torchvision", "kornia")),
)

# VGGResNet configurations whose parameter counts are compared with the solution's
MODEL_CONFIGS = {
    "base": dict(blocks=2, width=32, downsample="maxpool"),
    "stride": dict(blocks=2, width=32, downsample="stride"),
    "no_skip": dict(blocks=2, width=32, downsample="maxpool", skip=False),
    "no_norm": dict(blocks=2, width=32, downsample="maxpool", norm=False),
    "no_act": dict(blocks=2, width=16, downsample="stride", act=None),
    "gelu": dict(blocks=2, width=16, downsample="maxpool", act="gelu"),
    "blocks1_width8": dict(blocks=1, width=8, downsample="maxpool"),
    "blocks4_width16": dict(blocks=4, width=16, downsample="stride"),
    "width64": dict(blocks=1, width=64, downsample="maxpool"),
    "no_norm_no_skip_stride": dict(blocks=1, width=8, downsample="stride", skip=False, norm=False),
    "rgb_5_classes": dict(blocks=1, width=8, downsample="maxpool", in_channels=3, num_classes=5),
}


def _cam_weights(rng, bias=True):
    """Weights of the trusted CAM model of probes.py (conv 1->6, conv 6->8 stride 2, fc 8->10)."""
    w = {"conv1_w": rng.normal(0, 0.5, (6, 1, 3, 3)), "conv2_w": rng.normal(0, 0.3, (8, 6, 3, 3)),
         "fc_w": rng.normal(0, 0.5, (10, 8)), "fc_b": rng.normal(0, 0.5, (10,))}
    if bias:
        w["conv1_b"] = rng.normal(0, 0.1, (6,))
        w["conv2_b"] = rng.normal(0, 0.1, (8,))
    return {k: v.astype(np.float32) for k, v in w.items()}


def _images(rng, shape, high=1.0):
    return (rng.random(shape) * high).astype(np.float32)


def _digits(rng, m, h=28, w=28):
    """Digit-like images: sparse bright strokes in [0, 1]; labels 0..9 with every class present."""
    x = np.where(rng.random((m, 1, h, w)) < 0.3, 1.0, rng.random((m, 1, h, w)) * 0.3)
    labels = np.arange(m, dtype=np.int64) % 10
    rng.shuffle(labels)
    return x.astype(np.float32), labels


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds; one exercise per call."""
    rng = np.random.default_rng(101)
    calls = []
    # 1. VGGResNet: structure per configuration, shapes, invalid arguments
    vgg, cam, sp, shift = "VGGResNet", "class_activation_map", "make_spurious", "shift_images"
    for name, cfg in MODEL_CONFIGS.items():
        calls.append(Call(f"model_{name}", "vggresnet_structure", {}, {"config": cfg},
                          exercise=vgg))
    calls.append(Call("model_forward", "vggresnet_forward",
                      {"images": _images(rng, (2, 1, 28, 28))},
                      {"config": MODEL_CONFIGS["base"]}, exercise=vgg))
    calls.append(Call("model_forward_32", "vggresnet_forward",
                      {"images": _images(rng, (3, 1, 32, 32))},
                      {"config": MODEL_CONFIGS["stride"]}, exercise=vgg))
    calls.append(Call("model_forward_rgb", "vggresnet_forward",
                      {"images": _images(rng, (2, 3, 28, 28))},
                      {"config": MODEL_CONFIGS["rgb_5_classes"]}, exercise=vgg))
    calls.append(Call("model_bad_downsample", "vggresnet_invalid", {},
                      {"config": dict(blocks=1, width=8, downsample="avgpool")}, exercise=vgg))
    calls.append(Call("model_bad_act", "vggresnet_invalid", {},
                      {"config": dict(blocks=1, width=8, downsample="maxpool", act="tanh")},
                      exercise=vgg))
    # 2. class_activation_map on a fixed trusted model (weights made here)
    calls.append(Call("cam_int", "cam",
                      {**_cam_weights(rng), "images": _images(rng, (4, 1, 28, 28))},
                      {"class_idx": 3}, exercise=cam))
    calls.append(Call("cam_batch_idx", "cam",
                      {**_cam_weights(rng), "images": _images(rng, (5, 1, 20, 24)),
                       "class_idx": rng.integers(0, 10, 5).astype(np.int64)}, exercise=cam))
    constant = _images(rng, (3, 1, 16, 16))
    constant[1] = 0.0  # no conv bias: all-zero features, a constant CAM
    calls.append(Call("cam_constant", "cam", {**_cam_weights(rng, bias=False), "images": constant},
                      {"class_idx": 7}, exercise=cam))
    # 3. make_spurious: small cases (every output compared, patches included), large ones for
    # the statistics (12x12 images and 14x14 digits keep the outputs small)
    calls += [Call(cid, "spurious", arrays, params, exercise=sp)
              for cid, arrays, params in spurious_cases()]
    calls.append(Call("sp_bad_corner", "spurious_invalid", _spurious_small(),
                      {"corner": "centre"}, exercise=sp))
    # 4. shift_images: exact
    base = _images(rng, (3, 1, 8, 10))
    for cid, dx, dy in (("shift_right_up", 2, -3), ("shift_left", -4, 0), ("shift_none", 0, 0),
                        ("shift_down_left", -1, 5), ("shift_beyond_x", 12, 0),
                        ("shift_beyond_y", 0, -20), ("shift_edge", 9, -7)):
        calls.append(Call(cid, "shift", {"images": base}, {"dx": dx, "dy": dy}, exercise=shift))
    calls.append(Call("shift_rgb", "shift", {"images": _images(rng, (2, 3, 5, 7))},
                      {"dx": 3, "dy": 2}, exercise=shift))
    return calls


def _spurious_small() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(103)
    images, labels = _images(rng, (24, 1, 28, 28), 0.5), rng.integers(0, 10, 24).astype(np.int64)
    digits, digit_labels = _digits(rng, 40)
    return {"images": images, "labels": labels, "digits": digits, "digit_labels": digit_labels}


def spurious_cases() -> list[tuple[str, dict[str, np.ndarray], dict]]:
    """(call id, inputs, params) of every make_spurious call on valid inputs (the parent's checks
    read the inputs again from here to compare the pasted corners)."""
    small = _spurious_small()
    rng = np.random.default_rng(104)
    big_digits, big_digit_labels = _digits(rng, 200, 14, 14)
    big = {"images": _images(rng, (2000, 1, 12, 12), 0.5),
           "labels": rng.integers(0, 10, 2000).astype(np.int64),
           "digits": big_digits, "digit_labels": big_digit_labels}
    return [
        ("sp_small", small, {"p": 0.8, "seed": 0}),
        ("sp_p1", small, {"p": 1.0, "seed": 5}),
        ("sp_bottom_right", small, {"p": 0.5, "seed": 2, "size": 8, "corner": "bottom_right"}),
        ("sp_top_right", small, {"p": 0.5, "seed": 3, "size": 12, "corner": "top_right"}),
        ("sp_p0", big, {"p": 0.0, "seed": 11, "repeat_images": False}),
        ("sp_p08", big, {"p": 0.8, "seed": 12, "repeat_images": False}),
    ]


LAB = LabSpec("lab01", "lab01_cnn_ablation", EXERCISES, make_calls,
              title="CNN design choices and class-activation maps")
