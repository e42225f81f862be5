"""Helpers of the style-variants suites (tests/labs/test_labNN_variants.py).

A variant notebook is the lab's solution copy with the cells defining some exercises replaced
by other code (a student's style, or a typical mistake). It is graded through the real code
path (jailed children, references built once per lab and test session), and the scores are
summed per exercise, so a test can say "every exercise full marks" or "only this exercise
loses points".
"""

from __future__ import annotations

import ast
import copy
from functools import cache
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.grade import compute_references, grade_submission
from autograder.labs import get_lab
from labkit.checking.program import drop_magics


@cache
def solution_notebook(lab_id: str) -> nbformat.NotebookNode:
    return nbmod.make_solution(nbmod.read_notebook(get_lab(lab_id).master_path))


@cache
def references(lab_id: str):
    return compute_references(get_lab(lab_id))


def defining_cell(nb: nbformat.NotebookNode, name: str) -> int:
    """Index of the last code cell that defines top-level function/class ``name``."""
    found = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(drop_magics(cell.source))
        except SyntaxError:
            continue
        if any(getattr(s, "name", None) == name for s in tree.body):
            found = i
    if found is None:
        raise KeyError(name)
    return found


def variant_notebook(lab_id: str, replace: dict[str, str] | None = None,
                     before: dict[str, list[str]] | None = None,
                     extra_cells: list[str] | tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """The solution copy with the cell defining each exercise in ``replace`` replaced by the
    given source; ``before[exercise]``: code cells inserted just before that exercise's cell;
    ``extra_cells``: code cells appended at the end."""
    nb = copy.deepcopy(solution_notebook(lab_id))
    for name, source in (replace or {}).items():
        nb.cells[defining_cell(nb, name)].source = source
    for name, sources in (before or {}).items():
        at = defining_cell(nb, name)
        nb.cells[at:at] = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in extra_cells]
    return nb


def grade_variant(lab_id: str, nb: nbformat.NotebookNode, tmp_path: Path) -> dict:
    """Grade ``nb`` as a submission (written under ``tmp_path``); returns results.json's dict."""
    lab = get_lab(lab_id)
    folder = Path(tmp_path) / f"variant-{len(list(Path(tmp_path).glob('variant-*')))}"
    folder.mkdir(parents=True)
    path = folder / lab.notebook_name
    nbformat.write(nb, str(path))
    return grade_submission(lab, path, references=references(lab_id))


def exercise_scores(lab_id: str, results: dict) -> dict[str, tuple[float, float]]:
    """``{exercise: (score, max)}`` summed over the checks of each exercise."""
    lab = get_lab(lab_id)
    owner = {c.number: c.exercise for c in lab.checks}
    out = {ex.name: [0.0, 0.0] for ex in lab.exercises}
    for t in results["tests"]:
        ex = owner.get(str(t.get("number", "")))
        assert ex is not None, f"check {t.get('number')} reads no exercise"
        out[ex][0] += t["score"]
        out[ex][1] += t["max_score"]
    return {k: (round(a, 6), round(b, 6)) for k, (a, b) in out.items()}


def failing_detail(results: dict) -> str:
    """The checks that lost points, with their messages (for assertion messages)."""
    return "\n".join(f"{t.get('number')} {t['score']}/{t['max_score']}: {t.get('output', '')}"
                     for t in results["tests"] if t["score"] < t["max_score"])
