"""Lab 03 (SegFormer from scratch): lab-specific checks of the grading.

The whole-model checks compare the student's logits with the reference run's; the graded child
cannot import ``transformers`` (forbidden in every exercise), so this test shows that those
reference logits are Hugging Face's ``SegformerForSemanticSegmentation`` with the same weights.
"""

import numpy as np
import pytest
import torch

from autograder.grade import load_references
from autograder.labs import get_lab
from autograder.labs.lab03 import EXERCISES

LAB = get_lab("lab03")


def _hf_logits(call) -> np.ndarray:
    from transformers import SegformerForSemanticSegmentation

    from labkit.models.segformer import MitConfig, hf_key_to_labkit, to_hf_config

    params = call.params
    state = {}
    for key, value in call.arrays.items():
        if key.startswith("w."):
            t = torch.from_numpy(np.array(value))
            state[key[2:]] = t.reshape(()) if key.endswith("num_batches_tracked") else t
    hf = SegformerForSemanticSegmentation(
        to_hf_config(MitConfig(**params["config"]), num_labels=params["num_classes"]))
    hf.load_state_dict({k: state[hf_key_to_labkit(k)] for k in hf.state_dict()}, strict=True)
    with torch.no_grad():
        return hf.eval()(pixel_values=torch.from_numpy(call.arrays["images"])).logits.numpy()


@pytest.mark.parametrize("family", ["b0", "tiny_odd"])
def test_reference_logits_are_hugging_faces(assigned, family):
    references = load_references(assigned("lab03")["references"])
    calls = {c.id: c for c in LAB.make_calls()}
    hf = _hf_logits(calls[f"model_{family}_1"])
    for k, exercise in enumerate(EXERCISES, start=1):
        call = calls[f"model_{family}_{k}"]
        assert call.exercise == exercise.name and call.params["part"] == exercise.name
        ref = references[call.id].arrays["logits"]
        assert ref.shape == hf.shape
        assert np.abs(ref - hf).max() < 1e-5, (call.id, float(np.abs(ref - hf).max()))


def test_every_call_grades_one_exercise():
    names = {e.name for e in EXERCISES}
    calls = LAB.make_calls()
    assert all(c.exercise in names for c in calls)
    for name in names:  # every exercise has its part calls and its three whole-model calls
        mine = [c.id for c in calls if c.exercise == name]
        assert sum(c.startswith("model_") for c in mine) == 3 and len(mine) > 3, (name, mine)
