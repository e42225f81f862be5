"""``python -m autograder similarity``: planted copies (renamed variables, reordered functions,
copied answers) rank first among the pairs of a generated class of 34 lab02 submissions."""

from __future__ import annotations

import json

import nbformat
import pytest
from export_factory import CORRECT, LAB, rename_locals
from grading_helpers import N_SUBMISSIONS, assert_clean

from autograder.cli import main
from autograder.similarity import definitions, similarity


@pytest.fixture(scope="module")
def sim_dir(class_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("similarity")
    assert main(["similarity", "lab02", str(class_export.root), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pairs(sim_dir) -> list[dict]:
    return json.loads((sim_dir / "similarity.json").read_text())["pairs"]


def _key(a: str, b: str) -> tuple[str, str]:
    return tuple(sorted((a, b)))


def test_planted_copies_rank_first_by_code(pairs, class_export):
    assert len(pairs) == N_SUBMISSIONS * (N_SUBMISSIONS - 1) // 2
    planted = {_key(*p) for p in class_export.planted.values()}
    top = {_key(p["a"], p["b"]) for p in pairs[: len(planted)]}
    assert top == planted
    assert all(p["code"] > 0.9 for p in pairs[: len(planted)])
    assert pairs[len(planted)]["code"] < pairs[len(planted) - 1]["code"] - 0.1


def test_copied_answers_rank_first_by_answers(pairs, class_export):
    ranked = sorted(pairs, key=lambda p: -p["answers"])
    assert _key(ranked[0]["a"], ranked[0]["b"]) == _key(*class_export.planted["answers"])
    assert ranked[0]["answers"] > 0.8 > ranked[1]["answers"]


def test_starter_code_is_boilerplate(pairs, class_export):
    empty = next(s.sid for s in class_export.students if s.kind == "empty")
    stubbed = [s.sid for s in class_export.students if s.kind == "partial"
               and "stub" in s.variants.values()]
    with_empty = [p for p in pairs if empty in (p["a"], p["b"])]
    assert len(with_empty) == N_SUBMISSIONS - 1
    assert all(p["code"] == 0 and p["answers"] == 0 for p in with_empty)
    both_stub = [p for p in pairs if p["a"] in stubbed and p["b"] in stubbed]
    for p in both_stub:
        for ex, score in p["per_exercise"].items():
            a = next(s for s in class_export.students if s.sid == p["a"])
            if a.variants[ex] == "stub":
                assert score == 0


def test_renaming_and_reformatting_do_not_hide_a_copy(tmp_path):
    source = "def dice_loss(logits, targets, ignore_index=255):\n    # YOUR CODE HERE\n"
    body = "\n".join("    " + line for line in CORRECT["dice_loss"][1][0].splitlines())
    original = source.replace("    # YOUR CODE HERE\n", body)
    disguised = rename_locals(original)
    assert disguised != original and "my_" in disguised
    from autograder.similarity import _fingerprint, _pair_similarity

    score, _ = _pair_similarity(_fingerprint("a", original, code=True),
                                _fingerprint("b", disguised, code=True))
    assert score > 0.9


def test_definitions_takes_the_last_one_and_skips_magics():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def mean_iou(confmat):\n    return 1"),
                nbformat.v4.new_code_cell("%matplotlib inline\n@staticmethod\n"
                                          "def mean_iou(confmat):\n    return 2\nx = 1"),
                nbformat.v4.new_code_cell("def broken(:\n    pass")]
    defs = definitions(nb)
    assert defs == {"mean_iou": "@staticmethod\ndef mean_iou(confmat):\n    return 2"}


def test_pages_in_chromium(sim_dir, open_page, class_export):
    index = open_page(sim_dir, "index.html")
    assert_clean(index)
    assert len(index.images) == 1
    src, copy = class_export.planted["reordered"]
    a, b = sorted((src, copy))
    assert any(link.endswith(f"pairs/{a}--{b}.html") for link in index.links)
    pair = open_page(sim_dir, f"pairs/{a}--{b}.html")
    assert_clean(pair)
    html = (sim_dir / "pairs" / f"{a}--{b}.html").read_text()
    assert html.count("<mark>") >= 2 * len(LAB.exercises)  # both sides of every exercise


def test_missing_notebook_and_unreadable_notebook(class_export, tmp_path):
    import shutil

    export = tmp_path / "export"
    shutil.copytree(class_export.root, export)
    first, second = class_export.students[0].sid, class_export.students[1].sid
    (export / first / LAB.notebook_name).unlink()
    (export / second / LAB.notebook_name).write_text("{not a notebook")
    result = similarity("lab02", export, tmp_path / "out", top=5)
    for p in result.code_pairs:
        if first in (p.a, p.b) or second in (p.a, p.b):
            assert p.score == 0
    assert result.answer_pairs[0].answers > 0.8
