"""``python -m autograder answers LAB EXPORT``: the free-text answers, collected for hand grading.

A free-text question is a markdown cell tagged ``answer`` in the master notebook (its model
answer); the question itself is the markdown cell(s) just before it (back to a heading, a code
cell or the previous answer). Students get :data:`autograder.notebook.ANSWER_PROMPT` in that
cell and replace it with their answer. Writes into OUT:

* ``index.html``: the questions and how many students answered each;
* ``qN.html`` and ``qN.pdf``: question N, the model answer (HTML only, folded), then every
  submission's answer, Markdown rendered (markdown-it-py, raw HTML escaped), named or, with
  ``--anonymize``, under a stable pseudonym;
* ``students/<submission>.pdf``: one PDF per submission, **one question per page** (question
  text + answer, no model answer), for a Gradescope *manual grading* assignment whose template
  has one page per question; ``students.csv`` maps files to submitters and pseudonyms. A PDF
  with more pages (a long answer) is printed again in smaller type; one that still does not fit
  is noted in ``students.csv`` and ``index.html`` (page count read with pypdf when installed).

An answer still equal to the prompt is shown as "(no answer)". A student who left the prompt and
wrote the answer in a new markdown cell below it is credited with that cell.

PDF renderer: headless Chromium's print-to-PDF (``chromium --headless --print-to-pdf``), the
browser the website tests already use. It prints exactly the HTML pages written here (CSS
``break-after: page`` gives one question per page) and needs no extra Python package; a PDF
library would need a second layout of the same content. Chromium is found as ``$CHROMIUM``,
``chromium``, ``chromium-browser`` or ``google-chrome``; ``--no-pdf`` skips the PDFs.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder import notebook as nbmod
from autograder import pages
from autograder.classlist import Submission, anonymous_id, read_export
from autograder.labs import get_lab

NO_ANSWER = "(no answer)"
PDF_TIMEOUT_S = 90


@dataclass
class Question:
    number: int  # 1-based
    text: str  # markdown of the question cell(s)
    model: str  # the master's model answer (markdown)
    key: str  # the cell just before the answer cell, stripped (to match submissions)


@dataclass
class StudentAnswers:
    submission: Submission
    shown_as: str  # name(s) or pseudonym
    answers: list[str | None]  # per question; None = not answered
    notes: list[str] = field(default_factory=list)


@dataclass
class Written:
    questions: list[Question]
    students: list[StudentAnswers]
    files: list[Path]


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def questions_of(master) -> list[Question]:
    """The free-text questions of a master (or student) notebook, in order."""
    out = []
    for i, cell in enumerate(master.cells):
        if cell.cell_type != "markdown" or nbmod.ANSWER_TAG not in _tags(cell):
            continue
        parts = []
        j = i - 1
        while j >= 0:
            prev = master.cells[j]
            if prev.cell_type != "markdown" or _tags(prev) & {nbmod.ANSWER_TAG,
                                                               nbmod.INSTRUCTOR_TAG}:
                break
            parts.insert(0, prev.source.strip())
            if prev.source.lstrip().startswith("#") or len(parts) == 2:
                break
            j -= 1
        key = master.cells[i - 1].source.strip() if i and parts else ""
        out.append(Question(len(out) + 1, "\n\n".join(parts), cell.source.strip(), key))
    return out


def _clean(text: str) -> str | None:
    text = text.replace(nbmod.ANSWER_PROMPT, "").strip()
    return text or None


def given_markdown(master) -> set[str]:
    """The markdown the student copy already holds (never a student's answer)."""
    return {c.source.strip() for c in nbmod.make_student(master).cells
            if c.cell_type == "markdown"}


def answers_of(nb, questions: list[Question], given: set[str] = frozenset()
               ) -> tuple[list[str | None], list[str]]:
    """Each question's answer in a submitted notebook (None: not answered), plus notes.
    ``given``: markdown of the student copy (see :func:`given_markdown`), never taken for an
    answer written below the answer cell."""
    notes: list[str] = []
    found: list[tuple[str, str | None]] = []  # (key, answer)
    cells = nb.cells
    keys = {q.key for q in questions} | set(given)
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown" or nbmod.ANSWER_TAG not in _tags(cell):
            continue
        text = _clean(cell.source)
        if text is None:  # wrote below the prompt, in a new (untagged) markdown cell?
            below = []
            for nxt in cells[i + 1:]:
                if nxt.cell_type != "markdown" or _tags(nxt) or nxt.source.strip() in keys:
                    break
                below.append(nxt.source.strip())
            text = _clean("\n\n".join(below))
            if text is not None:
                notes.append("answer written below the answer cell")
        key = cells[i - 1].source.strip() if i else ""
        found.append((key, text))
    by_key = {k: a for k, a in found}
    if len(by_key) == len(found) and all(q.key in by_key for q in questions):
        return [by_key[q.key] for q in questions], notes
    if len(found) != len(questions):
        notes.append(f"{len(found)} answer cells for {len(questions)} questions: matched in order")
    answers = [a for _, a in found][: len(questions)]
    return answers + [None] * (len(questions) - len(answers)), notes


# ----------------------------------------------------------------------------- pages


def _answer_html(text: str | None) -> str:
    return f'<p class="missing">{NO_ANSWER}</p>' if text is None else pages.markdown(text)


def question_page(lab_id: str, q: Question, students: list[StudentAnswers], *,
                  with_model: bool) -> str:
    body = [f'<div class="question">{pages.markdown(q.text)}</div>']
    answered = sum(s.answers[q.number - 1] is not None for s in students)
    body.append(f'<p class="note">{answered} of {len(students)} submissions answered.</p>')
    if with_model:
        body.append("<details><summary>Model answer (master notebook)</summary>"
                    f"{pages.markdown(q.model)}</details>")
    for s in students:
        body.append(f'<div class="answer"><h3>{pages.esc(s.shown_as)}</h3>'
                    f"{_answer_html(s.answers[q.number - 1])}</div>")
    return pages.page(f"{lab_id}: question {q.number}", "\n".join(body))


def student_page(lab_id: str, questions: list[Question], s: StudentAnswers, *,
                 compact: bool = False) -> str:
    parts = []
    for q in questions:
        parts.append(f'<section class="page"><p class="note">{pages.esc(lab_id)} · '
                     f"{pages.esc(s.shown_as)} · question {q.number} of {len(questions)}</p>"
                     f'<div class="question">{pages.markdown(q.text)}</div>'
                     f"<h2>Answer</h2>{_answer_html(s.answers[q.number - 1])}</section>")
    css = "@page { size: A4; margin: 16mm; } body { margin: 0; max-width: none; } h1 { display: none; }"
    if compact:  # a long answer: smaller type, so that each question still fits one page
        css += " body { font-size: 10px; line-height: 1.25; } pre { font-size: 8px; }"
    return pages.page(f"{lab_id}: {s.shown_as}", "\n".join(parts), css=css)


# ----------------------------------------------------------------------------- PDF


def chromium() -> str:
    """Path of a Chromium/Chrome binary (``$CHROMIUM`` first); clear error when there is none."""
    for cand in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    raise FileNotFoundError(
        "the PDFs need headless Chromium: `apt-get install chromium` (or set $CHROMIUM), "
        "or pass --no-pdf for the HTML pages only")


def print_pdfs(jobs: list[tuple[Path, Path]], *, workers: int = 2) -> None:
    """Print each HTML file to its PDF with headless Chromium (``workers`` at a time)."""
    exe = chromium()

    def one(job: tuple[Path, Path]) -> None:
        html, pdf = job
        with tempfile.TemporaryDirectory(prefix="answers-chromium-") as profile:
            cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--no-pdf-header-footer",
                   f"--user-data-dir={profile}", f"--print-to-pdf={pdf}",
                   html.resolve().as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PDF_TIMEOUT_S)
        if proc.returncode != 0 or not pdf.is_file():
            raise RuntimeError(f"Chromium could not print {html}: {proc.stderr[-500:]}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, jobs))


# ----------------------------------------------------------------------------- command


def _file_stem(s: StudentAnswers, anonymize: bool) -> str:
    return s.shown_as if anonymize else s.submission.id


def _pdf_pages(path: Path) -> int | None:
    """Pages of a PDF (None when pypdf, a development dependency, is not installed)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    return len(PdfReader(path).pages)


def _fit_one_question_per_page(lab_id: str, questions: list[Question],
                               students: list[StudentAnswers], per_student: dict) -> None:
    """A Gradescope template has one page per question: a student PDF with more pages (a long
    answer) is printed again in a smaller font; if it still does not fit, it is noted."""
    long = [s for s in students
            if (_pdf_pages(per_student[s.submission.id][1]) or 0) > len(questions)]
    for s in long:
        html, _ = per_student[s.submission.id]
        html.write_text(student_page(lab_id, questions, s, compact=True), encoding="utf-8")
    print_pdfs([per_student[s.submission.id] for s in long])
    for s in long:
        n = _pdf_pages(per_student[s.submission.id][1])
        if n is not None and n > len(questions):
            s.notes.append(f"PDF has {n} pages for {len(questions)} questions (an answer longer "
                           "than a page): assign its pages by hand on Gradescope")
            print(f"answers: {s.shown_as}: {s.notes[-1]}", file=sys.stderr)


def _write_index(lab_id: str, out: Path, questions: list[Question],
                 students: list[StudentAnswers], per_student: dict, *, pdf: bool) -> None:
    rows = [{"file": per_student[s.submission.id][1].name, "submission": s.submission.id,
             "pseudonym": anonymous_id(lab_id, s.submission.id),
             "names": "; ".join(p.name for p in s.submission.submitters),
             "sids": "; ".join(p.sid for p in s.submission.submitters),
             "emails": "; ".join(p.email for p in s.submission.submitters),
             "answered": sum(a is not None for a in s.answers),
             "notes": "; ".join(s.notes)} for s in students]
    with open(out / "students.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    items = "".join(
        f'<li><a href="q{q.number}.html">Question {q.number}</a>'
        + (f' (<a href="q{q.number}.pdf">PDF</a>)' if pdf else "")
        + f": {sum(s.answers[q.number - 1] is not None for s in students)} of {len(students)} "
        f"answered<div class=\"question\">{pages.markdown(q.text)}</div></li>" for q in questions)
    notes = [f"<li>{pages.esc(s.shown_as)}: {pages.esc('; '.join(s.notes))}</li>"
             for s in students if s.notes]
    body = (f"<ul>{items}</ul><p>One PDF per submission, one question per page, in "
            "<code>students/</code> (for a Gradescope manual-grading assignment); "
            "<code>students.csv</code> maps the files to the submitters.</p>"
            + (f"<h2>Notes</h2><ul>{''.join(notes)}</ul>" if notes else ""))
    pages.write(out / "index.html", pages.page(f"{lab_id}: free-text answers", body))


def answers(lab_id: str, export_dir: Path, out: Path, *, anonymize: bool = False,
            pdf: bool = True) -> Written:
    """Collect every submission's free-text answers into ``out`` (see module docstring)."""
    lab = get_lab(lab_id)
    master = nbmod.read_notebook(lab.master_path)
    questions, given = questions_of(master), given_markdown(master)
    if not questions:
        raise ValueError(f"{lab.master_path} has no markdown cell tagged '{nbmod.ANSWER_TAG}'")
    students = []
    for sub in read_export(export_dir, lab.notebook_name):
        shown = anonymous_id(lab.id, sub.id) if anonymize else sub.label
        if sub.notebook is None:
            students.append(StudentAnswers(sub, shown, [None] * len(questions), ["no notebook"]))
            continue
        try:
            nb = nbmod.read_notebook(sub.notebook)
        except nbmod.NotebookError as exc:
            students.append(StudentAnswers(sub, shown, [None] * len(questions), [str(exc)]))
            continue
        got, notes = answers_of(nb, questions, given)
        students.append(StudentAnswers(sub, shown, got, notes))
    students.sort(key=lambda s: s.shown_as.lower())

    out.mkdir(parents=True, exist_ok=True)
    files, jobs = [], []
    for q in questions:
        html = pages.write(out / f"q{q.number}.html",
                           question_page(lab.id, q, students, with_model=True))
        files.append(html)
        if pdf:  # the PDF (for printing or sharing) without the model answer
            printable = pages.write(out / "print" / f"q{q.number}.html",
                                    question_page(lab.id, q, students, with_model=False))
            jobs.append((printable, out / f"q{q.number}.pdf"))
    per_student = {}
    for s in students:
        stem = _file_stem(s, anonymize)
        html = pages.write(out / "students" / "html" / f"{stem}.html",
                           student_page(lab.id, questions, s))
        per_student[s.submission.id] = (html, out / "students" / f"{stem}.pdf")
    if pdf:
        print_pdfs(jobs + list(per_student.values()))
        files.extend(p for _, p in jobs)
        _fit_one_question_per_page(lab.id, questions, students, per_student)
        files.extend(p for _, p in per_student.values())
    _write_index(lab.id, out, questions, students, per_student, pdf=pdf)
    files += [out / "students.csv", out / "index.html"]
    return Written(questions, students, files)
