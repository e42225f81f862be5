"""Lab 01 (CNN ablation, CAMs, spurious digits): autograder build, checks, reference results.

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
from autograder.grade import grade_submission, load_references
from autograder.labs import get_lab

LAB_DIR = REPO_ROOT / "labs" / "lab01_cnn_ablation"
EXERCISES = ("VGGResNet", "class_activation_map", "make_spurious", "shift_images")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """assign lab01 into a temporary dist (verify=True: solution full marks, student zero)."""
    dist = tmp_path_factory.mktemp("dist")
    (dist / "labkit-0.1.0-py3-none-any.whl").write_bytes(b"placeholder: no wheel build in tests")
    return assign_lab(get_lab("lab01"), dist, load_config(), verify=True)


def test_assign_verifies_solution_and_student_copy(built):
    assert built["zip"].is_file() and built["references"].is_file()
    student = nbformat.read(built["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("torch.einsum", "torch.maximum(patch", "out[..., dst_y, dst_x]"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"
    assert text.count("raise NotImplementedError") >= len(EXERCISES)
    tags = [set(c.metadata.get("tags", [])) for c in student.cells]
    assert not any("instructor" in t for t in tags)
    answers = [c for c, t in zip(student.cells, tags, strict=True) if "answer" in t]
    assert len(answers) >= 3 and all(c.source == nbmod.ANSWER_PROMPT for c in answers)
    # the closing table reads the reference file next to the notebook (copied as an asset)
    if (LAB_DIR / "reference_results.json").exists():
        assert (built["student"].parent / "reference_results.json").is_file()


def test_a_wrong_shift_loses_only_the_shift_checks(built, tmp_path):
    nb = nbformat.read(built["solution"], as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("out[..., dst_y, dst_x] = images[..., src_y, src_x]",
                                          "out[..., dst_y, src_x] = images[..., src_y, dst_x]")
    path = tmp_path / "lab01_cnn_ablation.ipynb"
    nbformat.write(nb, str(path))
    results = grade_submission(get_lab("lab01"), path,
                               references=load_references(built["references"]))
    lost = {t["number"].split(".")[0] for t in results["tests"] if t["score"] < t["max_score"]}
    assert lost == {"4"}, results["tests"]


def test_check_inputs_are_deterministic():
    lab = get_lab("lab01")
    first, second = lab.make_calls(), lab.make_calls()
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    for a, b in zip(first, second, strict=True):
        assert a.params == b.params
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])


def test_master_notebook_structure():
    master = nbmod.read_notebook(LAB_DIR / "lab01_cnn_ablation.ipynb")
    assert all(not c.get("outputs") for c in master.cells if c.cell_type == "code"), \
        "strip the outputs of the master notebook"
    program = nbmod.extract_program(nbmod.make_solution(master))
    assert set(EXERCISES) <= program.defined_names()
    tags = [set(c.metadata.get("tags", [])) for c in master.cells]
    assert sum("answer" in t for t in tags) >= 3 and sum("instructor" in t for t in tags) == 1
    sources = [c.source for c in master.cells]
    for name in EXERCISES:  # each exercise cell is followed by a self-check cell
        at = max(i for i, s in enumerate(sources) if f"{name}(" in s and
                 (f"def {name}(" in s or f"class {name}(" in s))
        later = "\n".join(s for s in sources[at + 1: at + 4])
        assert "self-check passed" in later, f"no self-check after {name}"
    assert not [p.name for p in LAB_DIR.iterdir() if p.suffix == ".py"], \
        "no scripts in the lab folder (assign copies every file next to the student notebook)"


def test_reference_results_are_measured_and_labelled():
    path = LAB_DIR / "reference_results.json"
    if not path.exists():
        pytest.skip("reference_results.json not measured yet")
    data = json.loads(path.read_text())
    assert data["labkit_version"] and data["device"]
    results = data["results"]
    assert "test acc: base" in results and len(results) >= 10
    for key, entry in results.items():
        assert math.isfinite(entry["value"]), key
        assert "cpu profile" in entry["setting"] and "Fashion-MNIST test split" in entry["setting"]


def test_closing_table_without_reference_shows_na():
    """The student copy on Colab has no reference file: the notebook falls back to n/a."""
    import labkit as lk

    student = {"test acc: base": 0.8}
    reference = {k: {"value": float("nan"), "setting": "reference_results.json not found"}
                 for k in student}
    table = lk.report.compare_with_reference(student, reference)
    assert "n/a" in table.to_markdown()
