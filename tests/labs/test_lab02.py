"""Lab 02 (segmentation: mIoU, FCN, U-Net, hourglass ablation, Dice): autograder build, checks,
notebook structure, reference results.

The master notebook itself runs under nbval (``labs/`` is a pytest test path).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import notebook as nbmod
from autograder.assign import assign_lab
from autograder.config import REPO_ROOT, load_config
from autograder.grade import grade_submission, listed_tests, load_references
from autograder.labs import get_lab

LAB = get_lab("lab02")
LAB_DIR = REPO_ROOT / "labs" / "lab02_segmentation"
EXERCISES = ("confusion_matrix", "mean_iou", "build_fcn", "UNet", "dice_loss")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """assign lab02 into a temporary dist (verify=True: solution full marks, student zero)."""
    dist = tmp_path_factory.mktemp("dist")
    (dist / "labkit-0.1.0-py3-none-any.whl").write_bytes(b"placeholder: no wheel build in tests")
    return assign_lab(LAB, dist, load_config(), verify=True)


def test_every_exercise_has_public_and_hidden_checks():
    tests = listed_tests(LAB, "")["tests"]
    sections = {"1": "confusion_matrix", "2": "mean_iou", "4": "build_fcn", "5": "UNet",
                "6": "dice_loss"}
    for section, name in sections.items():
        mine = [t for t in tests if t["number"].split(".")[0] == section]
        assert {t["visibility"] for t in mine} == {"visible", "after_due_date"}, name
        assert all(t["name"].startswith(name) for t in mine), name
    assert [e.name for e in LAB.exercises] == list(EXERCISES)


def test_assign_verifies_solution_and_student_copy(built):
    assert built["zip"].is_file() and built["references"].is_file()
    student = nbformat.read(built["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("fcn_resnet50(weights=None, weights_backbone=weights_backbone",
                   "torch.cat([x, s], dim=1)", "(2 * inter + 1.0) / (total + 1.0)"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"
    assert text.count("raise NotImplementedError") >= len(EXERCISES)
    tags = [set(c.metadata.get("tags", [])) for c in student.cells]
    assert not any("instructor" in t for t in tags)
    answers = [c for c, t in zip(student.cells, tags, strict=True) if "answer" in t]
    assert len(answers) >= 4 and all(c.source == nbmod.ANSWER_PROMPT for c in answers)
    if (LAB_DIR / "reference_results.json").exists():
        assert (built["student"].parent / "reference_results.json").is_file()


@pytest.mark.parametrize("old, new, section", [
    # Dice averaged over the classes present in the targets only
    ("    return 1.0 - dice.mean()",
     "    return 1.0 - dice[onehot.sum(dim=(0, 2, 3)) > 0].mean()", "6"),
    # a U-Net whose convolutions always have a bias (parameter counts off)
    ("padding=1, bias=not norm))", "padding=1, bias=True))", "5"),
])
def test_a_wrong_exercise_loses_only_its_checks(built, tmp_path, old, new, section):
    nb = nbformat.read(built["solution"], as_version=4)
    hits = 0
    for cell in nb.cells:
        hits += cell.source.count(old)
        cell.source = cell.source.replace(old, new)
    assert hits == 1
    path = tmp_path / LAB.notebook_name
    nbformat.write(nb, str(path))
    results = grade_submission(LAB, path, references=load_references(built["references"]))
    lost = {t["number"].split(".")[0] for t in results["tests"] if t["score"] < t["max_score"]}
    assert lost == {section}, [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_check_inputs_are_deterministic():
    first, second = LAB.make_calls(), LAB.make_calls()
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    for a, b in zip(first, second, strict=True):
        assert a.params == b.params
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])


def test_master_notebook_structure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    tags = [set(c.metadata.get("tags", [])) for c in master.cells]
    assert sum("answer" in t for t in tags) >= 4 and sum("instructor" in t for t in tags) == 1
    sources = [c.source for c in master.cells]
    for name in EXERCISES:  # each exercise cell is followed by a self-check cell
        at = max(i for i, s in enumerate(sources) if f"def {name}(" in s or f"class {name}(" in s)
        later = "\n".join(s for s in sources[at + 1: at + 4])
        assert "self-check passed" in later, f"no self-check after {name}"
    text = "\n".join(sources)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "lk.report.delta_table", "class_frequencies", "plot_confusion_matrix",
                   "plot_per_class_iou", "show_masks", "plot_history"):
        assert needed in text, needed
    assert not [p.name for p in LAB_DIR.iterdir() if p.suffix == ".py"], \
        "no scripts in the lab folder (assign copies every file next to the student notebook)"


def test_reference_results_are_measured_and_labelled():
    path = LAB_DIR / "reference_results.json"
    if not path.exists():
        pytest.skip("reference_results.json not measured yet")
    data = json.loads(path.read_text())
    assert data["labkit_version"] and data["device"]
    results = data["results"]
    for key in ("mIoU: FCN-ResNet50", "mIoU: U-Net", "worst-class IoU: imbalance: Dice",
                "train time (s): U-Net"):
        assert key in results, key
    for key, entry in results.items():
        assert math.isfinite(entry["value"]), key
        setting = entry["setting"]
        assert "cpu profile" in setting and "300 trainval / 298 test" in setting, setting
        assert "miniature" not in setting
