"""Lab 07 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

from labkit.checking.lab07 import BUILD, SCHEDULE, TRAINABLE, build, freeze, plan
from labkit.checking.spec import Check, fn

HIDDEN = [
    Check("1.5", BUILD, 'ResNet-50-FPN "random" with the default sizes (800/1333)', 1,
          build(21, "random")),
    Check("1.6", BUILD, 'ResNet-50-FPN "coco" from the Mask R-CNN checkpoint, heads untouched', 2,
          build(21, "coco")),
    Check("1.7", BUILD, 'ResNet-50 "imagenet", 11 classes at 320/480 px (fc skipped)', 1,
          build(11, "imagenet", min_size=320, max_size=480)),
    Check("2.3", TRAINABLE, "unfreezing leaves frozen heads frozen", 1,
          freeze(True), freeze(True, fpn=True), freeze(True, fpn=False)),
    Check("2.4", TRAINABLE, "MobileNetV3-FPN detector", 1,
          freeze(False, "mobilenet_v3_fpn", fpn=True)),
    Check("3.3", SCHEDULE, "no frozen epoch, all frozen, zero epochs, other factors", 1,
          plan(5, 0, 2e-3, unfreeze_factor=1.0), plan(4, 4, 1e-2), plan(0, 0, 1e-3),
          plan(7, 2, 3e-4, unfreeze_factor=0.25, gamma=0.9)),
    Check("3.4", SCHEDULE, "frozen_epochs < 0 or > epochs raises ValueError", 1,
          fn(SCHEDULE, 3, 4, 1e-3).raises("ValueError", "frozen_epochs=4 > epochs=3"),
          fn(SCHEDULE, 3, -1, 1e-3).raises("ValueError", "frozen_epochs=-1"), needs=("3.1",)),
]
