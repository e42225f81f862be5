"""Lab 05 hidden checks, ``HIDDEN`` (private: never in labkit or a student notebook)."""

import numpy as np

from labkit.checking.lab05 import DEG, EVAL, TO, degradation, evaluate, modality
from labkit.checking.spec import Check, labels

nan, rng = np.nan, np.random.default_rng(505)
wide = rng.random((1, 3, 4, 9))  # float64
HIDDEN = [
    Check("1.4", TO, "a single (3,H,W) image in both gray modalities", 1,
          modality("grayscale", (3, 6, 4)), modality("inverted_grayscale", (3, 6, 4))),
    Check("1.5", TO, "float64 images keep their dtype", 1,
          modality("grayscale", wide), modality("inverted_grayscale", wide)),
    Check("1.6", TO, "ValueError for an unknown modality and for a 1-channel input", 1,
          modality("grayscale", (2, 1, 5, 7)).call.raises("ValueError", "to_modality(x[:, :1], m)"),
          modality("sepia").call.raises("ValueError", "to_modality(x, 'sepia')"), needs=("1.1",)),
    Check("2.3", EVAL, "ignore_index=0 and classes absent from the targets (NaN or 0)", 1,
          evaluate(["grayscale", "rgb"], 7, labels((2, 6, 10), 5), batch_size=1, ignore_index=0)),
    Check("2.4", EVAL, "honours non-default mean and std (normalise after the modality)", 1,
          evaluate(["grayscale"], 3, labels((2, 9, 9), 3, 0.2), mean=[.5] * 3, std=[.25, .5, 1])),
    Check("3.2", DEG, "NaN classes left out of each mIoU; an all-NaN modality is NaN", 1,
          degradation([[0.8, nan, 0.4, 0.0], [0.5, 0.2, nan, 0.1], [nan] * 4])),
    Check("3.3", DEG, "a base mIoU of 0 gives NaN everywhere", 1,
          degradation([[0.1, 0.2, 0.0, 0.0], [0.0] * 4], keys=("grayscale", "rgb"))),
    Check("3.4", DEG, 'base="grayscale" and another key order', 1, degradation(
        rng.random((3, 19)), keys=("inverted_grayscale", "grayscale", "rgb"), base="grayscale")),
    Check("3.5", DEG, "KeyError when the base modality is missing", 1,
          degradation([[0.5, 0.5]], keys=("grayscale",)).call.raises(
              "KeyError", "relative_degradation of a dict without 'rgb'"), needs=("3.1",)),
]
