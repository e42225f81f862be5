"""Lab 07 (detection): exercises and public checks."""

from labkit.checking.spec import Check, Exercise, Lab, fn, probe, same, same_set, shape

BUILD, TRAINABLE, SCHEDULE = "build_detector", "set_backbone_trainable", "freeze_unfreeze_schedule"
EXERCISES = (Exercise(BUILD, ("num_classes", "backbone_init")),
             Exercise(TRAINABLE, ("model", "trainable")),
             Exercise(SCHEDULE, ("epochs", "frozen_epochs", "lr")))
MNV3 = dict(arch="mobilenet_v3_fpn", min_size=64, max_size=96)


def build(num_classes, init, losses=False, **kw):  # build_detector on stand-in checkpoints
    return probe("build", num_classes=num_classes, backbone_init=init, losses=losses, **kw).expect(
        same_set("keys", "the model's state dict (key:[shape])", "Build it with det.fasterrcnn("
                "arch=..., num_classes=..., min_size=..., max_size=..., frozen_bn=...): frozen "
                "BatchNorm exactly when a checkpoint is loaded."),
        same("sizes", "[cls_score outputs, bbox_pred outputs, transform.min_size, max_size]"),
        same("read", "the checkpoints read", hint="(lk.weights.load_state_dict(det.PRETRAINED"
             '[arch][backbone_init]); none for "random")'),
        same_set("copied", "model tensors equal to a checkpoint's (model key <- checkpoint key)",
                "Copy only backbone tensors (body; FPN too for coco): the heads stay as built."),
        same("report", "the report's keys", hint="(exactly 'matched' and 'skipped')"),
        same_set("matched", 'report["matched"]'), same_set("skipped", 'report["skipped"]'),
        *([same("loss_keys", "the training losses"), same("detection", "a detection's keys"),
           shape("losses", "the training losses' values")] if losses else []))


def freeze(trainable, model="tiny", **kw):  # set_backbone_trainable, parameters' flags random
    return probe("freeze", model=model, trainable=trainable, **kw).expect(
        same_set("trainable", "the parameters requiring grad after the call", "Only model.backbone"
                ".body (and model.backbone.fpn if fpn=True) may change, each to `trainable`."),
        same("count", "the returned count (sum of numel() of those set)", rtol=0, atol=0))


def plan(*args, **kwargs):
    lr = "(lr * gamma**e while frozen, e < frozen_epochs; lr * unfreeze_factor * gamma**e after)"
    return fn(SCHEDULE, *args, **kwargs).expect(
        same("out.len", "the number of epochs in the plan", hint="(a list of pairs)"),
        *[c for e in range(args[0]) for c in (
            same(f"out.{e}.len", f"entry {e} of the plan", hint="(a pair: lr, backbone_trainable)"),
            same(f"out.{e}.1", f"backbone_trainable of epoch {e}", hint="(a bool)"),
            same(f"out.{e}.0", f"the learning rate of epoch {e}", rtol=1e-9, atol=0, hint=lr))])


CHECKS = [
    Check("1.1", BUILD, 'MobileNetV3-FPN, "random": state dict, BatchNorm, heads, sizes, losses',
          2, build(4, "random", losses=True, **MNV3)),
    Check("1.2", BUILD, '"coco" (MobileNetV3-FPN) copies exactly the backbone and FPN tensors', 2,
          build(21, "coco", **MNV3)),
    Check("1.3", BUILD, '"imagenet" (MobileNetV3) fills backbone.body from features.*', 2,
          build(21, "imagenet", **MNV3)),
    Check("1.4", BUILD, "an unknown backbone_init raises ValueError", 1, probe(
        "build", num_classes=21, backbone_init="imagenet21k", arch="mobilenet_v3_fpn").raises(
        "ValueError", 'build_detector(21, "imagenet21k")'), needs=("1.1",)),
    Check("2.1", TRAINABLE, "freeze the body only (FPN and heads untouched)", 2, freeze(False)),
    Check("2.2", TRAINABLE, "freeze body and FPN (fpn=True)", 1, freeze(False, fpn=True)),
    Check("3.1", SCHEDULE, "10 epochs, 3 frozen, defaults (factor 0.1, gamma 0.96)", 2,
          plan(10, 3, 1e-4)),
    Check("3.2", SCHEDULE, "the notebook's hand-computed case", 1, plan(4, 2, 1e-3)),
]
LAB = Lab("lab07_detection", "Faster R-CNN backbone transfer on PASCAL VOC", EXERCISES, CHECKS)
