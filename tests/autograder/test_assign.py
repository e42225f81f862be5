"""``assign``: refusals with a clear message, and the happy path (student copy, zip)."""

from __future__ import annotations

import copy
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import nbformat
import pytest
from ag_helpers import IOU_ONLY, TOTAL, defining_cell

from autograder import assign as assign_mod
from autograder import notebook as nbmod
from autograder.assign import AssignError, assign_lab, check_master
from autograder.config import load_config
from autograder.labs import get_lab
from autograder.spec import LabSpec
from labkit.checking.program import build_program

LAB = get_lab("lab02")
WHEEL = "labkit-0.1.0-py3-none-any.whl"


@dataclass
class TmpLab(LabSpec):
    """lab02 with its master notebook somewhere else."""

    master_file: Path | None = None

    @property
    def master_path(self) -> Path:
        return self.master_file


@pytest.fixture(scope="module")
def master():
    return nbmod.read_notebook(LAB.master_path)


def tmp_lab(tmp_path: Path, nb) -> TmpLab:
    path = tmp_path / "labs" / LAB.slug / LAB.notebook_name
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    return TmpLab(**{f.name: getattr(LAB, f.name) for f in fields(LabSpec)}, master_file=path)


def dist_with_wheel(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / WHEEL).write_bytes(b"placeholder wheel: assign reuses it instead of building one")
    return dist


def edit(master, name: str, fn) -> nbformat.NotebookNode:
    nb = copy.deepcopy(master)
    cell = nb.cells[defining_cell(nb, name)]
    cell.source = fn(cell.source)
    return nb


def test_unbalanced_marker(master, tmp_path):
    nb = edit(master, "mean_iou", lambda s: s.replace("    # END SOLUTION\n", "").replace(
        "    # END SOLUTION", ""))
    cell = defining_cell(master, "mean_iou")
    with pytest.raises(AssignError,
                       match=rf"cell {cell} line 3: '# BEGIN SOLUTION' is never closed"):
        assign_lab(tmp_lab(tmp_path, nb), dist_with_wheel(tmp_path), load_config())


def test_end_without_begin_and_nested(master):
    nb = edit(master, "mean_iou", lambda s: s.replace("    # BEGIN SOLUTION\n", ""))
    with pytest.raises(AssignError, match="'# END SOLUTION' without a matching"):
        check_master(LAB, nb)
    nb = edit(master, "mean_iou", lambda s: s.replace(
        "    confmat = confmat.double()", "    # BEGIN SOLUTION\n    confmat = confmat.double()"))
    with pytest.raises(AssignError, match="inside another solution region"):
        check_master(LAB, nb)


def test_stub_without_solution(master):
    nb = copy.deepcopy(master)
    nb.cells.append(nbformat.v4.new_code_cell(
        "def bonus(x):\n    # YOUR CODE HERE\n    raise NotImplementedError"))
    with pytest.raises(AssignError,
                       match=rf"cell {len(nb.cells) - 1} line 3 is a stub .* without a solution"):
        check_master(LAB, nb)


def test_exercise_without_solution_region(master):
    nb = edit(master, "mean_iou", lambda s: s.replace("    # BEGIN SOLUTION\n", "").replace(
        "    # END SOLUTION", ""))
    cell = defining_cell(master, "mean_iou")
    with pytest.raises(AssignError,
                       match=rf"exercise `mean_iou` \(cell {cell}\) has no solution region"):
        check_master(LAB, nb)
    nb = copy.deepcopy(master)
    del nb.cells[defining_cell(nb, "mean_iou")]
    with pytest.raises(AssignError, match="exercise `mean_iou` is not defined in any cell"):
        check_master(LAB, nb)


def test_solution_without_full_marks(master, tmp_path):
    # a non-deterministic solution cannot match its own references: every mean_iou check but
    # 2.4 (NaN + x is still NaN) are lost, the dataset-level mean_iou check (3.2) included
    nb = edit(master, "mean_iou", lambda s: s.replace(
        "    return per_class.float(), miou",
        "    return per_class.float(), miou + int.from_bytes(os.urandom(4), 'little')"))
    earned = TOTAL - sum(IOU_ONLY.values()) + IOU_ONLY["2.4"]
    with pytest.raises(AssignError,
                       match=rf"the solution copy earns {earned:g}/{TOTAL:g}, not full marks"):
        assign_lab(tmp_lab(tmp_path, nb), dist_with_wheel(tmp_path), load_config())


def test_student_copy_failing_otherwise(master, tmp_path):
    # the stub calls a helper that only the instructor cell defines: NameError, not
    # NotImplementedError, in the student copy
    nb = edit(master, "mean_iou", lambda s: s.replace(
        "    # BEGIN SOLUTION", "    confmat = _as_tensor(confmat)\n    # BEGIN SOLUTION"))
    helper = nbformat.v4.new_code_cell("def _as_tensor(x):\n    return torch.as_tensor(x)")
    helper.metadata["tags"] = ["instructor"]
    nb.cells.insert(defining_cell(nb, "mean_iou"), helper)
    with pytest.raises(AssignError, match="must fail every check with NotImplementedError only"):
        assign_lab(tmp_lab(tmp_path, nb), dist_with_wheel(tmp_path), load_config())


def test_solution_failing_on_a_check_input_is_refused(master, tmp_path, monkeypatch, capsys):
    # the solution reads a name that only an experiment defines: the grader never runs it
    nb = copy.deepcopy(master)
    nb.cells.insert(defining_cell(nb, "mean_iou"),
                    nbformat.v4.new_code_cell("for _ in range(1):\n    _EPS = 1e-12"))
    nb = edit(nb, "mean_iou", lambda s: s.replace(
        "    tp = confmat.diag()", "    tp = confmat.diag() + UNDEFINED_EPS"))
    lab = tmp_lab(tmp_path, nb)
    monkeypatch.setattr(assign_mod, "get_lab", lambda lab_id: lab)
    status = assign_mod.assign(["lab02"], dist_with_wheel(tmp_path), verify=True)
    err = capsys.readouterr().err
    assert status == 1
    assert "REFUSED lab02" in err and "solution failed on check input" in err


@pytest.fixture(scope="module")
def built(tmp_path_factory, master):
    tmp = tmp_path_factory.mktemp("assign")
    paths = assign_lab(LAB, dist_with_wheel(tmp), load_config(), verify=True)
    return paths


def test_happy_path_student_copy(built, master):
    student = nbformat.read(str(built["student"]), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    leaks = [t for t in nbmod.solution_texts(master) if len(t) >= 12 and t in text]
    assert not leaks, leaks
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    # badge then install cell first
    assert "colab.research.google.com/assets/colab-badge.svg" in student.cells[0].source
    assert student.cells[1].metadata["tags"] == ["labkit-install"]
    assert "%pip install" in student.cells[1].source and "import labkit" in student.cells[1].source
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    # every exercise is stubbed, and the stubs raise NotImplementedError
    prog = build_program(student)
    ns: dict = {}
    for st in prog.program_for("mean_iou", []) + prog.program_for("confusion_matrix", []):
        exec(compile(st.padded(), "<student>", "exec"), ns)  # trusted (our own copy)
    with pytest.raises(NotImplementedError):
        ns["confusion_matrix"](None, None, 3)
    with pytest.raises(NotImplementedError):
        ns["mean_iou"](None)
    assert not any("instructor" in c.metadata.get("tags", []) for c in student.cells)
    answers = [c for c in student.cells if "answer" in c.metadata.get("tags", [])]
    assert answers and all(c.source == nbmod.ANSWER_PROMPT for c in answers)


def test_happy_path_solution_copy(built):
    solution = nbformat.read(str(built["solution"]), as_version=4)
    text = "\n".join(c.source for c in solution.cells)
    assert "torch.bincount" in text and "BEGIN SOLUTION" not in text
    assert all(not c.get("outputs") for c in solution.cells if c.cell_type == "code")


def test_happy_path_zip(built):
    with zipfile.ZipFile(built["zip"]) as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", WHEEL, "references.npz"} <= names
        setup = zf.read("setup.sh").decode()
        assert "--index-url https://download.pytorch.org/whl/cpu" in setup
        assert WHEEL in setup
        run = zf.read("run_autograder").decode()
        assert "grade lab02 /autograder/submission" in run
        assert "--out /autograder/results/results.json" in run
        assert zf.read("references.npz") == built["references"].read_bytes()
    assert (built["references"].stat().st_mode & 0o777) == 0o600


def test_expected_outputs_of_the_public_checks(tmp_path, monkeypatch):
    """labkit ships the solution's outputs of the public checks: assign refuses when they are
    missing or no longer the solution's, and --update-expected writes exactly those calls."""
    from labkit.checking import kernel
    from labkit.checking.spec import load_results, save_results

    monkeypatch.setattr(kernel, "EXPECTED", tmp_path / "expected")
    dist = dist_with_wheel(tmp_path)
    with pytest.raises(AssignError, match=r"(?s)lab02.npz is missing.*--update-expected"):
        assign_lab(LAB, dist, load_config(), verify=False)
    assign_lab(LAB, dist, load_config(), verify=False, update_expected=True)
    path = tmp_path / "expected" / "lab02.npz"
    written, _ = load_results(path)
    public = {call.id for c in LAB.public.checks for call in c.calls}
    hidden_only = {call.id for c in LAB.checks if c.hidden for call in c.calls} - public
    assert set(written) == public and hidden_only and not hidden_only & set(written)
    assign_lab(LAB, dist, load_config(), verify=False)  # now current: accepted
    iou = next(call.id for c in LAB.public.checks if c.number == "2.1" for call in c.calls)
    written[iou].values["out.1"] += 0.25  # a stale expected mIoU
    save_results(written, path)
    with pytest.raises(AssignError, match=r"check 2.1 .*: mIoU: got 0.916667, expected 0.666667"):
        assign_lab(LAB, dist, load_config(), verify=False)
