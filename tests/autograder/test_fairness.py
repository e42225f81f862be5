"""Grader fairness on whole notebooks (issue "Grader 2, fairness"): odd but valid notebooks and
student habits earn exactly what their exercises are worth. Each situation failed on the grader
of session 2 (internal error, 0/37, 13/35, or no results.json at all)."""

from __future__ import annotations

import json
import time

import nbformat
from ag_helpers import CM_ONLY, FULL, OTHERS, assert_scores

COLAB_IMPORT = "from google.colab import drive\n"


def test_a_failing_import_costs_nothing_and_is_reported_once(tmp_path, grade_nb,
                                                             make_submission, solution_nb):
    first = next(i for i, c in enumerate(solution_nb.cells)
                 if c.cell_type == "code" and "import torch" in c.source)
    source = COLAB_IMPORT + solution_nb.cells[first].source
    nb = json.loads(json.dumps(solution_nb))
    nb["cells"][first]["source"] = source
    path = make_submission(tmp_path, base=nbformat.from_dict(nb))
    res = grade_nb(path)
    assert_scores(res, FULL)
    # an exercise that uses it: only that one fails, with a message naming the statement
    path = make_submission(tmp_path, base=nbformat.from_dict(nb), replace={"mean_iou": (
        "def mean_iou(confmat):\n    drive.mount('/content/drive')\n")})
    res = grade_nb(path)
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "from google.colab import drive` failed: ModuleNotFoundError" in res["output"]
    assert res["output"].count("google.colab") == 1, res["output"]
    assert "which failed: ModuleNotFoundError" in res.out("2.1"), res.out("2.1")


STYLE = '''
EPS = np.finfo(np.float64).eps
SAFE = {k: v for k, v in (("div", lambda a, b: a / np.maximum(b, EPS)),)}
_ROWS = lambda m: m.sum(axis=1)

def _union(cm):
    return _ROWS(cm) + cm.sum(axis=0) - np.diag(cm)

def mean_iou(confmat):
    cm = np.asarray(confmat, dtype=np.float64)
    inter = np.diag(cm)
    union = _union(cm)
    iou = np.where(union > 0, SAFE["div"](inter, union), np.nan)
    per_class = torch.from_numpy(iou).float()
    valid = ~np.isnan(iou)
    miou = float(iou[valid].mean()) if valid.any() else float("nan")
    return per_class, miou
'''


def test_module_level_helpers_built_by_calls_lambdas_and_comprehensions(
        tmp_path, grade_nb, make_submission):
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": "import numpy as np\n" + STYLE}))
    assert_scores(res, FULL)


def test_odd_cells_skip_only_themselves(tmp_path, grade_nb, make_submission):
    odd = ["x = 1\x00", "s = '\ud800'", "deep = " + "-" * 10000 + "1",
           "total = " + " + ".join(["1"] * 2000)]
    path = make_submission(tmp_path)
    data = json.loads(path.read_text())
    data["cells"] += [nbformat.v4.new_code_cell(s) for s in odd]
    # a lone surrogate is valid JSON only as an escape: written the way Jupyter writes it
    path.write_text(json.dumps(data, ensure_ascii=True))
    res = grade_nb(path)
    assert_scores(res, FULL)
    assert "could not be read" in res["output"], res["output"]


def test_thousands_of_constants_and_cells(tmp_path, grade_nb, make_submission):
    constants = "\n".join(f"C{i} = {i}" for i in range(2500))
    res = grade_nb(make_submission(tmp_path, extra=[constants]))
    assert_scores(res, FULL)
    tiny = [f"t{i} = {i}" for i in range(100_000)]
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, extra=tiny))
    assert_scores(res, FULL)
    assert time.monotonic() - start < 600


def test_many_names_do_not_stall_the_parent(tmp_path, grade_nb, make_submission):
    cells = [";".join(f"v{c}_{k} = {k}" for k in range(6)) + f"\ndef h{c}(x):\n    return x"
             for c in range(4000)]
    start = time.monotonic()
    res = grade_nb(make_submission(tmp_path, extra=cells))
    assert_scores(res, FULL)
    assert time.monotonic() - start < 600


def test_the_notebook_at_the_top_wins_over_older_copies(tmp_path, grade_nb, make_submission,
                                                        student_nb):
    folder = tmp_path / "submission"
    make_submission(tmp_path, folder=folder)
    make_submission(tmp_path, folder=folder / "aaa_old", base=student_nb)
    res = grade_nb(folder)
    assert_scores(res, FULL)


def test_feedback_names_code_cells_as_the_student_sees_them(tmp_path, grade_nb,
                                                            make_submission):
    broken = "def mean_iou(confmat):\n    return undefined_helper(confmat)\n"
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": broken}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    out = res.out("2.1")
    assert "code cell" in out and "starts with `def mean_iou(confmat):`" in out, out
    assert "undefined_helper" in res["output"]  # named before grading as a missing name
