"""Grade one submission (or a folder of them) and write Gradescope ``results.json``.

What runs: the submission's notebook is parsed (never imported) in this trusted parent; its
definitions-only program (see :mod:`autograder.notebook`) runs in sandboxed children
(:mod:`autograder.sandbox`), which return plain data; the lab's unittest checks compare that data
with references in this process, and only this process writes ``results.json``, atomically.
"""

from __future__ import annotations

import ast
import csv
import importlib
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

import numpy as np

from autograder import notebook as nbmod
from autograder.sandbox import CallResult, Limits, run_calls
from autograder.spec import GradingContext, LabCase, LabSpec

MAX_NOTEBOOK_BYTES = 20 << 20


# ----------------------------------------------------------------------------- references


def references_path(lab: LabSpec, dist: Path) -> Path:
    return dist / "autograder" / lab.id / "references.npz"


def save_references(results: dict[str, CallResult], path: Path) -> None:
    """Write reference outputs (arrays + JSON values) into one pickle-free .npz, mode 600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    values = {}
    for cid, res in results.items():
        if not res.ok:
            raise RuntimeError(f"the solution failed on check input {cid}: {res.error}")
        values[cid] = res.values
        for key, arr in res.arrays.items():
            arrays[f"{cid}/{key}"] = arr
    arrays["__values__"] = np.frombuffer(json.dumps(values).encode(), dtype=np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_references(path: Path) -> dict[str, CallResult]:
    with np.load(path, allow_pickle=False) as data:
        values = json.loads(bytes(data["__values__"]).decode())
        out = {cid: CallResult(values=v) for cid, v in values.items()}
        for name in data.files:
            if name == "__values__":
                continue
            cid, key = name.split("/", 1)
            out[cid].arrays[key] = data[name]
    return out


def compute_references(lab: LabSpec) -> dict[str, CallResult]:
    """Run the master notebook's solution through every probe call (sandboxed like students)."""
    master = nbmod.read_notebook(lab.master_path)
    program = nbmod.extract_program(nbmod.make_solution(master))
    report = run_calls(program.cells, lab.make_calls(), lab.probes_file, limits=grading_limits())
    return report.results


def grading_limits() -> Limits:
    """Limits for graded children; ``AUTOGRADER_MEMORY_MB`` etc. override them (Gradescope
    has 768 MB)."""
    env = os.environ.get
    return Limits(
        setup_s=float(env("AUTOGRADER_SETUP_S", 90)),
        call_s=float(env("AUTOGRADER_CALL_S", 20)),
        memory_bytes=int(env("AUTOGRADER_MEMORY_MB", 1536)) << 20,
    )


# ----------------------------------------------------------------------------- submission


@dataclass
class Submission:
    notebook: nbmod.nbformat.NotebookNode | None
    name: str
    notes: list[str]
    error: str | None = None


def find_notebook(lab: LabSpec, path: Path) -> Submission:
    """Pick the submitted notebook (a file, or a folder as Gradescope lays it out)."""
    expected = lab.notebook_name
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        exact = [p for p in found if p.name == expected]
        notes: list[str] = []
        if exact:
            chosen = exact[0]
            if len(found) > 1:
                others = ", ".join(p.name for p in found if p != chosen)
                notes.append(f"Graded {expected}; other notebooks were ignored: {others}.")
        elif len(found) == 1:
            chosen = found[0]
            notes.append(f"Expected a notebook named {expected}; graded {chosen.name} instead.")
        elif not found:
            return Submission(None, expected, [], f"No notebook found: submit {expected}.")
        else:
            names = ", ".join(p.name for p in found)
            return Submission(
                None, expected, [],
                f"Several notebooks were submitted ({names}) and none is named {expected}: "
                f"submit exactly one notebook named {expected}.",
            )
    elif path.is_file():
        chosen, notes = path, []
    else:
        return Submission(None, expected, [], f"Submission not found: {path}")
    try:
        if chosen.stat().st_size > MAX_NOTEBOOK_BYTES:
            return Submission(None, chosen.name, notes,
                              f"{chosen.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB: clear "
                              "the outputs (Edit > Clear all outputs) and resubmit.")
        text = chosen.read_bytes().decode("utf-8")
        nb, more = nbmod.read_notebook_text(text, name=chosen.name)
    except UnicodeDecodeError:
        return Submission(None, chosen.name, notes, f"{chosen.name} is not a text (UTF-8) file.")
    except nbmod.NotebookError as exc:
        return Submission(None, chosen.name, notes, str(exc))
    return Submission(nb, chosen.name, notes + more)


# ----------------------------------------------------------------------------- static checks


def static_errors(lab: LabSpec, program: nbmod.Program) -> dict[str, str]:
    """Per exercise: missing definition, wrong signature or a forbidden name (AST only)."""
    errors: dict[str, str] = {}
    for ex in lab.exercises:
        node = program.function_node(ex.name)
        if node is None:
            errors[ex.name] = (
                f"`{ex.name}` is not defined in the notebook (renamed, deleted, or its cell has "
                "a syntax error?)."
            )
            continue
        if ex.kind == "class" and not isinstance(node, ast.ClassDef):
            errors[ex.name] = f"`{ex.name}` should be a class."
            continue
        if ex.kind == "function":
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                errors[ex.name] = f"`{ex.name}` should be a function."
                continue
            args = [a.arg for a in node.args.posonlyargs + node.args.args]
            if tuple(args[: len(ex.params)]) != ex.params:
                want = ", ".join(ex.params)
                errors[ex.name] = (
                    f"`{ex.name}` has the wrong signature: its parameters are ({', '.join(args)}), "
                    f"expected ({want}, ...) as in the stub."
                )
                continue
        used = _names_used(program, node)
        bad = sorted(set(ex.forbidden) & used)
        if bad:
            errors[ex.name] = (
                f"`{ex.name}` uses {', '.join(bad)}, which this exercise asks you to implement "
                "yourself; the check gives no credit for it."
            )
    return errors


def _names_used(program: nbmod.Program, node: ast.AST, seen: set[str] | None = None) -> set[str]:
    """Names and attributes used by ``node`` and by the notebook functions it calls.

    A notebook-level import used by ``node`` counts with its whole dotted path
    (``from labkit.metrics import iou_from_confmat as f`` then ``f(...)`` uses ``metrics`` and
    ``iou_from_confmat``); the function's own parameters and local variables do not count as
    uses of a global of the same name (a local ``metrics = {}`` is not labkit's module)."""
    seen = seen if seen is not None else set()
    local: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        local |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        local |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        local |= {n.id for n in ast.walk(node)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if sub.id not in local:
                names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.alias):
            names.update(sub.name.split("."))
    own = getattr(node, "name", None)
    names.discard(own)
    imports = _notebook_imports(program)
    for name in list(names):
        names.update(imports.get(name, ()))
    for name in list(names):
        if name in seen:
            continue
        seen.add(name)
        callee = program.function_node(name)
        if callee is not None and callee is not node:
            names |= _names_used(program, callee, seen)
    return names


def _notebook_imports(program: nbmod.Program) -> dict[str, set[str]]:
    """Top-level name bound by an import -> the parts of what it imports."""
    out: dict[str, set[str]] = {}
    for _, src in program.cells:
        for stmt in ast.walk(ast.parse(src)):
            if isinstance(stmt, ast.Import):
                for al in stmt.names:
                    bound = al.asname or al.name.split(".")[0]
                    out.setdefault(bound, set()).update(al.name.split("."))
            elif isinstance(stmt, ast.ImportFrom):
                for al in stmt.names:
                    parts = (stmt.module or "").split(".") + [al.name]
                    out.setdefault(al.asname or al.name, set()).update(p for p in parts if p)
    return out


# ----------------------------------------------------------------------------- running checks


def _suite(lab: LabSpec, context: GradingContext) -> unittest.TestSuite:
    module = importlib.import_module(lab.checks_module)
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, LabCase) and obj is not LabCase:
            obj.context = context
            for meth in loader.getTestCaseNames(obj):
                fn = getattr(obj, meth)
                if hasattr(fn, "__score__"):  # partial_credit keeps the last score on the function
                    del fn.__score__
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


def _run_suite(suite: unittest.TestSuite) -> dict:
    from gradescope_utils.autograder_utils.json_test_runner import JSONTestRunner

    stream = io.StringIO()
    runner = JSONTestRunner(stream=stream, visibility="visible", stdout_visibility="hidden",
                            failure_prefix="")
    runner.run(suite)
    return json.loads(stream.getvalue())


def listed_tests(lab: LabSpec, message: str) -> dict:
    """Every check of the lab at score 0 with ``message`` (when nothing could be graded)."""
    module = importlib.import_module(lab.checks_module)
    tests = []
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, LabCase) and obj is not LabCase:
            for meth in unittest.TestLoader().getTestCaseNames(obj):
                fn = getattr(obj, meth)
                doc = (fn.__doc__ or meth).strip().splitlines()[0]
                entry = {
                    "name": doc,
                    "score": 0.0,
                    "max_score": float(getattr(fn, "__weight__", 0) or 0),
                    "output": message,
                    "visibility": getattr(fn, "__visibility__", "visible"),
                }
                number = getattr(fn, "__number__", None)
                if number:
                    entry["number"] = number
                tests.append(entry)
    tests.sort(key=lambda t: _number_key(t.get("number", "")))
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
    """Folders hidden from student code (when the sandbox can): the repository's master notebooks and build output, the references' folder and the solution
    copies next to it, and the submission itself (in batch mode: the other students' work).
    The sandbox never hides a folder that holds its own box or the Python installation."""
    from autograder.config import REPO_ROOT

    paths = [REPO_ROOT / "labs", REPO_ROOT / "dist", lab.master_path.parent]
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


def grade_submission(lab: LabSpec, submission: Path, *, references: dict[str, CallResult],
                     hide: list[str] | None = None) -> dict:
    """Grade one submission; always returns a complete, finalized results dict.

    ``hide``: folders to hide from student code (default: :func:`private_paths`)."""
    try:
        sub = find_notebook(lab, submission)
        if sub.notebook is None:
            return finalize(listed_tests(lab, sub.error or "no notebook"), [sub.error or ""])
        program = nbmod.extract_program(sub.notebook)
        notes = list(sub.notes) + program.notes
        statics = static_errors(lab, program)
        calls = lab.make_calls()
        hide = private_paths(lab, submission) if hide is None else hide
        report = run_calls(program.cells, calls, lab.probes_file, limits=grading_limits(),
                           hide=hide)
        for e in report.cell_errors:
            notes.append(
                f"cell {e['cell']}: {e['type']}: {e['message']}".rstrip(": ")
                + (" (this cell stopped the process, so it was skipped and the notebook graded "
                   "without it)" if e.get("skipped") else
                   " (definitions after it in the same cell were not run)")
            )
        for ex in lab.exercises:
            if ex.name not in statics and report.defined is not None \
                    and ex.name not in report.defined:
                statics[ex.name] = (
                    f"`{ex.name}` was not defined when the notebook's definitions ran: an error "
                    "earlier in its cell stopped the cell (see the notes at the top)."
                )
        context = GradingContext(report.results, references, statics, notes)
        data = _run_suite(_suite(lab, context))
        return finalize(data, notes)
    except Exception as exc:  # the grader itself failed: still list every check
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        message = f"The autograder hit an internal error ({detail}); please tell the course staff."
        try:
            return finalize(listed_tests(lab, message), [message])
        except Exception:
            return {"score": 0.0, "output": message, "tests": []}


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
    results["execution_time"] = f"{time.monotonic() - start:.2f}"
    if out is not None:
        write_results(results, out)
    if not quiet:
        print_table(results)
    return results


def _references(lab: LabSpec, path: Path | None) -> dict[str, CallResult]:
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


def grade_batch(lab: LabSpec, export_dir: Path, csv_path: Path, *,
                references_file: Path | None = None) -> list[dict]:
    """Grade a Gradescope export (one folder per submission, submission_metadata.yml) into a CSV."""
    refs = _references(lab, references_file)
    folders = sorted(p for p in export_dir.iterdir() if p.is_dir())
    meta = _export_metadata(export_dir)
    rows = []
    hide = private_paths(lab, export_dir, references_file)
    for folder in folders:
        results = grade_submission(lab, folder, references=refs, hide=hide)
        write_results(results, folder / "results.json")
        who = meta.get(folder.name, {})
        row = {"submission": folder.name, "name": who.get("name", ""),
               "email": who.get("email", ""),
               "score": results["score"],
               "max_score": sum(t["max_score"] for t in results["tests"])}
        for t in results["tests"]:
            row[f"{t.get('number', '')} {t['name']}".strip()] = t["score"]
        rows.append(row)
        print(f"{folder.name}: {results['score']:g}", file=sys.stderr)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _export_metadata(export_dir: Path) -> dict[str, dict]:
    """Submitter names/emails from a Gradescope export's submission_metadata.yml, if readable."""
    path = export_dir / "submission_metadata.yml"
    out: dict[str, dict] = {}
    if not path.exists():
        return out
    try:
        import yaml  # PyYAML comes with jupyter-book; optional here
    except ImportError:
        return out
    try:
        data = yaml.safe_load(path.read_text()) or {}
        for key, entry in data.items():
            subs = (entry or {}).get(":submitters") or entry.get("submitters") or []
            if subs:
                s = subs[0]
                out[str(key)] = {"name": s.get(":name") or s.get("name", ""),
                                 "email": s.get(":email") or s.get("email", "")}
    except Exception:
        pass
    return out
