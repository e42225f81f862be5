"""``python -m autograder similarity LAB EXPORT``: which submissions look copied from each other.

Code: for every exercise of the lab (``get_lab(LAB).exercises``), the exercise's last top-level
``def``/``class`` is taken from every submission with ``ast`` (what the grader runs) and compared
pairwise with copydetect's winnowing fingerprints (Schleimer et al., SIGMOD 2003): the code is
tokenised, names become one placeholder (renaming variables changes nothing), comments and
whitespace vanish, and the student copy's starter code for that exercise (signature, docstring,
stub) is boilerplate, so stubs and the given lines never match. The similarity of two versions
is the mean of copydetect's two overlap fractions; a pair's code score is the mean over all the
lab's exercises (an exercise not written by both counts 0), so moving functions around or
splitting cells changes nothing.

Free-text answers: the same fingerprints on the lower-cased text (no tokeniser), with the
question and the answer prompt as boilerplate; a pair's answer score is the mean over questions.

Writes ``OUT/index.html`` (top pairs by code and by answers, histogram of all pair scores),
``OUT/pairs/<a>--<b>.html`` (side by side, matching passages highlighted) and
``OUT/similarity.json`` (every pair's scores). A high score is a reason to read the two
submissions, not a verdict: short exercises with one natural solution match often.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

from autograder import notebook as nbmod
from autograder import pages
from autograder.answers import answers_of, given_markdown, questions_of
from autograder.classlist import Submission, read_export
from autograder.labs import get_lab

# copydetect's defaults: noise threshold 25 characters of filtered code, guarantee threshold 30
NOISE_T = 25
GUARANTEE_T = 30
TEXT_NOISE_T = 30  # answers: matches shorter than ~5 words are noise
TEXT_GUARANTEE_T = 40
_MAGIC = re.compile(r"^\s*[%!]")


@dataclass
class Pair:
    a: str  # submission ids, a < b
    b: str
    score: float  # code score (mean over exercises)
    per_exercise: dict[str, float] = field(default_factory=dict)
    answers: float = 0.0  # mean over questions
    per_question: list[float] = field(default_factory=list)


@dataclass
class Similarity:
    exercises: list[str]
    code_pairs: list[Pair]  # sorted by code score, best first
    answer_pairs: list[Pair]  # the same pairs, sorted by answer score
    labels: dict[str, str]


def definitions(nb) -> dict[str, str]:
    """Source of the last top-level def/class of each name in a notebook (magics ignored)."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if _MAGIC.match(line) else line for line in cell.source.splitlines())
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                found[node.name] = "\n".join(lines[start:node.end_lineno])
    return found


def _fingerprint(name: str, text: str, *, code: bool, boilerplate=None) -> CodeFingerprint:
    if code:
        k, w = NOISE_T, GUARANTEE_T - NOISE_T + 1
        return CodeFingerprint(f"{name}.py", k, w, boilerplate, fp=io.StringIO(text))
    k, w = TEXT_NOISE_T, TEXT_GUARANTEE_T - TEXT_NOISE_T + 1
    return CodeFingerprint(f"{name}.txt", k, w, boilerplate, filter=False,
                           fp=io.StringIO(_normalise_text(text)))


def _normalise_text(text: str) -> str:
    return " ".join(re.sub(r"[*_`>#-]+", " ", text.lower()).split())


def _pair_similarity(f1: CodeFingerprint | None, f2: CodeFingerprint | None):
    if f1 is None or f2 is None or not f1.hashes or not f2.hashes:
        return 0.0, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, (s1, s2), slices = compare_files(f1, f2)
    return float(s1 + s2) / 2, slices


def _boilerplate(text: str, *, code: bool) -> list[int]:
    return list(_fingerprint("starter", text, code=code).hashes) if text.strip() else []


def similarity(lab_id: str, export_dir: Path, out: Path, *, top: int = 20) -> Similarity:
    """Compare every pair of submissions of the export; write the report into ``out``."""
    lab = get_lab(lab_id)
    master = nbmod.read_notebook(lab.master_path)
    starter = definitions(nbmod.make_student(master))
    questions, given = questions_of(master), given_markdown(master)
    exercises = [ex.name for ex in lab.exercises]
    subs: list[Submission] = read_export(export_dir, lab.notebook_name)
    code: dict[str, dict[str, str]] = {}
    texts: dict[str, list[str | None]] = {}
    for sub in subs:
        code[sub.id], texts[sub.id] = {}, [None] * len(questions)
        if sub.notebook is None:
            continue
        try:
            nb = nbmod.read_notebook(sub.notebook)
        except nbmod.NotebookError:
            continue
        defs = definitions(nb)
        code[sub.id] = {e: defs[e] for e in exercises if e in defs}
        texts[sub.id], _ = answers_of(nb, questions, given)

    code_fp: dict[str, dict[str, CodeFingerprint]] = {}
    for e in exercises:
        bp = _boilerplate(starter.get(e, ""), code=True)
        code_fp[e] = {s: _fingerprint(f"{s}_{e}", code[s][e], code=True, boilerplate=bp)
                      for s in code if e in code[s]}
    text_fp: list[dict[str, CodeFingerprint]] = []
    for q in questions:
        bp = _boilerplate(q.text + " " + nbmod.ANSWER_PROMPT, code=False)
        text_fp.append({s: _fingerprint(f"{s}_q{q.number}", texts[s][q.number - 1], code=False,
                                        boilerplate=bp)
                        for s in texts if texts[s][q.number - 1]})

    pairs = []
    for a, b in itertools.combinations(sorted(code), 2):
        per_ex = {e: _pair_similarity(code_fp[e].get(a), code_fp[e].get(b))[0] for e in exercises}
        per_q = [_pair_similarity(fps.get(a), fps.get(b))[0] for fps in text_fp]
        pairs.append(Pair(a, b, float(np.mean(list(per_ex.values()))) if exercises else 0.0,
                          per_ex, float(np.mean(per_q)) if per_q else 0.0, per_q))
    code_pairs = sorted(pairs, key=lambda p: (-p.score, -p.answers, p.a, p.b))
    answer_pairs = sorted(pairs, key=lambda p: (-p.answers, -p.score, p.a, p.b))
    result = Similarity(exercises, code_pairs, answer_pairs, {s.id: s.label for s in subs})
    _write(result, out, top=top, code=code, texts=texts, code_fp=code_fp, text_fp=text_fp,
           questions=questions, lab_id=lab.id)
    return result


# ----------------------------------------------------------------------------- report


def _pair_file(p: Pair) -> str:
    return f"{p.a}--{p.b}.html"


def _highlighted(fp: CodeFingerprint | None, raw: str | None, slices) -> str:
    if raw is None:
        return '<p class="missing">(not written)</p>'
    if slices is None or np.asarray(slices).size == 0:
        return f"<pre>{pages.esc(raw)}</pre>"
    doc = fp.raw_code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        marked, _ = highlight_overlap(doc, np.asarray(slices), "\x00", "\x01")
    safe = pages.esc(marked).replace("\x00", "<mark>").replace("\x01", "</mark>")
    return f"<pre>{safe}</pre>"


def _side_by_side(fa, fb, raw_a, raw_b) -> str:
    _, slices = _pair_similarity(fa, fb)
    sa, sb = (slices if slices is not None else (None, None))
    return (f'<div class="side"><div>{_highlighted(fa, raw_a, sa)}</div>'
            f"<div>{_highlighted(fb, raw_b, sb)}</div></div>")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _write(r: Similarity, out: Path, *, top: int, code, texts, code_fp, text_fp, questions,
           lab_id: str) -> None:
    e = pages.esc
    out.mkdir(parents=True, exist_ok=True)
    shown = {(p.a, p.b): p for p in r.code_pairs[:top] + r.answer_pairs[:top]}.values()
    for p in shown:
        body = [f"<p>{e(r.labels[p.a])} (<code>{e(p.a)}</code>) and {e(r.labels[p.b])} "
                f"(<code>{e(p.b)}</code>): code {_pct(p.score)}, answers {_pct(p.answers)}. "
                'Highlighted: passages found in both. <a href="../index.html">All pairs</a></p>']
        for ex in r.exercises:
            body.append(f"<h2>{e(ex)}: {_pct(p.per_exercise[ex])}</h2>")
            body.append(_side_by_side(code_fp[ex].get(p.a), code_fp[ex].get(p.b),
                                      code[p.a].get(ex), code[p.b].get(ex)))
        for q, fps, score in zip(questions, text_fp, p.per_question):
            body.append(f"<h2>Question {q.number}: {_pct(score)}</h2>")
            fa, fb = fps.get(p.a), fps.get(p.b)
            body.append(_side_by_side(fa, fb, fa.raw_code if fa else None,
                                      fb.raw_code if fb else None))
        pages.write(out / "pairs" / _pair_file(p),
                    pages.page(f"{lab_id}: {p.a} and {p.b}", "\n".join(body)))

    _histogram([p.score for p in r.code_pairs], [p.answers for p in r.code_pairs],
               out / "pair_scores.png")

    def rows(ranked: list[Pair]) -> list[list[str]]:
        return [[str(i + 1), f'<a href="pairs/{_pair_file(p)}">{e(r.labels[p.a])} &amp; '
                 f"{e(r.labels[p.b])}</a>", _pct(p.score), _pct(p.answers),
                 *(_pct(p.per_exercise[x]) for x in r.exercises)]
                for i, p in enumerate(ranked[:top])]

    header = ["#", "pair", "code", "answers", *(e(x) for x in r.exercises)]
    numeric = set(range(2, len(header)))
    body = [f"<p>{len(r.labels)} submissions, {len(r.code_pairs)} pairs. Code: copydetect "
            "winnowing per exercise, starter code as boilerplate, names and comments ignored. "
            "A high score is a reason to read both submissions, not a verdict.</p>",
            '<img src="pair_scores.png" alt="distribution of pair scores">',
            "<h2>Top pairs by code</h2>", pages.table(header, rows(r.code_pairs), numeric=numeric),
            "<h2>Top pairs by free-text answers</h2>",
            pages.table(header, rows(r.answer_pairs), numeric=numeric)]
    pages.write(out / "index.html", pages.page(f"{lab_id}: similarity", "\n".join(body)))
    (out / "similarity.json").write_text(json.dumps({
        "exercises": r.exercises, "labels": r.labels,
        "pairs": [{"a": p.a, "b": p.b, "code": p.score, "answers": p.answers,
                   "per_exercise": p.per_exercise, "per_question": p.per_question}
                  for p in r.code_pairs]}, indent=1))


def _histogram(code: list[float], answers: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    for ax, values, title in zip(axes, (code, answers), ("code", "free-text answers")):
        ax.hist(values, bins=25, range=(0, 1), color="#4c72b0", edgecolor="white")
        ax.set_yscale("log")
        ax.set(title=f"pair scores: {title}", xlabel="similarity", ylabel="pairs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
