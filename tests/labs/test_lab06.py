"""Lab 06 (Vision Transformer on CIFAR-100): lab-specific checks of the build and the numbers.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder.config import REPO_ROOT

REFERENCE = REPO_ROOT / "labs" / "lab06_vit" / "reference_results.json"


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab06")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("qkv.permute(2, 0, 3, 1, 4)", "flat.scatter_(1, lowest, 0.0)",
                   "mixed = images.clone()"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


def test_column_normalised_rollout_loses_only_the_rollout_checks(grade_mutant):
    results, lost = grade_mutant("lab06", "a = a / a.sum(dim=-1, keepdim=True)",
                                 "a = a / a.sum(dim=-2, keepdim=True)")
    assert lost == {"7"}, results["tests"]


def test_cutmix_without_clone_loses_only_the_cutmix_checks(grade_mutant):
    results, lost = grade_mutant("lab06", "mixed = images.clone()", "mixed = images")
    assert lost == {"5"}, results["tests"]


def test_swapped_queries_and_keys_lose_only_the_attention_checks(grade_mutant):
    # EncoderBlock, ViT and the rollout pipeline are graded with the reference attention
    results, lost = grade_mutant("lab06", "q, k, v = qkv.permute(2, 0, 3, 1, 4)",
                                 "k, q, v = qkv.permute(2, 0, 3, 1, 4)")
    assert lost == {"2"}, results["tests"]


def test_reference_results_are_labelled_as_a_pipeline_check():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    assert "test top-1: ViT, best" in results and len(results) >= 20
    for entry in results.values():
        assert "CIFAR-100 sample" in entry["setting"]
