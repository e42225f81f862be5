"""Lab 01 (CNN design choices, CAMs, spurious digits): exercises and public checks."""

import numpy as np

from labkit.checking import spec
from labkit.checking.spec import Check, Exercise, Fail, Lab, integers, probe, same, shape, uniform

VGG, CAM, SP, SHIFT = "VGGResNet", "class_activation_map", "make_spurious", "shift_images"
EXERCISES = (
    Exercise(VGG, (), kind="class", forbidden=("torchvision", "timm")),
    Exercise(CAM, ("model", "images", "class_idx"),
             forbidden=("pytorch_grad_cam", "captum", "torchcam")),
    Exercise(SP, ("images", "labels", "digits", "digit_labels")),
    Exercise(SHIFT, ("images", "dx", "dy"), forbidden=("torchvision", "kornia")))
kept = lambda name, fn: same(f"{name}.after", f"the input {name} after {fn}", rtol=0, atol=0,
                             hint="(do not modify the inputs)")
pooled = lambda got, ref: spec.compare_array(got.arrays.get("pooled"), got.arrays["eval"], (
    "model.fc(global_avg_pool(model.features(images))) vs model(images)"), rtol=0, atol=1e-4)


def vgg(blocks, width, downsample, forward=None, **kw):
    """VGGResNet on random images: its structure, or with ``forward`` = (B, H, W) its forward."""
    config = dict(blocks=blocks, width=width, downsample=downsample, **kw)
    text, (n, h, w) = f"VGGResNet(**{config})", forward or (1, 16, 16)
    steps = [*(shape(k, f"{text}: model(images) in {k} mode") for k in ("train", "eval")), pooled,
             spec.all_used(text)] if forward else [
        spec.param_shapes("model.params", text, "bias=not norm; shortcuts"),
        spec.with_modules("model.modules", ("MaxPool2d", "BatchNorm2d", "ReLU", "GELU"), text)]
    return probe("vgg", config=config, args=[uniform((n, kw.get("in_channels", 1), h, w))]).expect(
        *steps, shape("features", f"{text}: model.features(images)", "(B, 4*width, H/4, W/4)"))


def cam(images, class_idx, bias=True, *mode):
    """class_activation_map of a fixed CNN (its weights drawn from the call's seed)."""
    return probe("cam", weights=uniform((170,), -1, 1), images=images, class_idx=class_idx,
                 bias=bias).expect(*mode, kept("images", CAM), same(
                     "out", f"{CAM}(model, images, class_idx)", rtol=1e-4, atol=1e-5, dtype="f",
                     nan_ok=False), same("out.requires_grad", "the maps require grad",
                                         hint="(compute them under torch.no_grad())"))


def _valid(got, ref):  # tensors; (N,) int64 digit ids of classes 0..9; pixels in [0, 1]
    images, ids = got.arrays.get("out.0"), got.arrays.get("out.2")
    if [got.values.get(f"out.{i}.kind") for i in (0, 2)] != ["tensor"] * 2:
        raise Fail("make_spurious must return torch tensors (images_out, labels, digit_ids).")
    if ids.shape != ref.arrays["out.2"].shape or ids.dtype != np.int64 or not (
            0 <= ids.min() <= ids.max() <= 9 and -1e-6 <= images.min() <= images.max() <= 1 + 1e-6):
        raise Fail(f"make_spurious: digit_ids must be (N,) int64 classes 0..9, pixels in [0, 1]; "
                   f"got digit_ids {ids.dtype} {ids.shape} in [{ids.min()}, {ids.max()}], pixels "
                   f"in [{images.min():.3g}, {images.max():.3g}].")


def spurious(n, hw, m, *extra, bright=False, **params):
    """make_spurious of n hw x hw images, m digits (m=10: one per class; ``bright``: all ones)."""
    seed, names = params.setdefault("seed", 0), ["images", "labels", "digits", "digit_labels"]
    return probe("after", fn=SP, names=names, again={"again": seed, "other": seed + 1},
                 images=uniform((n, 1, hw, hw), 0, 0.5), labels=integers((n,), 0, 10),
                 digits=uniform((m, 1, 8, 8), float(bright)),
                 digit_labels=spec.Gen(np.random.Generator.permutation, (np.arange(m) % 10,)),
                 **params).expect(shape("out.0", "make_spurious's images"), _valid,
                                  same("out.1", "make_spurious's labels", rtol=0, atol=0),
                                  *[kept(k, SP) for k in names], *extra)


shift = lambda dx, dy, images=(3, 1, 8, 10): probe(
    "after", fn=SHIFT, names=["images"], images=uniform(images), dx=dx, dy=dy).expect(
    same("out", f"shift_images(images, {dx}, {dy})", rtol=0, atol=0, dtype="f"),
    kept("images", SHIFT))
CHECKS = [
    Check("1.1", VGG, "base VGG-ResNet(2,32,maxpool): parameter count, MaxPool/BatchNorm/ReLU, fc",
          2, vgg(2, 32, "maxpool")),
    Check("1.2", VGG, 'downsample="stride" (no MaxPool2d, stride-2 convolutions and shortcuts)', 1,
          vgg(2, 32, "stride")),
    Check("1.3", VGG, "logits (B,10), features (B,128,7,7) for 28x28, forward = fc(pool(features))",
          1, vgg(2, 32, "maxpool", (2, 28, 28))),
    Check("1.4", VGG, "an unknown downsample raises ValueError", 1, vgg(1, 8, "avgpool").call
          .raises("ValueError", "VGGResNet(downsample='avgpool', ...)"), needs=("1.1", "1.3")),
    Check("2.1", CAM, "one class for the whole batch, fixed model, 28x28", 2,
          cam(uniform((4, 1, 28, 28)), 3)),
    Check("3.1", SP, "shapes, dtypes, values in [0,1], labels unchanged, inputs not modified", 2,
          spurious(12, 16, 20, p=0.8)),
    Check("3.2", SP, "only the top-left 10x10 corner changes, in every image", 2, spurious(
        12, 16, 20, same("out.0", "make_spurious's images (all-ones digits)", atol=1e-5, hint=(
            "(paste only into the top-left size x size corner, in every image)")), bright=True,
        p=0.8, seed=1)),
    Check("3.3", SP, "p=1 gives digit_ids == labels", 1, spurious(12, 16, 20, same(
        "out.2", "digit_ids with p=1", rtol=0, atol=0, hint="(the labels)"), p=1.0, seed=5)),
    Check("4.1", SHIFT, "dx=2, dy=-3 (right and up) with zero fill", 2, shift(2, -3)),
    Check("4.2", SHIFT, "dx=-4 (left) and no shift", 1, shift(-4, 0), shift(0, 0)),
]
LAB = Lab("lab01_cnn_ablation", "CNN design choices and class-activation maps", EXERCISES,
          CHECKS)
