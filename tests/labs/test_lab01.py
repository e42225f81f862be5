"""Lab 01 (CNN ablation, CAMs, spurious digits): lab-specific checks of the build and the numbers.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder.config import REPO_ROOT

REFERENCE = REPO_ROOT / "labs" / "lab01_cnn_ablation" / "reference_results.json"


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab01")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("torch.einsum", "torch.maximum(patch", "out[..., dst_y, dst_x]"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


def test_a_wrong_shift_loses_only_the_shift_checks(grade_mutant):
    results, lost = grade_mutant("lab01", "out[..., dst_y, dst_x] = images[..., src_y, src_x]",
                                 "out[..., dst_y, src_x] = images[..., src_y, dst_x]")
    assert lost == {"4"}, results["tests"]


def test_reference_results_name_their_data():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    assert "test acc: base" in results and len(results) >= 10
    for entry in results.values():
        assert "Fashion-MNIST test split" in entry["setting"]


def test_closing_table_without_reference_shows_na():
    """The student copy on Colab has no reference file: the notebook falls back to n/a."""
    import labkit as lk

    student = {"test acc: base": 0.8}
    reference = {k: {"value": float("nan"), "setting": "reference_results.json not found"}
                 for k in student}
    table = lk.report.compare_with_reference(student, reference)
    assert "n/a" in table.to_markdown()
