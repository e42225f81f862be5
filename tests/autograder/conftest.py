"""Fixtures of the autograder tests: references built once, hostile notebooks, a checked grade().

Every hostile test goes through the real code path: ``autograder.grade.grade`` writes
``results.json`` and the fixture validates that file (strict JSON, every check listed, scores in
range) before the test looks at scores and messages. Student code runs in the real sandbox
(as ``nobody`` when the tests run as root), with short time limits set through the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from ag_helpers import (
    Graded,
    defining_cell,
    descendants_of_me,
    sandbox_orphans,
    validate_results_file,
)

from autograder import notebook as nbmod
from autograder.grade import compute_references, grade, save_references
from autograder.labs import get_lab
from autograder.sandbox import Call, Job, run_job, sandbox_user

LAB = get_lab("lab02")


@pytest.fixture(autouse=True)
def short_limits(monkeypatch):
    """Short wall-clock budgets so a timeout test costs seconds, not minutes."""
    monkeypatch.setenv("AUTOGRADER_CALL_S", "3")
    monkeypatch.setenv("AUTOGRADER_SETUP_S", "20")


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """After each test: nothing left running below this process, and no sandbox-user process
    orphaned to init (escaped) since the test started."""
    orphans_before = sandbox_orphans()
    yield
    left, escaped = [], set()
    for _ in range(20):  # killed processes may take a moment to disappear
        left, escaped = descendants_of_me(), sandbox_orphans() - orphans_before
        if not left and not escaped:
            break
        time.sleep(0.1)
    for pid, _ in left:  # ours: clean up, by pid, so one failure does not spoil the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"processes left running after grading: {left}"
    assert not escaped, f"sandbox processes escaped to init: {sorted(escaped)}"


@pytest.fixture(scope="session")
def world_dir():
    """A folder every user can traverse (mode 755): a refusal to read a file in it proves that
    the file's own permissions, not a parent folder, protect it."""
    path = Path(tempfile.mkdtemp(prefix="ag-tests-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def references(world_dir) -> Path:
    """references.npz built once from the master notebook (mode 600, in 755 folders)."""
    path = world_dir / "autograder" / LAB.id / "references.npz"
    save_references(compute_references(LAB), path)
    for folder in (path.parent, path.parent.parent):
        os.chmod(folder, 0o755)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


@pytest.fixture(scope="session")
def isolation(tmp_path_factory) -> list[str]:
    """The sandbox layers this machine provides ('netns', 'hidden-paths', 'private-shm',
    'unprivileged-user'), read from the isolation the jail reports."""
    probes = tmp_path_factory.mktemp("iso") / "probes.py"
    probes.write_text("def noop(ns, inputs):\n    return {}\n")
    report = run_job(Job("noop", [], [Call("noop", "noop", exercise="noop")]), probes,
                     hide=[str(probes.parent)])
    assert report.results["noop"].ok, report.results["noop"].error
    layers = []
    if sandbox_user() is not None:
        layers += ["netns", "hidden-paths", "private-shm", "unprivileged-user"]
    elif report.isolation.startswith("bubblewrap"):
        layers += ["netns", "hidden-paths", "private-shm"]
    return layers


@pytest.fixture(scope="session")
def solution_nb() -> nbformat.NotebookNode:
    return nbmod.make_solution(nbmod.read_notebook(LAB.master_path))


@pytest.fixture(scope="session")
def student_nb() -> nbformat.NotebookNode:
    return nbmod.make_student(nbmod.read_notebook(LAB.master_path))


@pytest.fixture(scope="session")
def solution_source(solution_nb) -> dict[str, str]:
    """Exercise name -> source of the solution cell defining it (to build variants)."""
    return {n: solution_nb.cells[defining_cell(solution_nb, n)].source
            for n in ("confusion_matrix", "mean_iou")}


@pytest.fixture
def make_submission(solution_nb):
    """Build a hostile notebook from the solution copy, write it, return its path.

    ``replace``: {function name: new source for the cell that defines it};
    ``extra``: sources of code cells appended at the end; ``extra_first``: inserted at the top;
    ``name``/``folder``: where it is written (default ``tmp_path/lab02_segmentation.ipynb``);
    ``base``: another notebook to start from (e.g. the student copy).
    """

    def make(tmp_path: Path, replace: dict[str, str] | None = None, extra=(), extra_first=(),
             name: str = LAB.notebook_name, folder: Path | None = None, base=None) -> Path:
        nb = nbformat.from_dict(json.loads(json.dumps(base or solution_nb)))
        for fname, source in (replace or {}).items():
            nb.cells[defining_cell(nb, fname)].source = source
        nb.cells = ([nbformat.v4.new_code_cell(s) for s in extra_first] + nb.cells
                    + [nbformat.v4.new_code_cell(s) for s in extra])
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        return path

    return make


@pytest.fixture
def grade_nb(references, tmp_path):
    """grade_nb(path, out=None) -> validated results, as written to results.json by grade()."""

    def run(path: Path, out: Path | None = None) -> Graded:
        out = out or tmp_path / "results" / "results.json"
        returned = grade(LAB, path, out, references_file=references, quiet=True)
        data = validate_results_file(out)
        assert data["score"] == returned["score"]
        return Graded(data)

    return run
