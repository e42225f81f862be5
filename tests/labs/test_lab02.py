"""Lab 02 (segmentation: mIoU, FCN, U-Net, hourglass ablation, Dice): lab-specific checks.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.labs import get_lab

LAB = get_lab("lab02")
REFERENCE = LAB.master_path.parent / "reference_results.json"


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab02")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("fcn_resnet50(weights=None, weights_backbone=weights_backbone",
                   "torch.cat([x, s], dim=1)", "(2 * inter + 1.0) / (total + 1.0)"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


@pytest.mark.parametrize("old, new, section", [
    # Dice averaged over the classes present in the targets only
    ("    return 1.0 - dice.mean()",
     "    return 1.0 - dice[onehot.sum(dim=(0, 2, 3)) > 0].mean()", "6"),
    # a U-Net whose convolutions always have a bias (parameter counts off)
    ("padding=1, bias=not norm))", "padding=1, bias=True))", "5"),
    # mean_iou returning NumPy (the stub asks for a tensor; the notebook's own code needs one):
    # its checks and the dataset-level one fail, nothing else
    ("    return per_class.float(), miou", "    return per_class.float().numpy(), miou", "2,3"),
])
def test_a_wrong_exercise_loses_only_its_checks(grade_mutant, old, new, section):
    results, lost = grade_mutant("lab02", old, new)
    assert lost == set(section.split(",")), [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_notebook_uses_labkit_for_the_infrastructure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    text = "\n".join(c.source for c in master.cells)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "lk.report.delta_table", "class_frequencies", "plot_confusion_matrix",
                   "plot_per_class_iou", "show_masks", "plot_history"):
        assert needed in text, needed


def test_reference_results_name_their_data():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    for key in ("mIoU: FCN-ResNet50", "mIoU: U-Net", "worst-class IoU: imbalance: Dice",
                "train time (s): U-Net"):
        assert key in results, key
    for entry in results.values():
        setting = entry["setting"]
        assert "300 trainval / 298 test" in setting and "miniature" not in setting, setting
