"""Every lab with checks builds: solution copy earns full marks, student copy earns zero with
NotImplementedError only, the student copy contains no solution text, and the zip is complete."""

import zipfile

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.assign import assign_lab
from autograder.config import load_config
from autograder.labs import available_labs, get_lab


@pytest.mark.parametrize("lab_id", available_labs())
def test_lab_assigns_and_verifies(lab_id, tmp_path):
    lab = get_lab(lab_id)
    (tmp_path / "labkit-0.1.0-py3-none-any.whl").write_bytes(b"placeholder wheel")
    paths = assign_lab(lab, tmp_path, load_config(), verify=True)  # raises AssignError otherwise

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
