"""Lab 03 (SegFormer from scratch): lab-specific checks of the grading.

The whole-model checks compare the student's logits with the reference run's; the graded child
cannot import ``transformers`` (forbidden in every exercise), so this test shows that those
reference logits are Hugging Face's ``SegformerForSemanticSegmentation`` with the same weights
(every tensor drawn from its name, :func:`labkit.checking.probe_utils.draw`).
"""

import numpy as np
import pytest
import torch

from autograder.grade import load_references
from autograder.labs import get_lab
from labkit.checking.lab03 import EXERCISES
from labkit.checking.probe_utils import draw

LAB = get_lab("lab03")


def _hf_logits(call) -> np.ndarray:
    from transformers import SegformerForSemanticSegmentation

    from labkit.models.segformer import MitConfig, hf_key_to_labkit, to_hf_config

    params = call.params
    hf = SegformerForSemanticSegmentation(
        to_hf_config(MitConfig(**params["config"]), num_labels=params["num_classes"]))
    with torch.no_grad():
        for key, t in hf.state_dict().items():
            t.copy_(draw(hf_key_to_labkit(key), t))
        return hf.eval()(pixel_values=torch.from_numpy(call.arrays["images"])).logits.numpy()


@pytest.mark.parametrize("family", ["b0", "tiny"])
def test_reference_logits_are_hugging_faces(assigned, family):
    references = load_references(assigned("lab03")["references"])
    calls = [c for c in LAB.make_calls() if c.probe == "model" and not c.params["train"]
             and c.params["config"]["name"] == family]
    assert [c.params["part"] for c in calls] == [e.name for e in EXERCISES]
    for call in calls:
        assert call.exercise == call.params["part"]
        ref, hf = references[call.id].arrays["logits"], _hf_logits(call)
        assert ref.shape == hf.shape
        assert np.abs(ref - hf).max() < 1e-5, (call.id, float(np.abs(ref - hf).max()))


def test_every_call_grades_one_exercise():
    names = {e.name for e in EXERCISES}
    calls = LAB.make_calls()
    assert all(c.exercise in names for c in calls)
    for name in names:  # every exercise has its part calls and its three whole-model calls
        mine = [c for c in calls if c.exercise == name]
        assert sum(c.probe == "model" for c in mine) == 3 and len(mine) > 3, (name, mine)
        assert all(c.params["part"] == name for c in mine if c.probe == "model")
