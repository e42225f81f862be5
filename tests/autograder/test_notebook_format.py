"""Unit tests of the master-notebook format (autograder/notebook.py)."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder import notebook as nbmod

MASTER_CELLS = [
    ("markdown", "# Title", []),
    ("code", "import torch\nSMOKE = True\nprint('hello')", []),
    ("code",
     "def f(x):\n"
     "    \"\"\"Doc.\"\"\"\n"
     "    y = x + 1\n"
     "    # BEGIN SOLUTION\n"
     "    z = y * 2\n"
     "    return z\n"
     "    # END SOLUTION\n"
     "\n"
     "class G:\n"
     "    def go(self):\n"
     "        # BEGIN SOLUTION\n"
     "        return 42\n"
     "        # END SOLUTION\n"
     "SCALE = 3.0  # SOLUTION", []),
    ("markdown", "The model answer: because of reasons.", ["answer"]),
    ("code", "SECRET_CHECK = 'instructor only'", ["instructor"]),
]


def master_nb() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, src, tags in MASTER_CELLS:
        cell = (nbformat.v4.new_code_cell(src) if kind == "code"
                else nbformat.v4.new_markdown_cell(src))
        if tags:
            cell.metadata["tags"] = tags
        if kind == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="old output")]
            cell.execution_count = 3
        nb.cells.append(cell)
    return nb


def test_make_student():
    nb = nbmod.make_student(master_nb())
    assert len(nb.cells) == 4  # instructor cell gone
    src = nb.cells[2].source
    assert "z = y * 2" not in src and "return 42" not in src and "SCALE" not in src
    assert "    y = x + 1\n    # YOUR CODE HERE\n    raise NotImplementedError" in src
    assert "        # YOUR CODE HERE\n        raise NotImplementedError" in src
    assert "BEGIN SOLUTION" not in src and "END SOLUTION" not in src
    assert nb.cells[3].source == nbmod.ANSWER_PROMPT and nb.cells[3].metadata["tags"] == ["answer"]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    ns: dict = {}
    exec(src, ns)  # the stubs raise NotImplementedError
    with pytest.raises(NotImplementedError):
        ns["f"](1)
    with pytest.raises(NotImplementedError):
        ns["G"]().go()
    assert "because of reasons" in "\n".join(nbmod.solution_texts(master_nb()))


def test_make_solution():
    master = master_nb()
    nb = nbmod.make_solution(master)
    assert len(nb.cells) == 5
    src = nb.cells[2].source
    assert "BEGIN SOLUTION" not in src and "END SOLUTION" not in src and "# SOLUTION" not in src
    assert "SCALE = 3.0" in src and "return 42" in src
    ns: dict = {}
    exec(src, ns)
    assert ns["f"](1) == 4 and ns["G"]().go() == 42 and ns["SCALE"] == 3.0
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    assert master.cells[1].outputs, "make_solution must not change its argument"


def test_solution_texts():
    texts = nbmod.solution_texts(master_nb())
    for t in ("z = y * 2", "return z", "return 42", "SCALE = 3.0",
              "The model answer: because of reasons.", "SECRET_CHECK = 'instructor only'"):
        assert t in texts
    assert "y = x + 1" not in texts and "import torch" not in texts


@pytest.mark.parametrize("source, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1", "line 2: '# BEGIN SOLUTION' is never closed"),
    ("def f():\n    return 1\n    # END SOLUTION", "line 3: '# END SOLUTION' without a matching"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n# END SOLUTION",
     "inside another solution region"),
])
def test_bad_markers(source, message):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell(source)]
    with pytest.raises(nbmod.NotebookError, match=f"cell 1 .*{message}" if "line" not in message
                       else f"cell 1 {message}"):
        nbmod.make_student(nb)


def test_read_notebook_text():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    return 1")]
    v3 = nbformat.writes(nbformat.convert(nbformat.from_dict(json.loads(nbformat.writes(nb))), 3),
                         version=3)
    got, notes = nbmod.read_notebook_text(v3, name="sub.ipynb")
    assert got.nbformat == 4 and got.cells[0].source == "def f():\n    return 1"
    assert notes == ["sub.ipynb was saved in nbformat 3; it was upgraded to nbformat 4."]
    for text, message in [("{", "not valid JSON"), ("[1, 2]", "no 'nbformat' field"),
                          ('{"nbformat": 2}', "nbformat 2, which is too old"),
                          ('{"nbformat": "4"}', "nbformat '4', which is too old"),
                          ('{"nbformat": 4, "cells": 3}', "could not be read as a notebook")]:
        with pytest.raises(nbmod.NotebookError, match=message):
            nbmod.read_notebook_text(text, name="sub.ipynb")
