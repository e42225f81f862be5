"""Lab 07 (Faster R-CNN backbone transfer on VOC; tiny detector on shapes): lab-specific checks.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.grade import listed_tests
from autograder.labs import get_lab

LAB = get_lab("lab07")
REFERENCE = LAB.master_path.parent / "reference_results.json"


def test_every_exercise_has_public_and_hidden_checks():
    tests = listed_tests(LAB, "")["tests"]
    sections = {"1": "build_detector", "2": "set_backbone_trainable",
                "3": "freeze_unfreeze_schedule"}
    for section, name in sections.items():
        mine = [t for t in tests if t["number"].split(".")[0] == section]
        assert {t["visibility"] for t in mine} == {"visible", "after_due_date"}, name
        assert all(t["name"].startswith(name) for t in mine), name
    assert [e.name for e in LAB.exercises] == list(sections.values())


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab07")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ('target = key if key.startswith("backbone.") else None',
                   "p.requires_grad_(trainable)", "lr * factor * gamma**e"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


@pytest.mark.parametrize("old, new, section", [
    # "coco" copies every tensor of matching name and shape, RPN and RoI heads included
    ('target = key if key.startswith("backbone.") else None', "target = key", "1"),
    # the FPN flag ignored: the whole backbone always flips
    ("parts = [model.backbone.body] + ([model.backbone.fpn] if fpn else [])",
     "parts = [model.backbone]", "2"),
    # the decay restarts at unfreezing instead of running from the first epoch
    ("plan.append((float(lr * factor * gamma**e), not frozen))",
     "plan.append((float(lr * factor * gamma**(e if frozen else e - frozen_epochs)), not frozen))",
     "3"),
])
def test_a_wrong_exercise_loses_only_its_checks(grade_mutant, old, new, section):
    results, lost = grade_mutant("lab07", old, new)
    assert lost == {section}, [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_notebook_uses_labkit_for_the_infrastructure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    text = "\n".join(c.source for c in master.cells)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "lk.data.VOCDetection", "lk.data.write_fake_voc",
                   "lk.weights.save_random_weights", "lk.weights.load_state_dict",
                   "det.fasterrcnn", "det.tiny_fasterrcnn", "det.plot_loss_curves",
                   "lk.metrics.DetectionAP", "lk.metrics.DetectionMatchMetric",
                   "lk.viz.draw_detections", "lk.viz.plot_grouped_bars", 'task="detection"'):
        assert needed in text, needed


def test_reference_results_name_their_data():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    for key in ("shapes AP@0.5 (tiny Faster R-CNN)", "shapes accuracy", "shapes mIoU",
                "VOC test mAP: coco", "VOC test mAP: imagenet", "VOC test mAP: random"):
        assert key in results, key
    assert results["shapes AP@0.5 (tiny Faster R-CNN)"]["value"] > 0.5  # it really learns
    for entry in results.values():
        setting = entry["setting"]
        assert "synthetic scenes" in setting, setting
        assert "stand-in" in setting or "pretrained checkpoints" in setting, setting
