"""Run a submission's program exercise by exercise, within one time budget per submission.

For each exercise of the lab, one jailed child (:func:`autograder.sandbox.run_job`) runs the
imports and the statements that exercise needs (:mod:`labkit.checking.program`), with every other
exercise bound to the reference implementation, then that exercise's calls, visible ones first.
The submission's budget (``course.toml`` ``[grader] budget_s``, default 360 s, well under
Gradescope's 10 minutes) bounds everything: when it is spent, the calls left say in which
exercise it ran out.
"""

from __future__ import annotations

import ast
import os
import re
import time
from dataclasses import dataclass, field

import nbformat

from autograder.sandbox import Call, CallResult, Job, Limits, Session
from autograder.spec import LabSpec
from labkit.checking.program import Program, build_program, snippet

DEFAULT_BUDGET_S = 360.0


def budget_s() -> float:
    """Wall-clock budget of one submission: ``$AUTOGRADER_BUDGET_S``, else course.toml."""
    env = os.environ.get("AUTOGRADER_BUDGET_S")
    if env:
        return float(env)
    try:
        from autograder.config import REPO_ROOT

        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        with open(REPO_ROOT / "course.toml", "rb") as fh:
            return float(tomllib.load(fh).get("grader", {}).get("budget_s", DEFAULT_BUDGET_S))
    except (OSError, ValueError, KeyError, ImportError):
        return DEFAULT_BUDGET_S


def grading_limits() -> Limits:
    """Limits for graded children; ``AUTOGRADER_MEMORY_MB`` etc. override them (Gradescope
    has 768 MB)."""
    env = os.environ.get
    return Limits(
        setup_s=float(env("AUTOGRADER_SETUP_S", 90)),
        call_s=float(env("AUTOGRADER_CALL_S", 20)),
        memory_bytes=int(env("AUTOGRADER_MEMORY_MB", 1536)) << 20,
    )


def program_of_cells(cells: list[str]) -> Program:
    """The program of a notebook given as its code cells' sources (the stored solution)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    return build_program(nb)


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.get("cell_type") == "code"]


@dataclass
class Outcome:
    """Everything the run produced, for the checks and the notes."""

    results: dict[str, CallResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    isolation: str = ""
    ran_out_in: str | None = None  # the exercise during which the budget was spent


def _reference_for(solution: Program, exercise: str, names: list[str]) -> list[tuple]:
    """The solution's statements for every exercise but ``exercise`` (imports included).

    Never the graded exercise's own solution, not even as a dependency of another exercise
    (a reference EncoderBlock uses the student's MultiHeadSelfAttention): the child binds the
    student's object into the references' namespace instead."""
    others = [n for n in names if n != exercise]
    return [(st.index, f"reference {st.where}", st.padded())
            for st in solution.with_imports(solution.needed(others, stop={exercise}))]


def imported_modules(program: Program) -> list[str]:
    """Every module a program's import statements name (for the zygote to load once)."""
    out: list[str] = []
    for st in program.imports():
        try:
            tree = ast.parse(st.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out.append(node.module)
    return list(dict.fromkeys(out))


def order_calls(calls: list[Call], visible: set[str]) -> list[Call]:
    """Visible calls first (stable): a child sees a hidden input only after every visible
    output is in the parent's hands."""
    return [c for c in calls if c.id in visible] + [c for c in calls if c.id not in visible]


def run_program(lab: LabSpec, program: Program, solution: Program, calls: list[Call], *,
                skip: set[str] = frozenset(), visible: set[str] = frozenset(),
                hide: list[str] | None = None, budget: float | None = None,
                session: Session | None = None) -> Outcome:
    """Run every exercise's calls (except those in ``skip``) against ``program``; in
    ``session`` when given (a batch worker's warm jail), else in a jail of its own."""
    limits = grading_limits()
    deadline = time.monotonic() + (budget if budget is not None else budget_s())
    out = Outcome()
    if session is not None:
        session.new_submission(deadline)
        failed = _run_exercises(lab, program, solution, calls, skip, visible, session, out)
    else:
        with Session(lab.probes_file, limits=limits, deadline=deadline, hide=hide,
                     preload=imported_modules(solution)) as own:
            failed = _run_exercises(lab, program, solution, calls, skip, visible, own, out)
    out.notes += _statement_notes(program, failed)
    return out


def _run_exercises(lab, program, solution, calls, skip, visible, session, out) -> dict:
    names = [ex.name for ex in lab.exercises]
    deadline = session.deadline
    failed: dict[int, dict] = {}
    for ex in lab.exercises:
        ex_calls = order_calls([c for c in calls if c.exercise == ex.name], visible)
        if not ex_calls or ex.name in skip:
            continue
        if time.monotonic() >= deadline:
            for c in ex_calls:
                out.results[c.id] = _not_run(out.ran_out_in)
            continue
        statements = program.program_for(ex.name, names)
        job = Job(ex.name, [(st.index, st.where, st.padded()) for st in statements], ex_calls,
                  reference=_reference_for(solution, ex.name, names),
                  partners=[n for n in names if n != ex.name], forbidden=list(ex.forbidden))
        report = session.run_job(job)
        out.isolation = report.isolation or out.isolation
        for index, err in report.statement_errors.items():
            failed.setdefault(index, err)
        own = program.binding(ex.name)
        if own is not None and own.index in report.statement_errors:
            err = report.statement_errors[own.index]
            why = (f"`{ex.name}` was not defined: {own.where} failed: {err.get('type')}: "
                   f"{err.get('message', '')[:300]}")
            report.results = {cid: CallResult(error={"type": "NotDefined", "message": why,
                                                     "where": ""}) for cid in report.results}
        for cid, res in report.results.items():
            if not res.ok and res.error.get("type") == "NotRun" and out.ran_out_in is None \
                    and time.monotonic() >= deadline:
                out.ran_out_in = ex.name
            out.results[cid] = _explain(res, program, failed, ex.name, out.ran_out_in)
        if time.monotonic() >= deadline and out.ran_out_in is None:
            out.ran_out_in = ex.name
    return failed


def _not_run(where: str | None) -> CallResult:
    return CallResult(error={"type": "NotRun", "where": "", "message": (
        "not run: the time budget of this submission was spent" +
        (f" in `{where}`" if where else ""))})


_NAME_RE = re.compile(r"name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def _explain(res: CallResult, program: Program, failed: dict[int, dict], exercise: str,
             ran_out_in: str | None) -> CallResult:
    """Name the statement behind a NameError (it failed, or the grader does not run it)."""
    if res.ok:
        return res
    err = dict(res.error)
    if err.get("type") == "NotRun" and ran_out_in and "spent" in err.get("message", ""):
        err["message"] = f"not run: the time budget of this submission was spent in `{ran_out_in}`"
    m = _NAME_RE.search(err.get("message", ""))
    if err.get("type") == "NameError" and m:
        st = program.binding(m.group(1))
        if st is None:
            err["message"] += (f" (no top-level statement of the notebook defines "
                               f"`{m.group(1)}`; the grader runs only the notebook's top-level "
                               "statements that the exercise needs)")
        elif st.index in failed:
            f = failed[st.index]
            err["message"] += (f" (`{m.group(1)}` is defined by {st.where}, which failed: "
                               f"{f.get('type')}: {f.get('message', '')[:200]})")
    return CallResult(values=res.values, arrays=res.arrays, error=err)


def _statement_notes(program: Program, failed: dict[int, dict]) -> list[str]:
    notes = []
    for index in sorted(failed):
        st = program.statements[index] if index < len(program.statements) else None
        err = failed[index]
        where = (f"code cell {st.cell}: `{snippet(st.source, 60)}`" if st is not None
                 else f"statement {index}")
        notes.append(f"{where} failed: {err.get('type', 'Error')}"
                     + (f": {err['message'][:200]}" if err.get("message") else "")
                     + "; the rest of the cell ran.")
    return notes
