"""Hostile notebook cells: syntax errors, errors and exits at definition time, missing or
renamed functions, magics and shell lines, top-level loops."""

from __future__ import annotations

from ag_helpers import CM_ONLY, FULL, IOU_ONLY, N_VISIBLE, OTHERS, assert_scores


def test_syntax_error_in_one_cell_keeps_the_others(tmp_path, grade_nb, make_submission,
                                                   solution_source):
    broken = solution_source["mean_iou"].replace("confmat = confmat.double()",
                                                 "confmat = confmat.double(")
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": broken}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "syntax error at line" in res["output"] and "this cell was skipped" in res["output"]
    assert "`mean_iou` is not defined in the notebook" in res.out("2.1")
    assert "`mean_iou` is not defined" in res.out("3.2")


def test_errors_at_definition_time(tmp_path, grade_nb, make_submission, solution_source):
    # statements no exercise needs never run (a failing import, a class body that raises or
    # exits); one that mean_iou needs fails mean_iou only, with a message naming it
    mean_iou = "import not_a_module_xyz\n" + solution_source["mean_iou"]
    res = grade_nb(make_submission(
        tmp_path, replace={"mean_iou": mean_iou},
        extra_first=["class Boom:\n    raise ValueError('boom at definition time')",
                     "import sys\nclass Leave:\n    sys.exit(3)"]))
    assert_scores(res, FULL)
    assert "no module named 'not_a_module_xyz'" in res["output"]
    assert "class Boom:" in res["output"] and "Statements the grader did not run" in res["output"]
    needed = ("class Boom:\n    raise ValueError('boom at definition time')\n"
              + solution_source["mean_iou"].replace("def mean_iou(confmat",
                                                    "def mean_iou(confmat, _b=Boom"))
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": needed}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "ValueError: boom at definition time" in res["output"], res["output"]
    assert "`mean_iou` was not defined" in res.out("2.1"), res.out("2.1")


def test_missing_function_and_wrong_signature(tmp_path, grade_nb, make_submission,
                                              solution_source):
    renamed = solution_source["confusion_matrix"].replace("def confusion_matrix(",
                                                          "def confmat(")
    wrong_sig = solution_source["mean_iou"].replace("def mean_iou(confmat):",
                                                    "def mean_iou(cm):\n    confmat = cm")
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": renamed,
                                                      "mean_iou": wrong_sig}))
    assert_scores(res, OTHERS)
    assert "`confusion_matrix` is not defined in the notebook" in res.out("1.1")
    assert "`mean_iou` has the wrong signature: its parameters are (cm), expected (confmat" \
        in res.out("2.2")


def test_class_instead_of_function(tmp_path, grade_nb, make_submission):
    res = grade_nb(make_submission(
        tmp_path, replace={"confusion_matrix": "class confusion_matrix:\n    pass"}))
    assert_scores(res, {**IOU_ONLY, **OTHERS})
    assert "`confusion_matrix` should be a function." in res.out("1.3")


def test_magics_shell_lines_and_top_level_loops(tmp_path, grade_nb, make_submission,
                                                solution_source):
    # %%capture at the top of the exercise cell and line magics inside it must not cost the
    # function; shell cells, %%bash, top-level calls and infinite loops never run.
    cm = "%%capture\n%time _x = 1\n" + solution_source["confusion_matrix"].replace(
        "    keep = targets", "    %time _y = 2\n    keep = targets")
    # a local variable that happens to be called like a forbidden name is not the library
    iou = solution_source["mean_iou"].replace(
        "    confmat = confmat.double()",
        "    metrics = {'note': 'mine'}\n    confmat = confmat.double()")
    res = grade_nb(make_submission(
        tmp_path, replace={"confusion_matrix": cm, "mean_iou": iou},
        extra_first=["!pip install definitely-not-a-package\n%matplotlib inline",
                     "%%bash\nwhile true; do :; done",
                     "%%capture\n!rm -rf /\nwhile True:\n    pass"],
        extra=["while True:\n    pass", "import time\ntime.sleep(3600)",
               "for _ in iter(int, 1):\n    pass", "%%time\nx = [0] * 10"]))
    assert_scores(res, FULL)
    assert f"Public checks passed: {N_VISIBLE}/{N_VISIBLE}." in res["output"]


def test_os_exit_and_chdir_at_definition_time(tmp_path, grade_nb, make_submission,
                                              solution_source):
    # a class body that kills the process or changes directory: when no exercise needs it, it
    # never runs; when mean_iou needs it, mean_iou alone fails
    res = grade_nb(make_submission(
        tmp_path, extra_first=["import os\nclass Bye:\n    os._exit(0)",
                               "import os\nclass Away:\n    os.chdir('/')"]))
    assert_scores(res, FULL)
    bye = ("import os\nclass Bye:\n    os._exit(0)\n\nclass Away:\n    os.chdir('/')\n"
           + solution_source["mean_iou"].replace("def mean_iou(confmat",
                                                 "def mean_iou(confmat, _b=(Bye, Away)"))
    res = grade_nb(make_submission(tmp_path, replace={"mean_iou": bye}))
    assert_scores(res, {**CM_ONLY, **OTHERS})
    assert "`mean_iou` was not defined" in res.out("2.1"), res.out("2.1")


def test_exit_inside_functions(tmp_path, grade_nb, make_submission, solution_source):
    # os._exit on one input only: that check fails, the others of the function still count;
    # sys.exit is an ordinary exception for every check of mean_iou.
    cm = solution_source["confusion_matrix"].replace(
        "    keep = targets", "    if num_classes == 6:\n        import os\n"
        "        os._exit(0)\n    keep = targets")
    iou = solution_source["mean_iou"].replace(
        "    confmat = confmat.double()", "    import sys\n    sys.exit(3)")
    res = grade_nb(make_submission(tmp_path, replace={"confusion_matrix": cm, "mean_iou": iou}))
    assert_scores(res, {"1.1": 2, "1.2": 2, "1.3": 1, "1.4": 1, "3.1": 1, **OTHERS})
    assert "without a result" in res.out("1.5"), res.out("1.5")
    assert "`mean_iou` raised SystemExit" in res.out("2.1") and ": 3" in res.out("2.1")
    assert "SystemExit" in res.out("3.2")


def test_student_copy_scores_zero(tmp_path, grade_nb, make_submission, student_nb):
    res = grade_nb(make_submission(tmp_path, base=student_nb))
    assert_scores(res, {})
    assert all("not implemented yet (NotImplementedError)" in t["output"] for t in res["tests"])
