"""Lab 01 checks (trusted parent): compare the student's outputs with the references."""

from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from autograder.spec import LabCase, StudentError

HIDDEN = "after_due_date"


def _config_text(cid: str) -> str:
    from autograder.labs.lab01 import MODEL_CONFIGS

    cfg = MODEL_CONFIGS[cid.removeprefix("model_")]
    return "VGGResNet(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"


class VGGResNetChecks(LabCase):
    def _structure(self, cid: str, flags: bool = True) -> None:
        got, ref = self.outputs(cid, "VGGResNet"), self.reference(cid)
        what = _config_text(cid)
        g, r = got.values, ref.values
        if not g.get("features_is_module"):
            raise StudentError(f"{what}: `model.features` must be an nn.Module (the part before "
                               "the global average pooling).")
        if not g.get("fc_is_linear"):
            raise StudentError(f"{what}: `model.fc` must be the final nn.Linear.")
        if (g["fc_in"], g["fc_out"]) != (r["fc_in"], r["fc_out"]):
            raise StudentError(f"{what}: model.fc is Linear({g['fc_in']}, {g['fc_out']}), expected "
                               f"Linear({r['fc_in']}, {r['fc_out']}) (4*width -> num_classes).")
        if flags:
            for key, name in (("has_maxpool", "nn.MaxPool2d"), ("has_batchnorm", "nn.BatchNorm2d"),
                              ("has_relu", "nn.ReLU"), ("has_gelu", "nn.GELU")):
                if g[key] != r[key]:
                    should = "should contain" if r[key] else "should not contain"
                    raise StudentError(f"{what}: the model {should} {name} modules.")
        if g["params"] != r["params"]:
            hint = ""
            if g["conv_biases"] != r["conv_biases"]:
                hint = (f" It has {g['conv_biases']} convolutions with a bias, expected "
                        f"{r['conv_biases']} (bias=not norm).")
            raise StudentError(f"{what}: {g['params']:,} parameters, expected {r['params']:,}; "
                               "follow the specification exactly (stem, blocks, shortcuts)." + hint)

    def _forward(self, cid: str) -> None:
        got, ref = self.outputs(cid, "VGGResNet"), self.reference(cid)
        g, r = got.values, ref.values
        if g["logits_shape"] != r["logits_shape"]:
            raise StudentError(f"model(images) returned shape {tuple(g['logits_shape'])}, expected "
                               f"{tuple(r['logits_shape'])} (B, num_classes).")
        if g["features_shape"] != r["features_shape"]:
            raise StudentError("model.features(images) returned shape "
                               f"{tuple(g['features_shape'])}, expected "
                               f"{tuple(r['features_shape'])} (B, 4*width, H/4, W/4).")
        if not g["finite"]:
            raise StudentError("model(images) returned NaN or Inf.")
        if g["forward_vs_features_max_diff"] > 1e-4:
            raise StudentError("model(images) differs from fc(global_avg_pool(features(images))) "
                               f"by up to {g['forward_vs_features_max_diff']:.3g}.")
        if g["params_without_grad"]:
            raise StudentError(f"{g['params_without_grad']} parameters get no gradient: every "
                               "layer must be used in forward.")

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
    def test_invalid_downsample(self):
        """VGGResNet: an unknown downsample raises ValueError"""
        got = self.outputs("model_bad_downsample", "VGGResNet")
        if not got.values.get("raised_value_error"):
            raise StudentError("VGGResNet(downsample='avgpool', ...) must raise ValueError.")

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
    def test_invalid_act(self):
        """VGGResNet: an unknown activation raises ValueError"""
        got = self.outputs("model_bad_act", "VGGResNet")
        if not got.values.get("raised_value_error"):
            raise StudentError("VGGResNet(act='tanh', ...) must raise ValueError.")


class CAMChecks(LabCase):
    def _check(self, cid: str) -> None:
        got, ref = self.outputs(cid, "class_activation_map"), self.reference(cid)
        self.check_array(got, ref, "cams", what="class_activation_map", dtype_kind="f",
                         rtol=1e-4, atol=1e-5, equal_nan=False)
        if got.values.get("requires_grad"):
            raise StudentError("class_activation_map: compute the maps under torch.no_grad() "
                               "(the result requires grad).")
        if not got.values.get("input_unchanged"):
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
        if not self.outputs("cam_constant", "class_activation_map").values.get("model_in_eval"):
            raise StudentError("class_activation_map must not switch the model to training mode.")


class SpuriousChecks(LabCase):
    def _basic(self, cid: str):
        got = self.outputs(cid, "make_spurious")
        g, r = got.values, self.reference(cid).values
        if g["images_shape"] != r["images_shape"]:
            raise StudentError(f"make_spurious: images of shape {tuple(g['images_shape'])}, "
                               f"expected {tuple(r['images_shape'])}.")
        if g["ids_shape"] != r["ids_shape"] or not g["ids_int64"]:
            raise StudentError("make_spurious: digit_ids must be an (N,) int64 tensor.")
        if not g["images_float"]:
            raise StudentError("make_spurious: the images must stay float.")
        if not g.get("labels_equal"):
            raise StudentError("make_spurious: the labels must be returned unchanged.")
        if not g["inputs_unchanged"]:
            raise StudentError("make_spurious modified its inputs; work on a copy.")
        if g["min"] < 0 or g["max"] > 1:
            raise StudentError(f"make_spurious: pixel values in [{g['min']:.3g}, {g['max']:.3g}], "
                               "expected [0, 1].")
        if not g["ids_in_range"]:
            raise StudentError("make_spurious: digit_ids must be classes 0..9.")
        return got

    def _placement(self, cid: str) -> None:
        g = self._basic(cid).values
        if g["outside_max_diff"] > 0:
            raise StudentError("make_spurious: pixels outside the digit's corner changed (by up "
                               f"to {g['outside_max_diff']:.3g}); paste only into the corner.")
        if g["corner_changed_frac"] < 0.95:
            raise StudentError(f"make_spurious: the corner changed in only "
                               f"{g['corner_changed_frac']:.0%} of the images; paste a digit into "
                               "every image.")

    def _patch(self, cid: str) -> None:
        got = self._basic(cid)
        errors = got.arrays.get("patch_errors")
        if errors is None:
            raise StudentError("make_spurious: could not compare the pasted patches.")
        bad = errors > 1e-5
        if bad.any():
            i = int(bad.argmax())
            raise StudentError(
                f"make_spurious: in {int(bad.sum())} of {len(errors)} images the corner is not "
                "max(original corner, a digit of class digit_ids[i] resized with "
                "F.interpolate(bilinear, align_corners=False, antialias=False)); "
                f"first: image {i}, smallest difference {errors[i]:.3g}.")

    def _agreement(self, cid: str, expected: float, tol: float) -> None:
        g = self._basic(cid).values
        if abs(g["agreement"] - expected) > tol:
            raise StudentError("make_spurious: the digit equals the label for "
                               f"{g['agreement']:.3f} of the images, expected about "
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
        g = self._basic("sp_p1").values
        if g["agreement"] != 1.0:
            raise StudentError(f"make_spurious(p=1): the digit equals the label for only "
                               f"{g['agreement']:.3f} of the images, expected all of them.")

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
            g = self._basic(cid).values
            if not g["same_seed_equal"]:
                raise StudentError("make_spurious: two calls with the same seed differ; draw all "
                                   "random numbers from torch.Generator().manual_seed(seed).")
            if not g["other_seed_differs"]:
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
    def test_bad_corner(self):
        """make_spurious: an unknown corner raises ValueError"""
        got = self.outputs("sp_bad_corner", "make_spurious")
        if not got.values.get("raised_value_error"):
            raise StudentError("make_spurious(corner='centre') must raise ValueError.")


class ShiftChecks(LabCase):
    def _check(self, *cids: str) -> None:
        for cid in cids:
            got, ref = self.outputs(cid, "shift_images"), self.reference(cid)
            self.check_array(got, ref, "shifted", what=f"shift_images ({cid})", dtype_kind="f",
                             atol=0, rtol=0, equal_nan=False)
            if not got.values.get("input_unchanged"):
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
