"""Master-notebook format: solution markers, student/solution copies, and the graded program.

Format (documented for instructors in README.md and the book's instructor guide):

* code between a ``# BEGIN SOLUTION`` line and a ``# END SOLUTION`` line is the solution; the
  student copy gets ``# YOUR CODE HERE`` + ``raise NotImplementedError`` at the same indentation;
* a single line ending with ``# SOLUTION`` is removed from the student copy;
* a markdown cell tagged ``answer`` holds a model answer to a free-text question; the student
  copy gets an answer prompt instead (the tag stays, so graders can find the answers);
* a cell tagged ``instructor`` vanishes from the student copy.

What the autograder runs from a submission (each exercise's statements, by dependency) is
decided in :mod:`labkit.checking.program`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

import nbformat

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
LINE_MARK = "# SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
ANSWER_TAG = "answer"
INSTRUCTOR_TAG = "instructor"
ANSWER_PROMPT = "**Your answer:** *(double-click this cell and write your answer here)*"

_BEGIN_RE = re.compile(r"^(\s*)#\s*BEGIN SOLUTION\s*$")
_END_RE = re.compile(r"^\s*#\s*END SOLUTION\s*$")
_LINE_RE = re.compile(r"\s*#\s*SOLUTION\s*$")


class NotebookError(ValueError):
    """A notebook that cannot be read or whose markers are malformed (message says where)."""


# ----------------------------------------------------------------------------- reading


def read_notebook_text(
    text: str, *, name: str = "notebook"
) -> tuple[nbformat.NotebookNode, list[str]]:
    """Parse notebook JSON (any nbformat >= 3, upgraded to v4); returns (notebook, notes)."""
    notes: list[str] = []
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotebookError(
            f"{name} is not a valid notebook: it is not valid JSON ({exc}). Download the notebook "
            "again from Colab with File > Download > Download .ipynb and resubmit it."
        ) from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise NotebookError(
            f"{name} is not a Jupyter notebook (no 'nbformat' field). Submit the .ipynb file "
            "downloaded from Colab (File > Download > Download .ipynb)."
        )
    version = raw.get("nbformat")
    if not isinstance(version, int) or version < 3:
        raise NotebookError(
            f"{name} uses nbformat {version!r}, which is too old to read. Open it in Jupyter or "
            "Colab, save it (this upgrades it to nbformat 4) and resubmit."
        )
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many types on malformed input
        raise NotebookError(f"{name} could not be read as a notebook: {exc}") from None
    if version < 4:
        notes.append(f"{name} was saved in nbformat {version}; it was upgraded to nbformat 4.")
    for cell in nb.cells:
        if cell.get("cell_type") not in {"code", "markdown", "raw"}:
            raise NotebookError(f"{name} has a cell of unknown type {cell.get('cell_type')!r}.")
        if not isinstance(cell.get("source", ""), str):
            raise NotebookError(f"{name} has a cell whose source is not text.")
    return nb, notes


def read_notebook(path) -> nbformat.NotebookNode:
    """Read a notebook file (v4), raising NotebookError with a clear message."""
    with open(path, encoding="utf-8") as fh:
        nb, _ = read_notebook_text(fh.read(), name=str(path))
    return nb


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


# ----------------------------------------------------------------------------- markers


@dataclass
class Region:
    """One solution region of a code cell: lines [start, end) of the cell, markers included."""

    cell: int
    start: int
    end: int
    indent: str


def solution_regions(nb: nbformat.NotebookNode) -> list[Region]:
    """All BEGIN/END SOLUTION regions; raises NotebookError on unbalanced or nested markers."""
    regions: list[Region] = []
    for ci, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        open_at: tuple[int, str] | None = None
        for li, line in enumerate(cell.source.splitlines()):
            begin = _BEGIN_RE.match(line)
            if begin:
                if open_at is not None:
                    raise NotebookError(
                        f"cell {ci} line {li + 1}: '{BEGIN}' inside another solution region "
                        f"(opened at line {open_at[0] + 1}); close it with '{END}' first."
                    )
                open_at = (li, begin.group(1))
            elif _END_RE.match(line):
                if open_at is None:
                    raise NotebookError(
                        f"cell {ci} line {li + 1}: '{END}' without a matching '{BEGIN}'."
                    )
                regions.append(Region(ci, open_at[0], li + 1, open_at[1]))
                open_at = None
        if open_at is not None:
            raise NotebookError(
                f"cell {ci} line {open_at[0] + 1}: '{BEGIN}' is never closed with '{END}' "
                "in the same cell."
            )
    return regions


def _strip_line_marker(line: str) -> str:
    return _LINE_RE.sub("", line)


def _student_source(source: str, regions: list[Region]) -> str:
    lines = source.splitlines()
    out: list[str] = []
    i = 0
    by_start = {r.start: r for r in regions}
    while i < len(lines):
        if i in by_start:
            r = by_start[i]
            out.extend(r.indent + s for s in STUB)
            i = r.end
            continue
        line = lines[i]
        if _LINE_RE.search(line) and not _BEGIN_RE.match(line) and not _END_RE.match(line):
            i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _solution_source(source: str) -> str:
    kept = [
        _strip_line_marker(line)
        for line in source.splitlines()
        if not _BEGIN_RE.match(line) and not _END_RE.match(line)
    ]
    return "\n".join(kept)


def _clear_outputs(cell) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    cell.metadata.pop("execution", None)


def make_student(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Student copy: solutions stubbed, answers prompted, instructor cells removed, no outputs."""
    regions = solution_regions(master)
    nb = copy.deepcopy(master)
    cells = []
    for ci, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if INSTRUCTOR_TAG in tags:
            continue
        if ANSWER_TAG in tags and cell.cell_type == "markdown":
            cell.source = ANSWER_PROMPT
        elif cell.cell_type == "code":
            cell.source = _student_source(cell.source, [r for r in regions if r.cell == ci])
        _clear_outputs(cell)
        cells.append(cell)
    nb.cells = cells
    return nb


def make_solution(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Solution copy: markers removed, everything else kept, no outputs."""
    solution_regions(master)  # validates markers
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = _solution_source(cell.source)
        _clear_outputs(cell)
    return nb


def solution_texts(nb: nbformat.NotebookNode) -> list[str]:
    """Text fragments that exist only in a master's solution regions (for leak scans)."""
    texts: list[str] = []
    regions = solution_regions(nb)
    for r in regions:
        lines = nb.cells[r.cell].source.splitlines()[r.start + 1 : r.end - 1]
        texts.extend(line.strip() for line in lines if line.strip())
    for cell in nb.cells:
        tags = _tags(cell)
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                if _LINE_RE.search(line) and not _BEGIN_RE.match(line) and not _END_RE.match(line):
                    texts.append(_strip_line_marker(line).strip())
        if ANSWER_TAG in tags or INSTRUCTOR_TAG in tags:
            texts.extend(line.strip() for line in cell.source.splitlines() if line.strip())
    return [t for t in texts if t]
