"""What every lab with checks must satisfy (the lab-specific tests live in tests/labs/).

The lab builds: solution copy full marks, student copy zero with NotImplementedError only, no
solution text in the student copy, a complete zip. The master notebook follows the format: outputs
stripped, every exercise followed by a self-check, questions and an instructor cell, no scripts in
the lab folder. Check inputs are deterministic; every lab has public and hidden checks; reference
numbers, when present, are finite and say where they were measured.
"""

import ast
import json
import math
import zipfile

import nbformat
import numpy as np
import pytest

from autograder import notebook as nbmod
from autograder.grade import listed_tests
from autograder.labs import available_labs, get_lab
from labkit.checking.program import build_program

LABS = available_labs()


@pytest.mark.parametrize("lab_id", LABS)
def test_lab_assigns_and_verifies(lab_id, assigned):
    lab = get_lab(lab_id)
    paths = assigned(lab_id)  # assign_lab(verify=True) raises AssignError otherwise

    master = nbmod.read_notebook(lab.master_path)
    student = nbformat.read(str(paths["student"]), as_version=4)
    student_text = "\n".join(c.source for c in student.cells)
    # text of the master outside solution regions, answers and instructor cells: allowed
    regions = nbmod.solution_regions(master)
    outside = []
    for ci, cell in enumerate(master.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"answer", "instructor"}:
            continue
        inside = {li for r in regions if r.cell == ci for li in range(r.start, r.end)}
        outside += [line for li, line in enumerate(cell.source.splitlines()) if li not in inside]
    outside_text = "\n".join(outside)
    leaks = [t for t in nbmod.solution_texts(master)
             if len(t) >= 12 and t in student_text and t not in outside_text]
    assert not leaks, f"solution text in the student copy: {leaks[:3]}"
    assert "colab.research.google.com" in student.cells[0].source
    assert "import labkit" in student.cells[1].source
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    for ex in lab.exercises:
        assert ex.name in student_text, f"exercise {ex.name} missing from the student copy"

    with zipfile.ZipFile(paths["zip"]) as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", "references.npz",
                "labkit-0.1.0-py3-none-any.whl"} <= names
        assert "download.pytorch.org/whl/cpu" in zf.read("setup.sh").decode()
        assert f"grade {lab.id} /autograder/submission" in zf.read("run_autograder").decode()
        for name in ("setup.sh", "run_autograder"):
            assert (zf.getinfo(name).external_attr >> 16) & 0o111, f"{name} must be executable"

    tags = [set(c.metadata.get("tags", [])) for c in student.cells]
    assert not any("instructor" in t for t in tags)
    answers = [c for c, t in zip(student.cells, tags, strict=True) if "answer" in t]
    assert answers and all(c.source == nbmod.ANSWER_PROMPT for c in answers)
    assert student_text.count("raise NotImplementedError") >= len(lab.exercises)
    # the closing table reads the reference file next to the notebook (copied as an asset)
    if (lab.master_path.parent / "reference_results.json").exists():
        assert (paths["student"].parent / "reference_results.json").is_file()


@pytest.mark.parametrize("lab_id", LABS)
def test_master_notebook_format(lab_id):
    lab = get_lab(lab_id)
    master = nbmod.read_notebook(lab.master_path)
    assert all(not c.get("outputs") for c in master.cells if c.cell_type == "code"), \
        "strip the outputs of the master notebook"
    program = build_program(nbmod.make_solution(master))
    assert {e.name for e in lab.exercises} <= program.defined_names()
    tags = [set(c.metadata.get("tags", [])) for c in master.cells]
    assert sum("answer" in t for t in tags) >= 3, "the lab's questions, in cells tagged answer"
    assert sum("instructor" in t for t in tags) == 1
    sources = [c.source for c in master.cells]
    for ex in lab.exercises:  # each exercise cell is followed by its self-check: lk.check
        at = max(i for i, s in enumerate(sources)
                 if f"def {ex.name}(" in s or f"class {ex.name}(" in s)
        later = [s for s in sources[at + 1: at + 4] if s.startswith("lk.check(")]
        assert later and later[0].splitlines()[0] == f'lk.check("{ex.name}")', \
            f"no self-check cell starting with lk.check(\"{ex.name}\") after {ex.name}"
    for source in sources:  # a teaching assert left in a self-check cell says what is wrong
        if source.startswith("lk.check("):
            for node in ast.walk(ast.parse(source)):
                assert not isinstance(node, ast.Assert) or node.msg is not None, \
                    f"an assert without a message in: {source[:80]}"
    scripts = [p.name for p in lab.master_path.parent.iterdir() if p.suffix == ".py"]
    assert not scripts, "no scripts in the lab folder (assign copies every file next to the student notebook)"


@pytest.mark.parametrize("lab_id", LABS)
def test_check_inputs_are_deterministic_and_checks_public_and_hidden(lab_id):
    lab = get_lab(lab_id)
    first, second = lab.make_calls(), lab.make_calls()
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    for a, b in zip(first, second, strict=True):
        assert a.params == b.params
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    visibility = {t["visibility"] for t in listed_tests(lab, "")["tests"]}
    assert visibility == {"visible", "after_due_date"}


@pytest.mark.parametrize("lab_id", LABS)
def test_every_exercise_has_public_and_hidden_checks_named_after_it(lab_id):
    lab = get_lab(lab_id)
    tests = listed_tests(lab, "")["tests"]
    for ex in lab.exercises:
        mine = [t for t in tests if t["name"].startswith(ex.name)]
        assert {t["visibility"] for t in mine} == {"visible", "after_due_date"}, ex.name


@pytest.mark.parametrize("lab_id", LABS)
def test_reference_results_are_measured_and_labelled(lab_id):
    path = get_lab(lab_id).master_path.parent / "reference_results.json"
    if not path.exists():
        pytest.skip(f"{lab_id} has no reference_results.json yet")
    data = json.loads(path.read_text())
    assert data["labkit_version"] and data["device"]
    assert data["results"]
    for key, entry in data["results"].items():
        assert math.isfinite(entry["value"]), key
        assert "cpu profile" in entry["setting"].lower(), (key, entry["setting"])
