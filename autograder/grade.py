"""Grade one submission (or a folder of them) and write Gradescope ``results.json``.

What runs: the submission's notebook is parsed (never imported) in this trusted parent; each
exercise's part of it (:mod:`labkit.checking.program`) runs in a jailed child (:mod:`autograder.runner`,
:mod:`autograder.sandbox`), which returns raw outputs; the lab's unittest checks compare them with
the references in this process, and only this process writes ``results.json``, atomically.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
import time
import traceback
import unittest
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.runner import (
    code_cells,
    program_of_cells,
    run_program,
)
from autograder.sandbox import Call, jail_level, safe_read
from autograder.spec import GradingContext, LabSpec
from labkit.checking.program import (
    Program,
    build_program,
    missing_import_notes,
    skipped_note,
    static_errors,
    unbound_notes,
)
from labkit.checking.spec import load_results, save_results, unmet_needs

MAX_NOTEBOOK_BYTES = 20 << 20


# ----------------------------------------------------------------------------- references


class References(dict):
    """Reference outputs per call id, plus the solution's code cells (the reference
    implementation every other exercise is bound to while one exercise is graded)."""

    def __init__(self, results=(), solution_cells: list[str] | None = None):
        super().__init__(results)
        self.solution_cells = list(solution_cells or [])
        self._program: Program | None = None

    @property
    def solution(self) -> Program:
        if self._program is None:
            self._program = program_of_cells(self.solution_cells)
        return self._program


def references_path(lab: LabSpec, dist: Path) -> Path:
    return dist / "autograder" / lab.id / "references.npz"


def save_references(results: References, path: Path) -> None:
    """Write reference outputs (arrays + JSON values + solution cells) into one pickle-free
    .npz, mode 600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    save_results(results, tmp, {"__solution__": getattr(results, "solution_cells", [])})
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_references(path: Path) -> References:
    results, extra = load_results(path)
    return References(results, extra.get("__solution__", []))


def lab_calls(lab: LabSpec) -> list[Call]:
    return lab.make_calls()


def check_references(lab: LabSpec, refs: References) -> None:
    """RuntimeError when the solution raised on a call that no error-handling check expects."""
    expected = check_map(lab).raised_calls
    for cid, res in refs.items():
        if not res.ok and cid not in expected:
            raise RuntimeError(f"the solution failed on check input {cid}: {res.error}")


def compute_references(lab: LabSpec) -> References:
    """Run the master notebook's solution through every probe call (sandboxed like students)."""
    master = nbmod.read_notebook(lab.master_path)
    solution_nb = nbmod.make_solution(master)
    cells = code_cells(solution_nb)
    solution = program_of_cells(cells)
    calls = lab.make_calls()
    outcome = run_program(lab, solution, solution, calls, budget=3600)
    return References(outcome.results, cells)


# ----------------------------------------------------------------------------- submission


@dataclass
class Submission:
    notebook: nbformat.NotebookNode | None
    name: str
    notes: list[str]
    error: str | None = None


def _candidates(path: Path) -> list[Path]:
    """Notebooks under ``path``, shallowest first (regular files only, no symlinks)."""
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints" and not d.startswith("."))
        for f in sorted(files):
            p = Path(root) / f
            if f.endswith(".ipynb") and not p.is_symlink():
                found.append(p)
        if len(found) > 200:
            break
    return sorted(found, key=lambda p: (len(p.relative_to(path).parts), str(p)))


def find_notebook(lab: LabSpec, path: Path) -> Submission:
    """Pick the submitted notebook (a file, or a folder as Gradescope lays it out): the one
    with the expected name nearest the top of the submission wins."""
    expected = lab.notebook_name
    notes: list[str] = []
    if path.is_dir():
        found = _candidates(path)
        exact = [p for p in found if p.name == expected]
        if exact:
            chosen = exact[0]
            if len(found) > 1:
                others = ", ".join(str(p.relative_to(path)) for p in found if p != chosen)
                notes.append(f"Graded {chosen.relative_to(path)}; other notebooks were "
                             f"ignored: {others[:300]}.")
        elif len(found) == 1:
            chosen = found[0]
            notes.append(f"Expected a notebook named {expected}; graded {chosen.name} instead.")
        elif not found:
            return Submission(None, expected, [], f"No notebook found: submit {expected}.")
        else:
            names = ", ".join(p.name for p in found[:10])
            return Submission(
                None, expected, [],
                f"Several notebooks were submitted ({names}) and none is named {expected}: "
                f"submit exactly one notebook named {expected}.",
            )
    elif path.exists() or path.is_symlink():
        chosen = path
    else:
        return Submission(None, expected, [], f"Submission not found: {path}")
    try:
        data = safe_read(chosen, MAX_NOTEBOOK_BYTES)
    except ValueError as exc:
        if "larger" in str(exc):
            return Submission(None, chosen.name, notes,
                              f"{chosen.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB: clear "
                              "the outputs (Edit > Clear all outputs) and resubmit.")
        return Submission(None, chosen.name, notes,
                          f"{chosen.name} is not a regular file: submit the .ipynb file itself.")
    except OSError as exc:
        return Submission(None, chosen.name, notes, f"{chosen.name} could not be read ({exc}).")
    try:
        text = data.decode("utf-8")
        nb, more = nbmod.read_notebook_text(text, name=chosen.name)
    except UnicodeDecodeError:
        return Submission(None, chosen.name, notes, f"{chosen.name} is not a text (UTF-8) file.")
    except nbmod.NotebookError as exc:
        return Submission(None, chosen.name, notes, str(exc))
    except RecursionError:
        return Submission(None, chosen.name, notes,
                          f"{chosen.name} is nested too deeply to be a notebook.")
    return Submission(nb, chosen.name, notes + more)


# ----------------------------------------------------------------------------- static checks


# ----------------------------------------------------------------------------- running checks


def _suite(lab: LabSpec, context: GradingContext) -> unittest.TestSuite:
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for cls in lab.test_classes():
        cls.context = context
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def _run_suite(suite: unittest.TestSuite) -> dict:
    from gradescope_utils.autograder_utils.json_test_runner import JSONTestRunner

    stream = io.StringIO()
    runner = JSONTestRunner(stream=stream, visibility="visible", stdout_visibility="hidden",
                            failure_prefix="")
    runner.run(suite)
    return json.loads(stream.getvalue())


@dataclass
class CheckMap:
    """What the checks read, from their declarations."""

    visible_calls: set[str]
    raised_calls: set[str]  # calls whose exception is the point (error-handling checks)
    needs: dict[str, tuple[str, ...]]  # check number -> checks it needs


def check_map(lab: LabSpec) -> CheckMap:
    visible = {call.id for c in lab.checks if not c.hidden for call in c.calls}
    raised = {s.call.id for c in lab.checks for s in c.steps if s.raises}
    return CheckMap(visible, raised, {c.number: c.needs for c in lab.checks if c.needs})


def apply_needs(data: dict, needs: dict[str, tuple[str, ...]]) -> None:
    """An error-handling check counts only when the checks it needs earned full marks."""
    by_number = {str(t.get("number", "")): t for t in data.get("tests", [])}
    passed = {n: t.get("score", 0) >= t.get("max_score", 0) for n, t in by_number.items()}
    for number, message in unmet_needs(needs, passed).items():
        if number in by_number and by_number[number].get("score"):
            by_number[number].update(score=0.0, output=message)


def listed_tests(lab: LabSpec, message: str) -> dict:
    """Every check of the lab at score 0 with ``message`` (when nothing could be graded)."""
    tests = [{"name": c.name, "score": 0.0, "max_score": c.weight, "output": message,
              "visibility": "after_due_date" if c.hidden else "visible", "number": c.number}
             for c in lab.checks]
    tests.sort(key=lambda t: _number_key(t["number"]))
    return {"tests": tests}


def _number_key(number: str):
    return [int(p) if p.isdigit() else p for p in str(number).split(".")]


def finalize(data: dict, notes: list[str]) -> dict:
    """Clamp every score to [0, max], reject NaN, compute totals and the summary text."""
    tests = []
    for t in data.get("tests", []):
        max_score = t.get("max_score", 0.0)
        try:
            max_score = float(max_score)
        except (TypeError, ValueError):
            max_score = 0.0
        if not math.isfinite(max_score) or max_score < 0:
            max_score = 0.0
        score = t.get("score", 0.0)
        try:
            score = float(score)
        except (TypeError, ValueError):
            score = 0.0
        if not math.isfinite(score):
            score = 0.0
            t["output"] = (t.get("output", "") + "\n(score was not a number: set to 0)").strip()
        t["score"] = min(max(score, 0.0), max_score)
        t["max_score"] = max_score
        t.setdefault("visibility", "visible")
        t["output"] = str(t.get("output", ""))[:4000]
        tests.append(t)
    tests.sort(key=lambda t: _number_key(t.get("number", "")))
    public = [t for t in tests if t["visibility"] == "visible"]
    hidden = [t for t in tests if t["visibility"] != "visible"]
    passed = sum(t["score"] >= t["max_score"] for t in public)
    summary = f"Public checks passed: {passed}/{len(public)}."
    if hidden:
        summary += f" {len(hidden)} hidden checks are graded and shown after the due date."
    out = {
        "score": round(sum(t["score"] for t in tests), 4),
        "output": "\n".join([summary, *notes]).strip(),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if "execution_time" in data:
        out["execution_time"] = data["execution_time"]
    return out


def write_results(results: dict, out: Path) -> None:
    """Atomic write (temp file + rename) of valid JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=out.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out)


def private_paths(lab: LabSpec, submission: Path | None = None,
                  references_file: Path | None = None) -> list[str]:
    """Folders hidden from student code (when the sandbox can): the repository's master
    notebooks and build output, the hidden checks (``autograder/labs``), the references' folder
    and the solution copies next to it, and the submission itself (in batch mode: the other
    students' work).
    The sandbox never hides a folder that holds its own box or the Python installation."""
    import autograder.labs
    from autograder.config import REPO_ROOT

    hidden_checks = Path(autograder.labs.__file__).parent
    paths = [REPO_ROOT / "labs", REPO_ROOT / "dist", REPO_ROOT / ".git", lab.master_path.parent,
             hidden_checks]
    if references_file is not None:
        ref_dir = Path(references_file).resolve().parent
        paths.append(ref_dir)
        if ref_dir.parent.name == "autograder":  # <dist>/autograder/<lab>/references.npz
            paths.append(ref_dir.parent.parent / "solutions")
    if submission is not None:
        paths.append(submission if submission.is_dir() else submission.parent)
    out: list[str] = []
    for p in paths:
        p = p.resolve()  # absolute: the child resolves mount points from its own folder
        if p.is_dir() and str(p) not in out:
            out.append(str(p))
    return out


def grade_submission(lab: LabSpec, submission: Path, *, references: References,
                     hide: list[str] | None = None, budget: float | None = None,
                     session=None) -> dict:
    """Grade one submission; always returns a complete, finalized results dict.

    ``hide``: folders to hide from student code in the fallback jail (default:
    :func:`private_paths`)."""
    start = time.monotonic()
    try:
        sub = find_notebook(lab, submission)
        if sub.notebook is None:
            return finalize(listed_tests(lab, sub.error or "no notebook"), [sub.error or ""])
        program = build_program(sub.notebook)
        notes = list(sub.notes) + program.notes + unbound_notes(lab, program)
        statics = static_errors(lab, program)
        cmap = check_map(lab)
        calls = lab_calls(lab)
        hide = private_paths(lab, submission) if hide is None else hide
        solution = references.solution if isinstance(references, References) else program
        outcome = run_program(lab, program, solution, calls, skip=set(statics),
                              visible=cmap.visible_calls, hide=hide, budget=budget,
                              session=session)
        notes += outcome.notes
        notes += missing_import_notes(lab, program)
        skipped = skipped_note(lab, program)
        if skipped:
            notes.append(skipped)
        context = GradingContext(outcome.results, references, statics, notes)
        data = _run_suite(_suite(lab, context))
        apply_needs(data, cmap.needs)
        if outcome.ran_out_in:
            for t in data.get("tests", []):
                if "not run: the time budget" in t.get("output", ""):
                    t["output"] = (f"not run: time budget spent in `{outcome.ran_out_in}` "
                                   f"({budget_text(budget)}).")
        results = finalize(data, notes)
        results["extra_data"] = {"isolation": outcome.isolation or jail_level()}
    except Exception as exc:  # the grader itself failed: still list every check
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        message = f"The autograder hit an internal error ({detail}); please tell the course staff."
        try:
            results = finalize(listed_tests(lab, message), [message])
        except Exception:
            results = {"score": 0.0, "output": message, "tests": []}
    results["execution_time"] = round(time.monotonic() - start, 2)
    return results


def budget_text(budget: float | None) -> str:
    from autograder.runner import budget_s

    return f"{budget if budget is not None else budget_s():.0f} s per submission"


def grade(lab: LabSpec, submission: Path, out: Path | None, *, references_file: Path | None = None,
          quiet: bool = False) -> dict:
    """Grade, write results.json (always), print a table; returns the results."""
    start = time.monotonic()
    try:
        refs = _references(lab, references_file)
        results = grade_submission(lab, submission, references=refs, hide=private_paths(
            lab, submission, references_file))
    except Exception as exc:
        message = f"The autograder could not start ({exc}); please tell the course staff."
        results = finalize(listed_tests(lab, message), [message])
    results["execution_time"] = round(time.monotonic() - start, 2)
    if out is not None:
        write_results(results, out)
    if not quiet:
        print_table(results)
        iso = results.get("extra_data", {}).get("isolation")
        if iso:
            print(f"[autograder] isolation: {iso}", file=sys.stderr)
    return results


def _references(lab: LabSpec, path: Path | None) -> References:
    from autograder.config import REPO_ROOT

    path = path or references_path(lab, REPO_ROOT / "dist")
    if path.exists():
        return load_references(path)
    if lab.master_path.exists():
        print(f"[autograder] computing references from {lab.master_path} -> {path}",
              file=sys.stderr)
        refs = compute_references(lab)
        save_references(refs, path)
        return load_references(path)
    raise FileNotFoundError(f"no references at {path} and no master notebook to compute them")


def print_table(results: dict) -> None:
    rows = [(t.get("number", ""), t["name"], f"{t['score']:g}/{t['max_score']:g}",
             "" if t["visibility"] == "visible" else "hidden") for t in results["tests"]]
    w = max([len(r[1]) for r in rows] + [10])
    print(f"{'#':<6} {'check':<{w}} {'score':>9}  ")
    for number, name, score, vis in rows:
        print(f"{number:<6} {name:<{w}} {score:>9}  {vis}")
    total = sum(t["max_score"] for t in results["tests"])
    print(f"{'':<6} {'TOTAL':<{w}} {results['score']:g}/{total:g}".rstrip())
    print(results["output"])
    for t in results["tests"]:
        if t["score"] < t["max_score"] and t.get("output"):
            print(f"- {t.get('number', '')} {t['name']}: {t['output'].strip()}")
