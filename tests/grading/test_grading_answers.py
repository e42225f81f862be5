"""``python -m autograder answers``: every question's answers (HTML, PDF) and one PDF per student,
one question per page, from a generated export of 34 lab02 submissions."""

from __future__ import annotations

import csv
import re

import pytest
from export_factory import LAB
from grading_helpers import N_SUBMISSIONS, assert_clean
from pypdf import PdfReader

from autograder import notebook as nbmod
from autograder.answers import NO_ANSWER, answers_of, given_markdown, questions_of
from autograder.classlist import anonymous_id
from autograder.cli import main

N_QUESTIONS = 4  # lab02's free-text questions


@pytest.fixture(scope="module")
def answers_dir(class_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("answers")
    assert main(["answers", "lab02", str(class_export.root), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def anonymous_dir(class_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("answers_anon")
    assert main(["answers", "lab02", str(class_export.root), "--out", str(out), "--anonymize",
                 "--no-pdf"]) == 0
    return out


def test_questions_come_from_the_master():
    questions = questions_of(nbmod.read_notebook(LAB.master_path))
    assert len(questions) == N_QUESTIONS
    assert questions[0].text.startswith("## Questions") and "**Q1.**" in questions[0].text
    assert all(f"**Q{q.number}.**" in q.text for q in questions)
    assert all(q.model and nbmod.ANSWER_PROMPT not in q.model for q in questions)


def test_every_student_pdf_has_one_page_per_question(answers_dir, class_export):
    pdfs = sorted((answers_dir / "students").glob("*.pdf"))
    assert len(pdfs) == N_SUBMISSIONS
    assert {p.stem for p in pdfs} == {s.sid for s in class_export.students}
    for pdf in pdfs:
        assert len(PdfReader(pdf).pages) == N_QUESTIONS, pdf.name
    stu = next(s for s in class_export.students if s.kind == "honest")
    reader = PdfReader(answers_dir / "students" / f"{stu.sid}.pdf")
    for q, page in enumerate(reader.pages):
        text = " ".join(page.extract_text().split())
        assert f"question {q + 1} of {N_QUESTIONS}" in text and f"Q{q + 1}." in text
        first_words = " ".join(stu.answers[q].replace("**", "").replace("`", "").split()[:6])
        assert first_words in text


def test_question_pdfs_and_csv(answers_dir, class_export):
    for q in range(1, N_QUESTIONS + 1):
        assert len(PdfReader(answers_dir / f"q{q}.pdf").pages) >= 2  # 34 answers
    rows = list(csv.DictReader(open(answers_dir / "students.csv", encoding="utf-8")))
    assert len(rows) == N_SUBMISSIONS
    group = class_export.students[3]
    row = next(r for r in rows if r["submission"] == group.sid)
    assert row["names"] == "; ".join(group.names) and row["file"] == f"{group.sid}.pdf"


def test_unanswered_and_answered_below(answers_dir, class_export):
    html = (answers_dir / "q1.html").read_text()
    unanswered = sum(s.answers[0] is None for s in class_export.students)
    assert unanswered >= 1 and html.count(NO_ANSWER) == unanswered
    assert nbmod.ANSWER_PROMPT not in html and "double-click this cell" not in html
    below = next(s for s in class_export.students if s.answer_below)
    assert below.answers[0] and re.split(r"[*`]", below.answers[0])[0][:30] in html


def test_markdown_rendered_and_escaped(tmp_path, class_export):
    master = nbmod.read_notebook(LAB.master_path)
    nb = nbmod.make_student(master)
    questions = questions_of(nb)
    cells = [c for c in nb.cells if nbmod.ANSWER_TAG in c.metadata.get("tags", [])]
    cells[0].source = "Accuracy is **dominated** by `road`.\n\n- one\n- two <script>alert(1)</script>"
    got, _ = answers_of(nb, questions, given_markdown(master))
    assert got[0].startswith("Accuracy") and got[1:] == [None] * (N_QUESTIONS - 1)
    from autograder.pages import markdown

    html = markdown(got[0])
    assert "<strong>dominated</strong>" in html and "<code>road</code>" in html
    assert "<li>one</li>" in html and "<script>" not in html and "&lt;script&gt;" in html
    image = markdown("See ![my plot](https://example.com/pixel.png) and [link](javascript:x)")
    assert "<img" not in image and "[image: my plot]" in image and "href" not in image


def test_model_answer_only_in_the_grader_page(answers_dir):
    model = questions_of(nbmod.read_notebook(LAB.master_path))[0].model
    phrase = " ".join(model.split()[:8])
    assert phrase in " ".join((answers_dir / "q1.html").read_text().split())
    for path in list((answers_dir / "students" / "html").glob("*.html")) + \
            [answers_dir / "print" / "q1.html"]:
        assert phrase not in " ".join(path.read_text().split()), path


def test_anonymized_pages_show_no_name(anonymous_dir, class_export):
    assert not list(anonymous_dir.rglob("*.pdf"))
    q1 = (anonymous_dir / "q1.html").read_text()
    for stu in class_export.students:
        assert anonymous_id("lab02", stu.sid) in q1
        for name in stu.names:
            assert name not in q1
    files = {p.stem for p in (anonymous_dir / "students" / "html").glob("*.html")}
    assert files == {anonymous_id("lab02", s.sid) for s in class_export.students}


def test_pages_in_chromium(answers_dir, open_page, class_export):
    index = open_page(answers_dir, "index.html")
    assert_clean(index)
    assert sum("q1.pdf" in link for link in index.links) == 1
    assert_clean(open_page(answers_dir, "q2.html"))
    assert_clean(open_page(answers_dir, f"students/html/{class_export.students[0].sid}.html"))


def test_long_answers_are_refit_or_noted(class_export, tmp_path):
    """One question per page: a long answer is printed again in smaller type; an answer far
    longer than a page is noted (the grader assigns that PDF's pages by hand)."""
    import shutil

    import nbformat

    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(class_export.root / "submission_metadata.yml", export)
    sentence = "The skip connections carry the fine detail that pooling removed. "
    lengths = {}
    for stu, lines in zip(class_export.by_kind("honest")[:2], (20, 400)):
        shutil.copytree(class_export.root / stu.sid, export / stu.sid)
        path = export / stu.sid / LAB.notebook_name
        nb = nbformat.read(path, as_version=4)
        cell = [c for c in nb.cells if nbmod.ANSWER_TAG in c.metadata.get("tags", [])][1]
        cell.source = "\n\n".join(sentence * 2 for _ in range(lines))
        nbformat.write(nb, str(path))
        lengths[stu.sid] = lines
    out = tmp_path / "out"
    assert main(["answers", "lab02", str(export), "--out", str(out)]) == 0
    rows = {r["submission"]: r for r in csv.DictReader(open(out / "students.csv"))}
    short, long_ = sorted(lengths, key=lengths.get)
    assert len(PdfReader(out / "students" / f"{short}.pdf").pages) == N_QUESTIONS
    assert not rows[short]["notes"]
    assert "font-size: 10px" in (out / "students" / "html" / f"{short}.html").read_text()
    assert len(PdfReader(out / "students" / f"{long_}.pdf").pages) > N_QUESTIONS
    assert "assign its pages by hand" in rows[long_]["notes"]
    assert "assign its pages by hand" in (out / "index.html").read_text()
