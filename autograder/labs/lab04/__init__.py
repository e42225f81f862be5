"""Lab 04 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

from labkit.checking.lab04 import FREEZE, GROUPS, LOAD, REINIT, run
from labkit.checking.spec import Check

HIDDEN = [Check(number, ex, title, 1, call) for number, ex, title, call in (
    ("1.3", FREEZE, "torchvision FCN (tiny backbone)", run(FREEZE, "fcn")),
    ("1.4", FREEZE, "a head parameter frozen beforehand stays frozen, the others trainable",
     run(FREEZE, "toy", frozen=("classifier.0.0.weight",))),
    ("1.5", FREEZE, "one optimiser step changes the head and leaves the encoder as it was",
     run(FREEZE, "fcn", only="the tensors that")),
    ("2.3", GROUPS, "torchvision FCN, an optimiser built from the groups",
     run(GROUPS, "fcn", 0.003, 0.03)),
    ("2.4", GROUPS, "a partly frozen encoder keeps only its trainable parameters",
     run(GROUPS, "segformer", 1e-5, 1e-3, frozen=("segformer.stages.0.patch_embeddings.",))),
    ("3.3", LOAD, "torchvision FCN, 5-class checkpoint into 3 classes",
     run(LOAD, "fcn", checkpoint=dict(classes=5))),
    ("3.4", LOAD, "unknown checkpoint keys are reported, everything else loads", run(LOAD, "toy",
     checkpoint=dict(classes=3, add={"unknown.bias": [2], "backbone.0.weight_old": [2]}))),
    ("3.5", LOAD, "an encoder-only checkpoint with a classifier (ImageNet-like)", run(LOAD, "fcn",
     checkpoint=dict(classes=21, keep="backbone.", add={"backbone.fc.weight": [10, 16]}))),
    ("4.3", REINIT, "the last convolution sits in a nested module of the head",
     run(REINIT, "toy", 7)),
    ("4.4", REINIT, "same class count: fresh default-initialised trainable weights",
     run(REINIT, "segformer", 3)))]
