"""Lab 04 (transfer learning) grading: exercises, deterministic probe inputs, spec.

The probes build small models in the child (never real checkpoints): a toy module with
``encoder``/``head`` attributes and a nested head, a torchvision ``FCN`` on a tiny backbone
(labkit's ``FCNSegmenter``) and a tiny Hugging Face SegFormer (``labkit.models.segformer_hf``).
"""

from __future__ import annotations

import numpy as np

from autograder.sandbox import Call
from autograder.spec import Exercise, LabSpec

EXERCISES = (
    Exercise("freeze_encoder", ("model",)),
    Exercise("param_groups", ("model", "lr_encoder", "lr_head")),
    Exercise("load_encoder_weights", ("model", "state_dict"),
             forbidden=("load_into", "load_pretrained", "hf_state_dict_to_labkit")),
    Exercise("reinit_head", ("model", "num_classes")),
)
FREEZE, GROUPS, LOAD, REINIT = (e.name for e in EXERCISES)


def _images(rng, shape):
    return rng.normal(0, 1, size=shape).astype(np.float32)


def make_calls() -> list[Call]:
    """Inputs for every check, made here in the parent with fixed seeds (one exercise a call)."""
    rng = np.random.default_rng(404)
    calls = []

    def add(cid, probe, arrays, params, exercise):
        calls.append(Call(cid, probe, arrays, params, exercise=exercise))

    # freeze_encoder: each model kind; a head parameter frozen beforehand; one optimiser step
    for kind in ("toy", "segformer", "fcn"):
        add(f"freeze_{kind}", "freeze", {}, {"kind": kind}, FREEZE)
    add("freeze_prefrozen", "freeze", {}, {"kind": "toy", "prefreeze": ["head.0.weight"]}, FREEZE)
    add("freeze_step", "freeze_step",
        {"images": _images(rng, (2, 3, 32, 32)),
         "targets": rng.integers(0, 3, size=(2, 32, 32)).astype(np.int64)},
        {"kind": "fcn"}, FREEZE)
    # param_groups: trainable, frozen, partly frozen encoders; a parameter outside both parts;
    # an optimiser built from the groups
    add("groups_toy", "groups", {}, {"kind": "toy", "lr_encoder": 1e-4, "lr_head": 1e-3}, GROUPS)
    add("groups_frozen", "groups", {}, {"kind": "segformer", "lr_encoder": 5e-5,
                                        "lr_head": 2e-4, "frozen": "all"}, GROUPS)
    add("groups_fcn", "groups", {}, {"kind": "fcn", "lr_encoder": 0.003, "lr_head": 0.03},
        GROUPS)
    add("groups_fcn_optimizer", "groups_optimizer", {},
        {"kind": "fcn", "lr_encoder": 0.003, "lr_head": 0.03}, GROUPS)
    add("groups_partial", "groups", {}, {"kind": "segformer", "lr_encoder": 1e-5,
                                         "lr_head": 1e-3, "frozen": "first"}, GROUPS)
    # load_encoder_weights: other class count, encoder-only checkpoints with extra keys
    add("load_segformer", "load", {}, {"kind": "segformer", "src_classes": 19,
                                       "dst_classes": 3}, LOAD)
    add("load_fcn", "load", {}, {"kind": "fcn", "src_classes": 5, "dst_classes": 3}, LOAD)
    add("load_toy_extra", "load", {}, {"kind": "toy", "src_classes": 3, "dst_classes": 3,
                                       "extra": True}, LOAD)
    add("load_encoder_only", "load", {}, {"kind": "fcn", "src_classes": 21, "dst_classes": 3,
                                          "encoder_only": True}, LOAD)
    # reinit_head: new class counts, nested head, same class count (fresh weights)
    images = _images(rng, (1, 3, 32, 32))
    add("reinit_segformer", "reinit", {"images": images},
        {"kind": "segformer", "src_classes": 19, "num_classes": 3}, REINIT)
    add("reinit_fcn", "reinit", {"images": images},
        {"kind": "fcn", "src_classes": 21, "num_classes": 3}, REINIT)
    add("reinit_toy", "reinit", {"images": images},
        {"kind": "toy", "src_classes": 3, "num_classes": 7}, REINIT)
    add("reinit_same", "reinit", {"images": images},
        {"kind": "segformer", "src_classes": 3, "num_classes": 3}, REINIT)
    return calls


LAB = LabSpec("lab04", "lab04_transfer", EXERCISES, make_calls,
              title="Transfer learning: pre-training vs from scratch vs a frozen encoder")
