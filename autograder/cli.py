"""Command line: ``python -m autograder {assign,grade,report,answers,similarity,public} ...``
(see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.config import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_assign = sub.add_parser("assign", help="build student/solution copies and Gradescope zips")
    p_assign.add_argument("labs", nargs="*", help="lab ids (default: every lab with checks)")
    p_assign.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder")
    p_assign.add_argument("--no-verify", action="store_true",
                          help="skip grading the solution and student copies")
    p_assign.add_argument("--copies-only", action="store_true",
                          help="write the student and solution notebooks only (no checks, no zip)")
    p_assign.add_argument("--update-expected", action="store_true",
                          help="rewrite labkit's expected outputs of the public checks from the "
                          "solution (labkit/checking/expected/LAB.npz; commit them)")

    p_grade = sub.add_parser("grade", help="grade a submission, or a Gradescope export with --csv")
    p_grade.add_argument("lab", help="lab id, e.g. lab02")
    p_grade.add_argument("submission", type=Path, help="notebook, submission folder, or export folder")
    p_grade.add_argument("--out", type=Path, default=None, help="results.json to write")
    p_grade.add_argument("--csv", type=Path, default=None,
                         help="batch mode: SUBMISSION is a Gradescope export; write grades here")
    p_grade.add_argument("--references", type=Path, default=None,
                         help="references.npz (default: dist/autograder/LAB/references.npz)")
    p_grade.add_argument("--quiet", action="store_true", help="do not print the table")
    p_grade.add_argument("--jobs", type=int, default=None,
                         help="batch mode: submissions graded at once (default: CPU count)")
    p_grade.add_argument("--allow-weak-jail", action="store_true",
                         help="grade even where bubblewrap cannot isolate student code (only "
                         "the unprivileged user and rlimits then)")

    _add_grading_week(sub)

    args = parser.parse_args(argv)
    if args.command in GRADING_WEEK:
        try:
            return GRADING_WEEK[args.command](args)
        except (FileNotFoundError, ValueError) as exc:  # a missing input: say what to do
            print(f"{args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command == "assign":
        from autograder.assign import assign

        return assign(args.labs, args.out, verify=not args.no_verify, copies_only=args.copies_only,
                      update_expected=args.update_expected)

    from autograder.batch import grade_batch
    from autograder.grade import grade
    from autograder.labs import get_lab
    from autograder.sandbox import jail_level

    lab = get_lab(args.lab)
    level = jail_level()
    print(f"[autograder] isolation: {level}", file=sys.stderr)
    if level != "bubblewrap" and not args.allow_weak_jail:
        print("grade: bubblewrap cannot create its namespaces here, so student code would run "
              "with only an unprivileged user and resource limits. Install bubblewrap (Debian/"
              "Ubuntu: apt-get install bubblewrap) or grade in a container; pass "
              "--allow-weak-jail to grade anyway.", file=sys.stderr)
        return 2
    if args.csv is not None:
        if not args.submission.is_dir():
            print(f"grade: --csv needs an export folder, got {args.submission}", file=sys.stderr)
            return 2
        grade_batch(lab, args.submission, args.csv, references_file=args.references,
                    jobs=args.jobs, progress=not args.quiet)
        print(f"grades written to {args.csv}")
        return 0
    out = args.out
    grade(lab, args.submission, out, references_file=args.references, quiet=args.quiet)
    return 0


# ----------------------------------------------------------------------------- grading week
# report, answers and similarity read a graded Gradescope export; public writes the release.


def _add_grading_week(sub) -> None:
    def export_command(name: str, help_: str, default_out: str):
        p = sub.add_parser(name, help=help_)
        p.add_argument("lab", help="lab id, e.g. lab02")
        p.add_argument("export", type=Path, help="Gradescope export folder (submission_<id>/ ...)")
        p.add_argument("--out", type=Path, default=None,
                       help=f"output folder (default: EXPORT-{default_out}, beside the export)")
        return p

    export_command("report", "item analysis of a graded export: pass rates, score "
                   "distributions, likely broken checks (HTML)", "report")
    p = export_command("answers", "free-text answers per question (HTML, PDF) and one PDF per "
                       "student for a Gradescope manual-grading assignment", "answers")
    p.add_argument("--anonymize", action="store_true",
                   help="show pseudonyms (A-xxxxxx) instead of names; the mapping goes to "
                        "OUT/students.csv")
    p.add_argument("--no-pdf", action="store_true", help="write the HTML pages only")
    p = export_command("similarity", "pairwise similarity of each exercise's code and of the "
                       "free-text answers (HTML, top pairs side by side)", "similarity")
    p.add_argument("--top", type=int, default=20, help="pairs listed and shown side by side")
    p = sub.add_parser("public", help="write dist/public/: what the public repository holds")
    p.add_argument("--dist", type=Path, default=REPO_ROOT / "dist",
                   help="build folder holding student/ and site/ (default: dist)")


def _beside(export: Path, what: str) -> Path:
    """``EXPORT-what`` next to the export: never inside it, where it would look like a
    submission folder to the next command."""
    export = export.resolve()
    return export.with_name(f"{export.name}-{what}")


def _run_report(args) -> int:
    from autograder.report import report

    out = args.out or _beside(args.export, "report")
    a = report(args.lab, args.export, out)
    print(f"report: {len(a.totals)} graded submissions; {len(a.flagged)} flagged checks"
          + "".join(f"\n  {c.number} {c.name}" for c in a.flagged)
          + f"\nreport: {out / 'report.html'}")
    return 0


def _run_answers(args) -> int:
    from autograder.answers import answers

    out = args.out or _beside(args.export, "answers")
    written = answers(args.lab, args.export, out, anonymize=args.anonymize, pdf=not args.no_pdf)
    print(f"answers: {len(written.questions)} questions, {len(written.students)} submissions"
          f"\nanswers: {out / 'index.html'}")
    return 0


def _run_similarity(args) -> int:
    from autograder.similarity import similarity

    out = args.out or _beside(args.export, "similarity")
    result = similarity(args.lab, args.export, out, top=args.top)
    for pair in result.code_pairs[:5]:
        print(f"similarity: code {pair.score:.2f}  {pair.a} <-> {pair.b}")
    print(f"similarity: {out / 'index.html'}")
    return 0


def _run_public(args) -> int:
    from autograder.assign import AssignError, build_public

    try:
        out = build_public(args.dist)
    except AssignError as exc:
        print(f"public: REFUSED: {exc}", file=sys.stderr)
        return 1
    print(f"public: {out} (push it to the public repository, see the instructor guide)")
    return 0


GRADING_WEEK = {"report": _run_report, "answers": _run_answers,
                "similarity": _run_similarity, "public": _run_public}
