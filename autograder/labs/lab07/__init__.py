"""Lab 07 (Faster R-CNN backbone transfer) grading: exercises, deterministic probe inputs, spec."""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

EXERCISES = (
    Exercise("build_detector", ("num_classes", "backbone_init")),
    Exercise("set_backbone_trainable", ("model", "trainable")),
    # a torch scheduler stepping a dummy optimizer is a correct way to compute the plan too
    Exercise("freeze_unfreeze_schedule", ("epochs", "frozen_epochs", "lr")),
)
BUILD, TRAINABLE, SCHEDULE = (e.name for e in EXERCISES)

_SMALL = {"min_size": 64, "max_size": 96}
_EXERCISE_OF_PROBE = {"build": BUILD, "build_invalid": BUILD, "trainable": TRAINABLE,
                      "schedule": SCHEDULE, "schedule_invalid": SCHEDULE}


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds."""
    rng = np.random.default_rng(2027)
    calls = [
        # build_detector: the architecture (no checkpoint), then each pretrained source, served
        # by the probe as seeded random state dicts in the real key format
        Call("build_mnv3_random", "build", {"images": rng.random((1, 3, 48, 64), np.float32)},
             {"num_classes": 4, "backbone_init": "random", "arch": "mobilenet_v3_fpn", **_SMALL}),
        Call("build_mnv3_coco", "build", {}, {"num_classes": 21, "backbone_init": "coco",
                                              "arch": "mobilenet_v3_fpn", **_SMALL}),
        Call("build_mnv3_imagenet", "build", {},
             {"num_classes": 21, "backbone_init": "imagenet", "arch": "mobilenet_v3_fpn",
              **_SMALL}),
        Call("build_bad_init", "build_invalid", {},
             {"num_classes": 21, "backbone_init": "imagenet21k", "arch": "mobilenet_v3_fpn"}),
        Call("build_r50_random", "build", {}, {"num_classes": 21, "backbone_init": "random"}),
        Call("build_r50_coco", "build", {}, {"num_classes": 21, "backbone_init": "coco"}),
        Call("build_r50_imagenet", "build", {},
             {"num_classes": 11, "backbone_init": "imagenet", "min_size": 320, "max_size": 480}),
    ]
    # set_backbone_trainable: random starting flags, each (trainable, fpn) combination
    for name, trainable, fpn in (("freeze_body", False, False), ("freeze_all", False, True),
                                 ("unfreeze_body", True, False), ("unfreeze_all", True, True)):
        calls.append(Call(f"trainable_{name}", "trainable", {"start": rng.random(64) < 0.5},
                          {"trainable": trainable, "fpn": fpn, "model": "tiny"}))
    calls.append(Call("trainable_mnv3", "trainable", {"start": rng.random(400) < 0.5},
                      {"trainable": False, "fpn": True, "model": "mobilenet_v3_fpn"}))
    calls.append(Call("trainable_default_fpn", "trainable", {"start": np.zeros(64, bool)},
                      {"trainable": True, "fpn": None, "model": "tiny"}))
    # freeze_unfreeze_schedule
    for cid, args, kwargs in (
        ("schedule_basic", (10, 3, 1e-4), {}),
        ("schedule_defaults_small", (4, 2, 1e-3), {}),
        ("schedule_no_freeze", (5, 0, 2e-3), {"unfreeze_factor": 1.0}),
        ("schedule_all_frozen", (4, 4, 1e-2), {}),
        ("schedule_other_factors", (7, 2, 3e-4), {"unfreeze_factor": 0.25, "gamma": 0.9}),
        ("schedule_zero_epochs", (0, 0, 1e-3), {}),
    ):
        calls.append(Call(cid, "schedule", {}, {"args": list(args), "kwargs": kwargs}))
    for cid, args in (("schedule_too_many_frozen", (3, 4, 1e-3)),
                      ("schedule_negative_frozen", (3, -1, 1e-3))):
        calls.append(Call(cid, "schedule_invalid", {}, {"args": list(args)}))
    for call in calls:  # the one exercise each call grades, by its probe
        call.exercise = _EXERCISE_OF_PROBE[call.probe]
    return calls


LAB = LabSpec("lab07", "lab07_detection", EXERCISES, make_calls,
              title="Faster R-CNN backbone transfer on PASCAL VOC")
