"""The "before you submit" cell (labkit/checking/submit.py): it rebuilds what the autograder
runs of the notebook, in a fresh process, and runs the public checks on it.

On lab02's student and solution copies as `assign` builds them (their last cell is that cell);
the notebook comes from a path, a stand-in for Colab's ``get_ipynb`` request, a file Jupyter
names, or the kernel's input history.
"""

from __future__ import annotations

import copy
import sys
import types

import nbformat
import pytest

from labkit.checking import submit

LAB = "lab02"


def _run(capsys, *args, **kwargs) -> tuple[int, str]:
    rc = submit.before_submit(*args, lab=LAB, **kwargs)
    return rc, capsys.readouterr().out


def _total(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("Public score:"))


def test_student_and_solution_copies_end_with_the_cell(assigned):
    for kind in ("student", "solution"):
        nb = nbformat.read(str(assigned(LAB)[kind]), as_version=4)
        assert nb.cells[-1].source == f'lk.before_submit(lab="{LAB}")'
        assert "Before you submit" in nb.cells[-2].source


def test_a_correct_notebook_shows_the_full_public_score(assigned, capsys):
    rc, out = _run(capsys, assigned(LAB)["solution"])
    assert rc == 0, out
    assert _total(out) == "Public score: 17/17.", out
    assert "FAIL" not in out
    assert "Statements the grader did not run" in out  # the experiments and plots


def test_the_untouched_stub_scores_zero_and_says_not_implemented(assigned, capsys):
    rc, out = _run(capsys, assigned(LAB)["student"])
    assert rc == 1 and _total(out) == "Public score: 0/17.", out
    assert "`dice_loss` is not implemented yet (NotImplementedError)" in out


def test_a_name_the_grader_would_lack_is_named(assigned, capsys, tmp_path):
    """A module-level name bound only through exec() exists in the kernel, not for the grader:
    the cell names it, and the exercise that uses it fails its public checks there."""
    nb = nbformat.read(str(assigned(LAB)["solution"]), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "def dice_loss(" in c.source)
    nb.cells[at].source = nb.cells[at].source.replace("dice = (2 * inter + 1.0)",
                                                      "dice = (2 * inter + SMOOTH)")
    nb.cells.insert(at, nbformat.v4.new_code_cell('exec("SMOOTH = 1.0")'))
    path = tmp_path / "lab02_segmentation.ipynb"
    nbformat.write(nb, str(path))
    rc, out = _run(capsys, path)
    assert "`dice_loss` uses SMOOTH, which no top-level statement of the notebook defines" in out
    assert "NameError" in out and "SMOOTH" in out
    assert rc == 1 and _total(out) == "Public score: 14/17.", out


def test_a_failing_statement_an_exercise_needs_is_reported(assigned, capsys, tmp_path):
    nb = nbformat.read(str(assigned(LAB)["solution"]), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "def mean_iou(" in c.source)
    nb.cells.insert(at, nbformat.v4.new_code_cell(
        'EPS = float(open("/no/such/file.txt").read())  # data only the student has'))
    nb.cells[at + 1].source = nb.cells[at + 1].source.replace("confmat = confmat.double()",
                                                              "confmat = confmat.double() + EPS * 0")
    path = tmp_path / "lab02_segmentation.ipynb"
    nbformat.write(nb, str(path))
    rc, out = _run(capsys, path)
    assert "`EPS = float(open(\"/no/such/file.txt\").read())" in out and "FileNotFoundError" in out
    assert rc == 1 and _total(out) == "Public score: 13/17.", out


def test_colab_live_notebook_through_get_ipynb(assigned, capsys, monkeypatch):
    """In Colab the notebook comes from the frontend (a stand-in for its message API here)."""
    live = nbformat.read(str(assigned(LAB)["solution"]), as_version=4)
    asked = []

    def blocking_request(kind, request="", timeout_sec=None):
        asked.append(kind)
        return {"ipynb": copy.deepcopy(dict(live))}

    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    message = types.ModuleType("google.colab._message")
    message.blocking_request = blocking_request
    colab._message = message
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    nb, where = submit.current_notebook()
    assert asked == ["get_ipynb"] and where == "the notebook open in Colab"
    assert len(nb.cells) == len(live.cells)
    rc, out = _run(capsys)
    assert rc == 0 and _total(out) == "Public score: 17/17.", out
    assert "the notebook open in Colab" in out


def test_notebook_file_named_by_jupyter(assigned, monkeypatch):
    path = assigned(LAB)["student"]
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.setattr(submit, "_colab_notebook", lambda: None)
    nb, where = submit.current_notebook()
    assert str(path) in where and "as last saved" in where
    assert nb.cells[-1].source.startswith("lk.before_submit(")


def test_kernel_input_history_when_there_is_no_file(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(submit, "_colab_notebook", lambda: None)
    history = ["", "import torch", "def mean_iou(confmat):\n    return confmat", "lk.before_submit()"]
    monkeypatch.setattr(submit, "_user_ns", lambda: {"In": history})
    nb, where = submit.current_notebook()
    assert [c.source for c in nb.cells] == history[1:3]  # not the cell that asked
    assert "input history" in where


def test_no_notebook_at_all_says_what_to_pass(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(submit, "_colab_notebook", lambda: None)
    monkeypatch.setattr(submit, "_user_ns", lambda: {})
    with pytest.raises(FileNotFoundError, match="pass its path"):
        submit.current_notebook()
