"""Lab 04 (transfer learning: freeze, parameter groups, loading, new heads): lab-specific checks.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.labs import get_lab

LAB = get_lab("lab04")
REFERENCE = LAB.master_path.parent / "reference_results.json"


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab04")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("in_encoder = {id(p) for p in model.encoder.parameters()}",
                   "tuple(own[key].shape) == tuple(value.shape)",
                   "parent_name, _, child = name.rpartition"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


@pytest.mark.parametrize("old, new, section", [
    # freezes the whole model instead of the encoder
    ("    for p in model.encoder.parameters():\n        p.requires_grad_(False)",
     "    for p in model.parameters():\n        p.requires_grad_(False)", "1"),
    # frozen parameters end up in the optimiser's groups
    ("        if p.requires_grad:\n            (encoder if", "        if True:\n            (encoder if",
     "2"),
    # shapes not compared: the 19-class head makes load_state_dict fail
    ("if key in own and tuple(own[key].shape) == tuple(value.shape):", "if key in own:", "3"),
    # the new last layer without a bias
    ("padding=last.padding, bias=True)", "padding=last.padding, bias=False)", "4"),
])
def test_a_wrong_exercise_loses_only_its_checks(grade_mutant, old, new, section):
    results, lost = grade_mutant("lab04", old, new)
    assert lost == {section}, [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_notebook_uses_labkit_for_the_infrastructure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    text = "\n".join(c.source for c in master.cells)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "lk.weights.save_random_weights", "segformer_hf.segformer", "fcn_resnet50",
                   "lk.metrics.roc_one_vs_rest", "lk.viz.plot_roc", "plot_confusion_matrix",
                   "lk.viz.plot_curves", "lk.fit", "Cityscapes → Pets"):
        assert needed in text, needed


def test_reference_results_name_their_data_and_random_weights():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    for family in ("FCN-ResNet50", "SegFormer-B0"):
        for strategy in ("from scratch", "fine-tuned", "frozen encoder",
                         "fine-tuned, encoder lr / 2"):
            assert f"final test mIoU: {family} / {strategy}" in results
    assert "final test mIoU: SegFormer-B0 / Cityscapes → Pets" in results
    for entry in results.values():
        setting = entry["setting"]
        assert "trainval" in setting and "miniature" not in setting, setting
        assert "RANDOM-WEIGHT STAND-INS" in setting, setting
