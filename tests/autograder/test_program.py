"""The graded program (labkit/checking/program.py): which statements each exercise needs.

Pure analysis, no grading: every case is a small notebook and the exact statements chosen.
"""

import time

import nbformat
import pytest

from labkit.checking.program import build_program, drop_magics

EXERCISES = ["mean_iou", "confusion_matrix"]


def prog(*cells: str):
    return build_program(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# title")]
        + [nbformat.v4.new_code_cell(c) for c in cells]))


def chosen(p, exercise="mean_iou"):
    return [st.source.splitlines()[0] for st in p.program_for(exercise, EXERCISES)]


def test_constants_built_by_calls_comprehensions_and_lambdas_are_kept():
    p = prog(
        "import numpy as np\nimport torch\nfrom google.colab import drive",
        "EPS = np.finfo(float).eps\nACTS = {k: v for k, v in [('relu', 1)]}\n"
        "FUSE = {'mean': lambda a: a.mean(1)}\nLUMA = torch.tensor([0.299, 0.587, 0.114])",
        "ACTS['gelu'] = 2\nfor epoch in range(100):\n    train()",
        "def helper(x):\n    return x + EPS + LUMA.sum()\n\n"
        "def mean_iou(confmat):\n    return helper(confmat) * ACTS['relu'], FUSE",
    )
    assert chosen(p) == [
        "import numpy as np", "import torch", "EPS = np.finfo(float).eps",
        "ACTS = {k: v for k, v in [('relu', 1)]}", "FUSE = {'mean': lambda a: a.mean(1)}",
        "LUMA = torch.tensor([0.299, 0.587, 0.114])", "ACTS['gelu'] = 2", "def helper(x):",
        "def mean_iou(confmat):"]
    # the training loop and the unused Colab import are skipped
    assert not any("train" in s or "colab" in s for s in chosen(p))


def test_with_try_if_and_augmented_assignment_bind_names():
    p = prog(
        "import math",
        "try:\n    SCALE = math.sqrt(2)\nexcept Exception:\n    SCALE = 1.0",
        "with open('/dev/null') as fh:\n    OFFSET = 3",
        "if True:\n    OFFSET += 1",
        "def mean_iou(confmat):\n    return confmat * SCALE + OFFSET",
    )
    assert chosen(p) == ["import math", "try:", "with open('/dev/null') as fh:", "if True:",
                         "def mean_iou(confmat):"]


def test_other_exercises_are_never_pulled_in():
    p = prog(
        "def confusion_matrix(preds, targets, num_classes):\n    return 1",
        "def mean_iou(confmat):\n    return confusion_matrix(confmat, confmat, 3)",
    )
    assert chosen(p) == ["def mean_iou(confmat):"]


def test_a_later_cell_reusing_a_helper_name_does_not_count():
    p = prog(
        "def _fused(a):\n    return a\n\ndef mean_iou(confmat):\n    return _fused(confmat)",
        "_fused = [mean_iou(1)]",
    )
    assert chosen(p) == ["def _fused(a):", "def mean_iou(confmat):"]


def test_module_level_reads_use_the_binding_before_the_statement():
    p = prog("W = 2", "X = W * 3", "W = train()", "def mean_iou(confmat):\n    return X")
    assert chosen(p) == ["W = 2", "X = W * 3", "def mean_iou(confmat):"]


def test_local_variables_do_not_pull_globals_of_the_same_name():
    p = prog("model = fit(build())",
             "def mean_iou(confmat):\n    model = confmat\n    return [model for _ in range(2)]")
    assert chosen(p) == ["def mean_iou(confmat):"]


def test_where_names_the_code_cell_as_the_student_sees_it():
    p = prog("import torch", "x = 1\n\ndef mean_iou(confmat):\n    return confmat")
    st = p.binding("mean_iou")
    assert st.cell == 2  # the markdown cell is not counted
    assert st.where == "code cell 2 (starts with `x = 1`), line 3 `def mean_iou(confmat):`"
    assert p.binding("x").where == "code cell 2 (starts with `x = 1`)"


@pytest.mark.parametrize("source, kind", [
    ("x = 1\x00", "ValueError"),
    ("y = " + "-" * 10000 + "1", None),
    ("s = '\ud800'\nz = 1", None),
])
def test_odd_cells_skip_only_themselves(source, kind):
    p = prog("import torch", source, "def mean_iou(confmat):\n    return confmat")
    assert chosen(p) == ["import torch", "def mean_iou(confmat):"] or chosen(p) == [
        "def mean_iou(confmat):"]
    assert p.binding("mean_iou") is not None
    if kind:
        assert any(kind in n and "code cell 2" in n for n in p.notes), p.notes


def test_long_sums_and_many_constants_are_analysed():
    p = prog("Z = " + " + ".join(["1"] * 2000),
             "\n".join(f"C{i} = {i}" for i in range(2500)),
             "def mean_iou(confmat):\n    return confmat + Z + C2499")
    assert chosen(p) == ["Z = " + " + ".join(["1"] * 2000), "C2499 = 2499",
                         "def mean_iou(confmat):"]


def test_analysis_is_linear_in_the_notebook():
    """4,000 cells with 25,000 distinct names: seconds, not minutes."""
    cells = [";".join(f"n{c}_{k} = {k}" for k in range(6)) + f"\ndef f{c}(x):\n    return x"
             for c in range(4000)]
    cells.append("def mean_iou(confmat):\n    return f3999(confmat) + n3999_5")
    start = time.monotonic()
    p = prog(*cells)
    assert len(chosen(p)) == 3
    assert time.monotonic() - start < 60  # generous: a quadratic analysis takes > 15 minutes


def test_unbound_names_are_reported():
    p = prog("def mean_iou(confmat):\n    return confmat + GHOST + len(confmat)")
    assert p.unbound(p.needed(["mean_iou"])) == {"GHOST"}


def test_magics():
    assert drop_magics("%matplotlib inline\nx = 1") == "pass\nx = 1"
    assert drop_magics("%%bash\nls") == ""
    assert drop_magics("%%capture\nx = 1") == "x = 1"
    assert drop_magics("x = 1  # %not a magic") == "x = 1  # %not a magic"


def test_magics_and_shell_lines_in_cells():
    p = prog(
        "!pip install foo\n%matplotlib inline\ndef a():\n    %time x = 1\n    return 1",
        "%%bash\necho hi\ndef b():\n    pass",
        "%%capture\n!pip install bar\ndef c():\n    return 3",
        "%%time\ndef d():\n    return 4",
        "%%writefile x.py\ndef e():\n    pass",
        "%load_ext autoreload\n%autoreload 2\ndef f():\n    pass",
        "def m(a, b):\n    return (a\n            % b)",  # modulo, not a magic
    )
    assert p.defined_names() == {"a", "c", "d", "f", "m"}
    ns: dict = {}
    for st in p.statements:
        exec(compile(st.padded(), "<t>", "exec"), ns)
    assert ns["a"]() == 1 and ns["c"]() == 3 and ns["d"]() == 4 and ns["m"](7, 4) == 3


def test_a_syntax_error_skips_one_cell_with_a_note():
    p = prog("def ok():\n    return 1", "def broken(:\n    pass", "def later():\n    pass")
    assert p.defined_names() == {"ok", "later"}
    assert len(p.notes) == 1
    assert p.notes[0].startswith("code cell 2 (starts with `def broken(:`): syntax error at line 1")


def test_the_definition_is_the_last_one():
    p = prog("def f(a):\n    pass", "def f(a, b):\n    pass")
    assert [a.arg for a in p.definition("f").args.args] == ["a", "b"]
    assert p.definition("missing") is None


def test_decorators_belong_to_their_definition():
    p = prog("import torch",
             "@torch.no_grad()\n@staticmethod\ndef mean_iou(confmat):\n    return confmat")
    st = p.binding("mean_iou")
    assert st.source.startswith("@torch.no_grad()\n@staticmethod\ndef mean_iou")
    assert st.line == 1
    assert chosen(p) == ["import torch", "@torch.no_grad()"]


def test_the_graded_exercise_never_reaches_its_child_as_a_reference():
    """Grading mean_iou, the child gets the reference confusion_matrix; that reference uses
    mean_iou, which must then be the student's, never the solution's."""
    from autograder.runner import _reference_for

    solution = prog("import torch",
                    "def mean_iou(confmat):\n    return 'SOLUTION'",
                    "def confusion_matrix(preds, targets, num_classes):\n"
                    "    return mean_iou(preds)")
    sources = [src for _, _, src in _reference_for(solution, "mean_iou", EXERCISES)]
    assert any("def confusion_matrix" in s for s in sources)
    assert not any("SOLUTION" in s for s in sources), sources
