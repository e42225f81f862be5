"""Lab 01 checks (trusted parent): every verdict is computed here from the raw outputs of the
probes (arrays, shapes, parameter shapes, module classes) and the references."""

import functools
import math

import numpy as np
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError, needs_passing

HIDDEN = "after_due_date"
# the torch.nn module classes the stub of VGGResNet names, and what asks for each of them
_REQUIRED_MODULES = (
    ("MaxPool2d", "downsample='maxpool' halves the resolution with an nn.MaxPool2d(2) before "
                  "stages 2 and 3; downsample='stride' uses stride-2 convolutions instead"),
    ("BatchNorm2d", "norm=True puts an nn.BatchNorm2d after every convolution; norm=False none"),
    ("ReLU", "act='relu' uses nn.ReLU modules (not F.relu); other activations none"),
    ("GELU", "act='gelu' uses nn.GELU modules (not F.gelu); other activations none"),
)


def _config_text(cid: str) -> str:
    from autograder.labs.lab01 import MODEL_CONFIGS

    cfg = MODEL_CONFIGS[cid.removeprefix("model_")]
    return "VGGResNet(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"


def _param_shapes(values: dict) -> list[tuple[int, ...]]:
    params = values.get("params")
    if not isinstance(params, dict):
        raise StudentError("could not read the model's parameters.")
    return [tuple(int(s) for s in shape) for shape in params.values()]


def _shape_diff(got: list[tuple], want: list[tuple]) -> str:
    """Which parameter shapes the student has too many / too few of (multisets)."""
    from collections import Counter

    g, w = Counter(got), Counter(want)
    extra, missing = sorted((g - w).elements()), sorted((w - g).elements())
    parts = []
    if extra:
        parts.append("unexpected parameters of shape " + ", ".join(map(str, extra[:4])))
    if missing:
        parts.append("missing parameters of shape " + ", ".join(map(str, missing[:4])))
    return "; ".join(parts)


def _equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and bool(np.array_equal(a, b))


class VGGResNetChecks(LabCase):
    def _structure(self, cid: str) -> None:
        got, ref = self.outputs(cid, "VGGResNet"), self.reference(cid)
        what = _config_text(cid)
        g, r = got.values, ref.values
        if g.get("features_class") is None:
            raise StudentError(f"{what}: `model.features` must be an nn.Module (the part before "
                               "the global average pooling).")
        if g.get("fc_class") != "Linear":
            raise StudentError(f"{what}: `model.fc` must be the final nn.Linear.")
        if (g.get("fc_in"), g.get("fc_out")) != (r["fc_in"], r["fc_out"]):
            raise StudentError(f"{what}: model.fc is Linear({g.get('fc_in')}, {g.get('fc_out')}), "
                               f"expected Linear({r['fc_in']}, {r['fc_out']}) "
                               "(4*width -> num_classes).")
        mods, ref_mods = set(g.get("modules") or []), set(r["modules"])
        for kind, why in _REQUIRED_MODULES:
            if (kind in mods) != (kind in ref_mods):
                should = "should contain" if kind in ref_mods else "should not contain"
                raise StudentError(f"{what}: the model {should} nn.{kind} modules ({why}).")
        strided = any(c[3] != [1, 1] for c in g.get("convs") or [])
        if strided != any(c[3] != [1, 1] for c in r["convs"]):
            raise StudentError(
                f"{what}: " + ("no convolution has a stride: with downsample='stride' the first "
                               "block of stages 2 and 3 has stride 2 (its first conv and its "
                               "shortcut)." if not strided else
                               "a convolution has a stride; with downsample='maxpool' every "
                               "convolution has stride 1 (the pooling halves the resolution)."))
        shapes, ref_shapes = _param_shapes(g), _param_shapes(r)
        count = sum(math.prod(s) for s in shapes)
        ref_count = sum(math.prod(s) for s in ref_shapes)
        if count != ref_count:
            hint = _shape_diff(shapes, ref_shapes)
            biases = sum(bool(c[4]) for c in g.get("convs") or [])
            ref_biases = sum(bool(c[4]) for c in r["convs"])
            if biases != ref_biases:
                hint += (f"; {biases} convolutions have a bias, expected {ref_biases} "
                         "(bias=not norm)")
            raise StudentError(f"{what}: {count:,} parameters, expected {ref_count:,}; follow the "
                               f"specification exactly (stem, blocks, shortcuts): {hint}.")

    def _forward(self, cid: str) -> None:
        got, ref = self.outputs(cid, "VGGResNet"), self.reference(cid)
        g, r = got.arrays, ref.arrays
        for key, what, form in (("train_logits", "model(images) in train mode", "(B, num_classes)"),
                                ("logits", "model(images) in eval mode", "(B, num_classes)"),
                                ("features", "model.features(images)", "(B, 4*width, H/4, W/4)")):
            if key not in g:
                raise StudentError(f"{what} did not return a tensor.")
            if g[key].shape != r[key].shape:
                raise StudentError(f"{what} returned shape {tuple(g[key].shape)}, expected "
                                   f"{tuple(r[key].shape)} {form}.")
            if g[key].dtype.kind != "f":
                raise StudentError(f"{what} returned dtype {g[key].dtype}, expected float.")
            if not np.isfinite(g[key]).all():
                raise StudentError(f"{what} returned NaN or Inf.")
        manual = g.get("fc_of_pooled")
        if manual is None or manual.shape != g["logits"].shape:
            raise StudentError("model.fc(global_avg_pool(model.features(images))) has shape "
                               f"{None if manual is None else tuple(manual.shape)}, expected "
                               f"{tuple(g['logits'].shape)} like model(images).")
        gap = float(np.abs(manual.astype(np.float64) - g["logits"]).max(initial=0.0))
        if not gap <= 1e-4:
            raise StudentError("model(images) differs from fc(global_avg_pool(features(images))) "
                               f"by up to {gap:.3g}.")
        missing = list(got.values.get("params_without_grad") or [])
        if missing:
            raise StudentError(f"{len(missing)} parameters get no gradient ({', '.join(missing[:4])}"
                               "): every layer must be used in forward.")

    def _value_error(self, cid: str, text: str) -> None:
        kind = self.raised(cid, "VGGResNet")
        if kind == "NotImplementedError":
            self.outputs(cid, "VGGResNet")  # "not implemented yet"
        if kind != "ValueError":
            did = "returned a model" if kind is None else f"raised {kind}"
            raise StudentError(f"{text} must raise ValueError; it {did}.")

    @weight(2)
    @number("1.1")
    @visibility("visible")
    def test_base(self):
        """VGGResNet: base VGG-ResNet(2,32,maxpool): parameter count, MaxPool/BatchNorm/ReLU, fc"""
        self._structure("model_base")

    @weight(1)
    @number("1.2")
    @visibility("visible")
    def test_stride(self):
        """VGGResNet: downsample="stride" (no MaxPool2d, stride-2 convolutions and shortcuts)"""
        self._structure("model_stride")

    @weight(1)
    @number("1.3")
    @visibility("visible")
    def test_forward(self):
        """VGGResNet: logits (B,10), features (B,128,7,7) for 28x28, forward = fc(pool(features))"""
        self._forward("model_forward")

    @weight(1)
    @number("1.4")
    @visibility("visible")
    @needs_passing("1.1", "1.3")
    def test_invalid_downsample(self):
        """VGGResNet: an unknown downsample raises ValueError"""
        self._value_error("model_bad_downsample", "VGGResNet(downsample='avgpool', ...)")

    @weight(1)
    @number("1.5")
    @visibility(HIDDEN)
    def test_no_skip(self):
        """VGGResNet: skip=False (no shortcuts)"""
        self._structure("model_no_skip")

    @weight(1)
    @number("1.6")
    @visibility(HIDDEN)
    def test_no_norm(self):
        """VGGResNet: norm=False (no BatchNorm, convolutions with biases)"""
        self._structure("model_no_norm")

    @weight(1)
    @number("1.7")
    @visibility(HIDDEN)
    def test_no_activation(self):
        """VGGResNet: act=None (no activation modules), with stride"""
        self._structure("model_no_act")

    @weight(1)
    @number("1.8")
    @visibility(HIDDEN)
    def test_gelu(self):
        """VGGResNet: act="gelu" uses nn.GELU and no nn.ReLU"""
        self._structure("model_gelu")

    @weight(1)
    @number("1.9")
    @visibility(HIDDEN)
    def test_depth_width(self):
        """VGGResNet: blocks=1 width=8, blocks=4 width=16, width=64"""
        for cid in ("model_blocks1_width8", "model_blocks4_width16", "model_width64"):
            self._structure(cid)

    @weight(1)
    @number("1.10")
    @visibility(HIDDEN)
    def test_combined_flags(self):
        """VGGResNet: stride without skip and without BatchNorm; 3 input channels, 5 classes"""
        self._structure("model_no_norm_no_skip_stride")
        self._structure("model_rgb_5_classes")
        self._forward("model_forward_rgb")

    @weight(1)
    @number("1.11")
    @visibility(HIDDEN)
    def test_forward_32(self):
        """VGGResNet: 32x32 inputs with strided downsampling give 8x8 feature maps"""
        self._forward("model_forward_32")

    @weight(1)
    @number("1.12")
    @visibility(HIDDEN)
    @needs_passing("1.1", "1.3")
    def test_invalid_act(self):
        """VGGResNet: an unknown activation raises ValueError"""
        self._value_error("model_bad_act", "VGGResNet(act='tanh', ...)")


class CAMChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "class_activation_map"), self.reference(cid)
        self.check_array(got, ref, "cams", what="class_activation_map", dtype_kind="f",
                         rtol=1e-4, atol=1e-5, equal_nan=False)
        if got.values.get("requires_grad") is not False:
            raise StudentError("class_activation_map: compute the maps under torch.no_grad() "
                               "(the result requires grad).")
        if not _equal(got.arrays.get("images_after"), ref.arrays["images_after"]):
            raise StudentError("class_activation_map modified its input images.")

    @weight(2)
    @number("2.1")
    @visibility("visible")
    def test_int_class(self):
        """class_activation_map: one class for the whole batch, fixed model, 28x28"""
        self._check("cam_int")

    @weight(2)
    @number("2.2")
    @visibility(HIDDEN)
    def test_batch_of_classes(self):
        """class_activation_map: a (B,) tensor of classes, non-square 20x24 images"""
        self._check("cam_batch_idx")

    @weight(1)
    @number("2.3")
    @visibility(HIDDEN)
    def test_constant_map(self):
        """class_activation_map: a constant map becomes all zeros (no NaN)"""
        self._check("cam_constant")
        if self.outputs("cam_constant", "class_activation_map").values.get("model_training") \
                is not False:
            raise StudentError("class_activation_map must not switch the model to training mode.")


@functools.cache
def _spurious_inputs() -> dict[str, tuple[dict, dict]]:
    """call id -> (inputs, params) of the make_spurious calls on valid inputs (made again here:
    the parent never trusts inputs that went through the child)."""
    from autograder.labs.lab01 import spurious_cases

    return {cid: (arrays, params) for cid, arrays, params in spurious_cases()}


def _resize_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """(M, C, h, w) -> (M, C, size, size) as F.interpolate(mode="bilinear", align_corners=False,
    antialias=False) computes it (source pixel (i + 0.5) * in / out - 0.5, clamped at 0)."""

    def axis(n_in: int):
        src = np.maximum((np.arange(size) + 0.5) * (n_in / size) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, ly = axis(x.shape[-2])
    x0, x1, lx = axis(x.shape[-1])
    x = x.astype(np.float64)
    top = x[..., y0, :][..., x0] * (1 - lx) + x[..., y0, :][..., x1] * lx
    bottom = x[..., y1, :][..., x0] * (1 - lx) + x[..., y1, :][..., x1] * lx
    return top * (1 - ly)[:, None] + bottom * ly[:, None]


def _corner(h: int, w: int, size: int, corner: str) -> tuple[slice, slice]:
    top = 0 if corner.startswith("top") else h - size
    left = 0 if corner.endswith("left") else w - size
    return slice(top, top + size), slice(left, left + size)


class SpuriousChecks(LabCase):
    def _basic(self, cid: str):
        got = self.outputs(cid, "make_spurious")
        inputs, _ = _spurious_inputs()[cid]
        a, v = got.arrays, got.values
        images_in = inputs["images"]
        if v.get("images_is_tensor") is not True or v.get("ids_is_tensor") is not True:
            raise StudentError("make_spurious must return torch tensors (images_out, labels, "
                               "digit_ids).")
        images, ids = a.get("images"), a.get("ids")
        if images is None or images.shape != images_in.shape:
            shape = None if images is None else tuple(images.shape)
            raise StudentError(f"make_spurious: images of shape {shape}, expected "
                               f"{tuple(images_in.shape)}.")
        if ids is None or ids.shape != (len(images_in),) or ids.dtype != np.int64:
            raise StudentError("make_spurious: digit_ids must be an (N,) int64 tensor, got "
                               f"{None if ids is None else (tuple(ids.shape), str(ids.dtype))}.")
        if images.dtype.kind != "f":
            raise StudentError(f"make_spurious: the images must stay float, got {images.dtype}.")
        labels = a.get("labels")
        if labels is None or labels.shape != inputs["labels"].shape or labels.dtype.kind not in \
                "iu" or not np.array_equal(labels, inputs["labels"]):
            raise StudentError("make_spurious: the labels must be returned unchanged.")
        for key in ("images", "labels", "digits", "digit_labels"):
            if not _equal(a.get(f"{key}_after"), inputs[key]):
                raise StudentError(f"make_spurious modified its input `{key}`; work on a copy.")
        if not np.isfinite(images).all():
            raise StudentError("make_spurious: the images contain NaN or Inf.")
        low, high = float(images.min()), float(images.max())
        if low < -1e-6 or high > 1 + 1e-6:  # bilinear weights may sum to 1 + float32 epsilon
            raise StudentError(f"make_spurious: pixel values in [{low:.3g}, {high:.3g}], "
                               "expected [0, 1].")
        if ((ids < 0) | (ids > 9)).any():
            raise StudentError("make_spurious: digit_ids must be classes 0..9.")
        return got

    def _placement(self, cid: str) -> None:
        got = self._basic(cid)
        inputs, params = _spurious_inputs()[cid]
        images_in = inputs["images"]
        n, _, h, w = images_in.shape
        size, corner = params.get("size", 10), params.get("corner", "top_left")
        rows, cols = _corner(h, w, size, corner)
        inside = np.zeros((h, w), dtype=bool)
        inside[rows, cols] = True
        diff = np.abs(got.arrays["images"].astype(np.float64) - images_in)[:, 0]  # (N, H, W)
        outside = float(diff[:, ~inside].max(initial=0.0))
        if outside > 0:
            raise StudentError(f"make_spurious: pixels outside the {size}x{size} {corner} corner "
                               f"changed (by up to {outside:.3g}); paste only into the corner.")
        changed = float((diff[:, inside].max(1) > 0).mean())
        if changed < 0.95:
            raise StudentError(f"make_spurious: the corner changed in only {changed:.0%} of the "
                               "images; paste a digit into every image.")

    def _patch(self, cid: str) -> None:
        got = self._basic(cid)
        inputs, params = _spurious_inputs()[cid]
        images_in, digits, digit_labels = (inputs[k] for k in ("images", "digits",
                                                               "digit_labels"))
        n, _, h, w = images_in.shape
        size, corner = params.get("size", 10), params.get("corner", "top_left")
        rows, cols = _corner(h, w, size, corner)
        resized = _resize_bilinear(digits, size)  # (M, 1, size, size)
        images, ids = got.arrays["images"].astype(np.float64), got.arrays["ids"]
        errors = np.full(n, np.inf)
        for i in range(n):
            pool = resized[digit_labels == ids[i]]
            if len(pool):
                want = np.maximum(images_in[i, :, rows, cols][None], pool)  # (k, 1, s, s)
                errors[i] = np.abs(want - images[i, :, rows, cols][None]).max((1, 2, 3)).min()
        bad = ~(errors <= 1e-4)  # torch resizes in float32: ~1e-6 from this float64 copy
        if bad.any():
            i = int(bad.argmax())
            raise StudentError(
                f"make_spurious: in {int(bad.sum())} of {n} images the {corner} corner is not "
                "max(original corner, a digit of class digit_ids[i] resized with "
                "F.interpolate(bilinear, align_corners=False, antialias=False)); "
                f"first: image {i}, smallest difference {errors[i]:.3g}.")

    def _agreement_of(self, cid: str) -> float:
        got = self._basic(cid)
        inputs, _ = _spurious_inputs()[cid]
        return float((got.arrays["ids"] == inputs["labels"]).mean())

    def _agreement(self, cid: str, expected: float, tol: float) -> None:
        agreement = self._agreement_of(cid)
        if abs(agreement - expected) > tol:
            raise StudentError("make_spurious: the digit equals the label for "
                               f"{agreement:.3f} of the images, expected about "
                               f"{expected:.2f} (p + (1 - p) / 10).")

    @weight(2)
    @number("3.1")
    @visibility("visible")
    def test_shapes_and_labels(self):
        """make_spurious: shapes, dtypes, values in [0,1], labels unchanged, inputs not modified"""
        self._basic("sp_small")

    @weight(2)
    @number("3.2")
    @visibility("visible")
    def test_placement(self):
        """make_spurious: only the top-left 10x10 corner changes, in every image"""
        self._placement("sp_small")

    @weight(1)
    @number("3.3")
    @visibility("visible")
    def test_p_one(self):
        """make_spurious: p=1 gives digit_ids == labels"""
        agreement = self._agreement_of("sp_p1")
        if agreement != 1.0:
            raise StudentError(f"make_spurious(p=1): the digit equals the label for only "
                               f"{agreement:.3f} of the images, expected all of them.")

    @weight(1)
    @number("3.4")
    @visibility(HIDDEN)
    def test_p_zero(self):
        """make_spurious: p=0 gives digits that match the label by chance (about 10%, N=2000)"""
        self._agreement("sp_p0", 0.10, 0.04)

    @weight(1)
    @number("3.5")
    @visibility(HIDDEN)
    def test_p_08(self):
        """make_spurious: p=0.8 gives an agreement of about 0.82 (N=2000)"""
        self._agreement("sp_p08", 0.82, 0.04)

    @weight(1)
    @number("3.6")
    @visibility(HIDDEN)
    def test_seeded(self):
        """make_spurious: the same seed gives the same output, another seed a different one"""
        for cid in ("sp_small", "sp_p0"):
            a = self._basic(cid).arrays
            keys = ("images", "ids") if "again_images" in a else ("ids",)
            if not all(_equal(a.get(f"again_{k}"), a[k]) for k in keys):
                raise StudentError("make_spurious: two calls with the same seed differ; draw all "
                                   "random numbers from torch.Generator().manual_seed(seed).")
            if all(_equal(a.get(f"other_{k}"), a[k]) for k in keys):
                raise StudentError("make_spurious: another seed gives the same output; use `seed`.")

    @weight(2)
    @number("3.7")
    @visibility(HIDDEN)
    def test_patch(self):
        """make_spurious: each corner is max(original, a resized digit of class digit_ids[i])"""
        self._patch("sp_small")
        self._patch("sp_p1")

    @weight(1)
    @number("3.8")
    @visibility(HIDDEN)
    def test_other_corners(self):
        """make_spurious: corner="bottom_right" with size 8 and "top_right" with size 12"""
        for cid in ("sp_bottom_right", "sp_top_right"):
            self._placement(cid)
            self._patch(cid)

    @weight(1)
    @number("3.9")
    @visibility(HIDDEN)
    @needs_passing("3.1", "3.2")
    def test_bad_corner(self):
        """make_spurious: an unknown corner raises ValueError"""
        kind = self.raised("sp_bad_corner", "make_spurious")
        if kind == "NotImplementedError":
            self.outputs("sp_bad_corner", "make_spurious")  # "not implemented yet"
        if kind != "ValueError":
            did = "returned" if kind is None else f"raised {kind}"
            raise StudentError(f"make_spurious(corner='centre') must raise ValueError; it {did}.")


class ShiftChecks(LabCase):
    def _check(self, *cids: str) -> None:
        for cid in cids:
            got, ref = self.outputs(cid, "shift_images"), self.reference(cid)
            if got.values.get("is_tensor") is not True:
                raise StudentError("shift_images must return a torch.Tensor.")
            self.check_array(got, ref, "shifted", what=f"shift_images ({cid})", dtype_kind="f",
                             atol=0, rtol=0, equal_nan=False)
            if not _equal(got.arrays.get("images_after"), ref.arrays["images_after"]):
                raise StudentError("shift_images modified its input; return a new tensor.")

    @weight(2)
    @number("4.1")
    @visibility("visible")
    def test_right_up(self):
        """shift_images: dx=2, dy=-3 (right and up) with zero fill"""
        self._check("shift_right_up")

    @weight(1)
    @number("4.2")
    @visibility("visible")
    def test_left_and_none(self):
        """shift_images: dx=-4 (left) and no shift"""
        self._check("shift_left", "shift_none")

    @weight(1)
    @number("4.3")
    @visibility(HIDDEN)
    def test_down_left(self):
        """shift_images: dx=-1, dy=5; 3-channel images"""
        self._check("shift_down_left", "shift_rgb")

    @weight(1)
    @number("4.4")
    @visibility(HIDDEN)
    def test_beyond_border(self):
        """shift_images: shifts of the image size or more give zeros; one pixel left at the edge"""
        self._check("shift_beyond_x", "shift_beyond_y", "shift_edge")
