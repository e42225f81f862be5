"""Master-notebook format: solution markers, student/solution copies, and the graded program.

Format (documented for instructors in README.md and the book's instructor guide):

* code between a ``# BEGIN SOLUTION`` line and a ``# END SOLUTION`` line is the solution; the
  student copy gets ``# YOUR CODE HERE`` + ``raise NotImplementedError`` at the same indentation;
* a single line ending with ``# SOLUTION`` is removed from the student copy;
* a markdown cell tagged ``answer`` holds a model answer to a free-text question; the student
  copy gets an answer prompt instead (the tag stays, so graders can find the answers);
* a cell tagged ``instructor`` vanishes from the student copy.

Graded program: what the autograder executes from a submission is only the *definitions*:
imports, function and class definitions and constant assignments, cell by cell, with magics and
shell lines dropped. Calls, loops and any other top-level statement are skipped, so a training
loop in the notebook never runs during grading.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, field

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


# ----------------------------------------------------------------------------- graded program

_MAGIC_RE = re.compile(r"^(\s*)[!%]")
# cell magics whose body is ordinary Python (Colab users put %%capture on top of a cell)
_PYTHON_CELL_MAGICS = ("capture", "time", "timeit")


def _drop_magics(source: str) -> str:
    """Cell magics drop the whole cell (but ``%%capture``/``%%time``/``%%timeit`` keep their
    Python body); line magics and shell lines become ``pass``. Valid Python is left alone."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        if first[2:].split(" ")[0].strip() not in _PYTHON_CELL_MAGICS:
            return ""
        source = body
    out = []
    for line in source.splitlines():
        m = _MAGIC_RE.match(line)
        out.append(f"{m.group(1)}pass" if m else line)
    return "\n".join(out)


_CONST_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.Load, ast.Tuple, ast.List, ast.Set, ast.Dict,
    ast.UnaryOp, ast.BinOp, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Pow, ast.Mod, ast.Not,
)


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_constant_expr(node: ast.AST | None) -> bool:
    return node is not None and all(isinstance(n, _CONST_NODES) for n in ast.walk(node))


def _keep(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, *_DEFS)):
        return True
    if isinstance(stmt, ast.Assign):
        return _is_constant_expr(stmt.value) and all(isinstance(t, ast.Name) for t in stmt.targets)
    if isinstance(stmt, ast.AnnAssign):
        return isinstance(stmt.target, ast.Name) and (
            stmt.value is None or _is_constant_expr(stmt.value))
    if isinstance(stmt, ast.Try):
        # `try: import x / except ImportError: ...` (the Colab install cell)
        simple = (ast.Import, ast.ImportFrom, ast.Pass)
        return all(isinstance(s, simple) for s in stmt.body) and all(
            isinstance(s, simple) for h in stmt.handlers for s in h.body
        ) and not stmt.orelse and not stmt.finalbody
    return False


@dataclass
class Program:
    """The graded part of a notebook: filtered cell sources plus notes on what was skipped."""

    cells: list[tuple[int, str]] = field(default_factory=list)  # (cell index, source)
    notes: list[str] = field(default_factory=list)

    def defined_names(self) -> set[str]:
        names: set[str] = set()
        for _, src in self.cells:
            for stmt in ast.parse(src).body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(stmt.name)
        return names

    def function_node(self, name: str) -> ast.FunctionDef | ast.ClassDef | None:
        """The last top-level definition of ``name`` (what the student's namespace will hold)."""
        found = None
        for _, src in self.cells:
            for stmt in ast.parse(src).body:
                if isinstance(stmt, _DEFS) and stmt.name == name:
                    found = stmt
        return found

    def to_json(self) -> str:
        return json.dumps({"cells": [[i, s] for i, s in self.cells]})


def extract_program(nb: nbformat.NotebookNode) -> Program:
    """Definitions-only program of a notebook (see module docstring); a syntax error skips
    one cell."""
    prog = Program()
    for ci, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        src = _drop_magics(cell.source)
        if not src.strip():
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError as exc:
            prog.notes.append(
                f"cell {ci}: syntax error at line {exc.lineno}: {exc.msg}; this cell was skipped."
            )
            continue
        kept = [s for s in tree.body if _keep(s)]
        if not kept:
            continue
        module = ast.Module(body=kept, type_ignores=[])
        prog.cells.append((ci, ast.unparse(module)))
    return prog
