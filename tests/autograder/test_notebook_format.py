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


def program_of(*sources: str) -> nbmod.Program:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nbmod.extract_program(nb)


def test_extract_program_keeps_definitions_only():
    prog = program_of(
        "import os\nfrom math import pi\nN = 3\nNAMES = ('a', 'b')\nNEG = -1\nBIG = 2 ** 8\n"
        "CFG = {'lr': 1e-3, 'steps': [1, 2]}\nW: float = 0.5\nALIAS = os.sep\n"
        "x = f()\nt = torch.zeros(3)\na, b = 1, 2\nobj.attr = 1\nL = [i for i in range(3)]\n"
        "print('hi')\nfor i in range(3):\n    pass\nwhile True:\n    pass\n"
        "if N:\n    import sys\nwith open('f') as fh:\n    pass\n"
        "def g():\n    return N\nclass C:\n    pass\nasync def h():\n    pass",
        "try:\n    import labkit\nexcept ImportError:\n    pass",
        "try:\n    import labkit\nexcept ImportError:\n    run()",
    )
    assert [i for i, _ in prog.cells] == [0, 1]
    src = prog.cells[0][1]
    for kept in ("import os", "from math import pi", "N = 3", "NAMES = ('a', 'b')", "NEG = -1",
                 "BIG = 2 ** 8", "CFG = {", "W: float = 0.5", "ALIAS = os.sep", "def g()",
                 "class C", "async def h()"):
        assert kept in src, kept
    for dropped in ("f()", "torch.zeros", "a, b", "obj.attr", "range", "print", "while",
                    "import sys", "open("):
        assert dropped not in src, dropped
    assert "import labkit" in prog.cells[1][1]
    assert prog.defined_names() == {"g", "C", "h"}
    assert json.loads(prog.to_json()) == {"cells": [[i, s] for i, s in prog.cells]}


def test_extract_program_magics():
    prog = program_of(
        "!pip install foo\n%matplotlib inline\ndef a():\n    %time x = 1\n    return 1",
        "%%bash\necho hi\ndef b():\n    pass",
        "%%capture\n!pip install bar\ndef c():\n    return 3",
        "%%time\ndef d():\n    return 4",
        "%%writefile x.py\ndef e():\n    pass",
        "%load_ext autoreload\n%autoreload 2\ndef f():\n    pass",
    )
    assert prog.defined_names() == {"a", "c", "d", "f"}
    ns: dict = {}
    for _, src in prog.cells:
        assert "%" not in src and "!" not in src
        exec(src, ns)
    assert ns["a"]() == 1 and ns["c"]() == 3 and ns["d"]() == 4


def test_extract_program_valid_python_is_not_touched():
    # a continuation line starting with '%' is Python (modulo), not a magic
    prog = program_of("def m(a, b):\n    return (a\n            % b)")
    ns: dict = {}
    exec(prog.cells[0][1], ns)
    assert ns["m"](7, 4) == 3


def test_extract_program_syntax_error_skips_one_cell():
    prog = program_of("def ok():\n    return 1", "def broken(:\n    pass", "def later():\n    pass")
    assert prog.defined_names() == {"ok", "later"}
    assert len(prog.notes) == 1
    assert prog.notes[0].startswith("cell 1: syntax error at line 1")
    assert prog.notes[0].endswith("this cell was skipped.")


def test_function_node_is_the_last_definition():
    prog = program_of("def f(a):\n    pass", "def f(a, b):\n    pass")
    node = prog.function_node("f")
    assert [a.arg for a in node.args.args] == ["a", "b"]
    assert prog.function_node("missing") is None


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
