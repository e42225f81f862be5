"""Before you submit: rebuild what the autograder will run of this notebook and run the public
checks on it, in a fresh process.

The autograder does not run the notebook top to bottom: for each exercise it runs the imports
and the top-level statements that exercise needs (:mod:`labkit.checking.program`), then the
exercise's checks. A notebook that works in the kernel can therefore still lose points: a name
set in a cell the grader skips, a definition that only exists in the kernel's memory, a
statement that fails without the data. This cell shows all of that before the deadline::

    lk.before_submit()

Where the notebook comes from, in order: the ``path`` argument; in Colab the live notebook
(``google.colab._message.blocking_request("get_ipynb")``); the notebook file Jupyter or VS Code
names (as last saved); else the kernel's input history (the cells you ran, in that order).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from labkit.checking.kernel import Report, format_table, lab_ids, public_lab, run_public
from labkit.checking.program import (
    Program,
    build_program,
    missing_import_notes,
    skipped_note,
    snippet,
    static_errors,
    unbound_notes,
)

# ----------------------------------------------------------------------------- the notebook


def _colab_notebook() -> nbformat.NotebookNode | None:
    try:
        from google.colab import _message  # type: ignore[import-not-found]
    except ImportError:
        return None
    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=30)
    data = reply.get("ipynb") if isinstance(reply, dict) else None
    return nbformat.from_dict(data) if data else None


def _user_ns() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell.user_ns if shell is not None else {}
    except ImportError:
        return {}


def _notebook_file(ns: dict) -> Path | None:
    for candidate in (os.environ.get("JPY_SESSION_NAME"), ns.get("__vsc_ipynb_file__"),
                      ns.get("__session__")):
        if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    return None


def current_notebook(path: str | Path | None = None) -> tuple[nbformat.NotebookNode, str]:
    """(notebook, where it came from): see the module docstring for the order."""
    if path is not None:
        return nbformat.read(str(path), as_version=4), f"{path}"
    nb = _colab_notebook()
    if nb is not None:
        return nb, "the notebook open in Colab"
    ns = _user_ns()
    found = _notebook_file(ns)
    if found is not None:
        return (nbformat.read(str(found), as_version=4),
                f"{found} as last saved (save it first: File > Save)")
    cells = [c for c in ns.get("In", [])[1:] if isinstance(c, str) and c.strip()]
    if cells:
        cells = [c for c in cells if "before_submit(" not in c]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        return nb, ("this kernel's input history (the cells you ran, in the order you ran them; "
                    "pass path=\"your_notebook.ipynb\" to check the file itself)")
    raise FileNotFoundError("no notebook found: pass its path, "
                            "lk.before_submit(\"lab02_segmentation.ipynb\")")


def detect_lab(program: Program) -> str:
    """The lab whose exercises the notebook defines (most of them)."""
    defined = program.defined_names()
    scores = {lid: sum(e.name in defined for e in public_lab(lid).exercises) for lid in lab_ids()}
    best = max(scores.values(), default=0)
    winners = [lid for lid, n in scores.items() if n == best]
    if not best or len(winners) > 1:
        raise ValueError("cannot tell which lab this notebook is: pass lab=\"lab02\"")
    return winners[0]


# ----------------------------------------------------------------------------- the checks


def _run(statements, ns: dict) -> list[str]:
    """Run statements as the grader does: a failing one is reported, the rest still run."""
    failed = []
    for st in statements:
        try:
            exec(compile(st.padded(), f"<code cell {st.cell}>", "exec"), ns)  # noqa: S102
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
            failed.append(f"code cell {st.cell}: `{snippet(st.source, 60)}` failed: "
                          f"{type(exc).__name__}: {str(exc)[:200]}; the rest of the cell ran.")
    return failed


def check_program(program: Program, lab_id: str) -> tuple[Report, list[str]]:
    """Each exercise in a namespace of its own, with the statements the grader runs for it
    (the other exercises: the notebook's own versions), then its public checks."""
    lab = public_lab(lab_id)
    names = [e.name for e in lab.exercises]
    notes = list(program.notes) + unbound_notes(lab, program)
    statics = static_errors(lab, program)
    notes += [f"`{k}`: {v}" for k, v in statics.items()]
    partners: dict = {"__name__": "__partners__"}
    failed = dict.fromkeys(_run(program.with_imports(program.needed(names)), partners), "")
    report = Report()
    for ex in names:
        ns = {"__name__": "__main__"}
        for f in _run(program.program_for(ex, names), ns):
            failed[f] = f"{failed.get(f) or ''}, `{ex}`".lstrip(", ")
        for other in names:
            if other != ex and other in partners:
                ns.setdefault(other, partners[other])
        report.verdicts += run_public(lab, ns, [ex], statics).verdicts
    notes += [f + (f" (needed by {who})" if who else "") for f, who in failed.items()]
    notes += missing_import_notes(lab, program)
    skipped = skipped_note(lab, program)
    if skipped:
        notes.append(skipped)
    return report, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.checking.submit")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--lab", default="")
    parser.add_argument("--source", default="")
    args = parser.parse_args(argv)
    nb = nbformat.read(str(args.notebook), as_version=4)
    program = build_program(nb)
    lab_id = args.lab or detect_lab(program)
    print(f"Before you submit ({lab_id}): what the autograder runs of "
          f"{args.source or args.notebook}, in a fresh process, with the public checks.\n"
          "Hidden checks are graded after the due date and are not run here.\n", flush=True)
    report, notes = check_program(program, lab_id)
    print(format_table(report.verdicts))
    if notes:
        print("\nWhat the grader will do differently from your kernel:")
        for note in notes:
            print(f"- {note}")
    else:
        print("\nThe grader runs every statement your exercises need; nothing is missing.")
    print(f"\nPublic score: {report.score:g}/{report.max_score:g}.", flush=True)
    return 0 if report.passed else 1


def before_submit(path: str | Path | None = None, *, lab: str | None = None,
                  timeout: float = 900) -> int:
    """Rebuild what the autograder will run of this notebook and run it, in a fresh process,
    against the public checks; print the public score table and what the grader will skip,
    what fails, and any name an exercise uses that the grader will not have."""
    nb, source = current_notebook(path)
    with tempfile.TemporaryDirectory(prefix="labkit-submit-") as tmp:
        copy = Path(tmp) / "submission.ipynb"
        nbformat.write(nb, str(copy))
        env = dict(os.environ, LABKIT_SMOKE="1", LABKIT_OFFLINE="1", MPLBACKEND="Agg")
        cmd = [sys.executable, "-m", "labkit.checking.submit", str(copy), "--source", source]
        if lab:
            cmd += ["--lab", lab]
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            for line in proc.stdout:  # streamed: the student sees progress
                print(line, end="", flush=True)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"stopped after {timeout:.0f} s: an exercise runs for too long")
            return 124


if __name__ == "__main__":
    sys.exit(main())
