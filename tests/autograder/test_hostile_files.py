"""Hostile submissions at the file level: broken JSON, old nbformat, wrong names, many notebooks."""

from __future__ import annotations

import copy
import json

import nbformat
from ag_helpers import FULL, assert_scores

NAME = "lab02_segmentation.ipynb"


def test_not_json(tmp_path, grade_nb):
    path = tmp_path / NAME
    path.write_text('{"cells": [ this is not json')
    res = grade_nb(path)
    assert_scores(res, {})
    assert "not valid JSON" in res["output"]
    assert all("not valid JSON" in t["output"] for t in res["tests"])


def test_not_utf8(tmp_path, grade_nb):
    path = tmp_path / NAME
    path.write_bytes(b'{"nbformat": 4, "cells": ["\xff\xfe"]}')
    res = grade_nb(path)
    assert_scores(res, {})
    assert "not a text (UTF-8) file" in res["output"]


def test_nbformat_3_is_upgraded_and_graded(tmp_path, grade_nb, solution_nb):
    v3 = nbformat.convert(copy.deepcopy(solution_nb), 3)  # convert() changes its argument
    text = nbformat.writes(v3, version=3)
    assert json.loads(text)["nbformat"] == 3
    path = tmp_path / NAME
    path.write_text(text)
    res = grade_nb(path)
    assert_scores(res, FULL)
    assert "saved in nbformat 3; it was upgraded to nbformat 4" in res["output"]


def test_nbformat_2_is_refused(tmp_path, grade_nb):
    path = tmp_path / NAME
    path.write_text(json.dumps({"nbformat": 2, "nbformat_minor": 0, "worksheets": []}))
    res = grade_nb(path)
    assert_scores(res, {})
    assert "nbformat 2, which is too old" in res["output"]
    assert all("too old" in t["output"] for t in res["tests"])


def test_missing_nbformat_is_refused(tmp_path, grade_nb):
    path = tmp_path / NAME
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]}))
    res = grade_nb(path)
    assert_scores(res, {})
    assert "is not a Jupyter notebook (no 'nbformat' field)" in res["output"]


def test_bad_cell_type_is_refused(tmp_path, grade_nb, solution_nb):
    data = json.loads(nbformat.writes(solution_nb))
    data["cells"][0]["cell_type"] = "evil"
    path = tmp_path / NAME
    path.write_text(json.dumps(data))
    res = grade_nb(path)
    assert_scores(res, {})
    assert "cell of unknown type 'evil'" in res["output"]


def test_wrong_file_name_is_graded_with_a_note(tmp_path, grade_nb, make_submission):
    folder = tmp_path / "submission"
    make_submission(tmp_path, folder=folder, name="Copy of lab02_segmentation.ipynb")
    res = grade_nb(folder)
    assert_scores(res, FULL)
    assert "Expected a notebook named lab02_segmentation.ipynb; graded Copy of" in res["output"]


def test_several_notebooks_none_named_right(tmp_path, grade_nb, make_submission):
    folder = tmp_path / "submission"
    make_submission(tmp_path, folder=folder, name="mine.ipynb")
    make_submission(tmp_path, folder=folder, name="lab02 (1).ipynb")
    res = grade_nb(folder)
    assert_scores(res, {})
    assert "Several notebooks were submitted" in res["output"]
    assert all("submit exactly one notebook named" in t["output"] for t in res["tests"])


def test_several_notebooks_the_right_one_is_graded(tmp_path, grade_nb, make_submission,
                                                   student_nb):
    folder = tmp_path / "submission"
    make_submission(tmp_path, folder=folder)  # the solution, right name
    make_submission(tmp_path, folder=folder / "old", name="draft.ipynb", base=student_nb)
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / NAME).write_text("not even json")
    res = grade_nb(folder)
    assert_scores(res, FULL)
    assert "other notebooks were ignored: old/draft.ipynb" in res["output"]


def test_empty_folder(tmp_path, grade_nb):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "notes.txt").write_text("forgot the notebook")
    res = grade_nb(folder)
    assert_scores(res, {})
    assert "No notebook found: submit lab02_segmentation.ipynb" in res["output"]


def test_huge_notebook_is_refused(tmp_path, grade_nb, solution_nb, monkeypatch):
    import autograder.grade as grade_mod

    monkeypatch.setattr(grade_mod, "MAX_NOTEBOOK_BYTES", 1000)
    path = tmp_path / NAME
    nbformat.write(solution_nb, str(path))
    res = grade_nb(path)
    assert_scores(res, {})
    assert "clear the outputs" in res["output"]
