"""Command line: ``python -m autograder {assign,grade} ...`` (see ``--help``)."""

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

    p_grade = sub.add_parser("grade", help="grade a submission, or a Gradescope export with --csv")
    p_grade.add_argument("lab", help="lab id, e.g. lab02")
    p_grade.add_argument("submission", type=Path, help="notebook, submission folder, or export folder")
    p_grade.add_argument("--out", type=Path, default=None, help="results.json to write")
    p_grade.add_argument("--csv", type=Path, default=None,
                         help="batch mode: SUBMISSION is a Gradescope export; write grades here")
    p_grade.add_argument("--references", type=Path, default=None,
                         help="references.npz (default: dist/autograder/LAB/references.npz)")
    p_grade.add_argument("--quiet", action="store_true", help="do not print the table")

    args = parser.parse_args(argv)
    if args.command == "assign":
        from autograder.assign import assign

        return assign(args.labs, args.out, verify=not args.no_verify, copies_only=args.copies_only)

    from autograder.grade import grade, grade_batch
    from autograder.labs import get_lab

    lab = get_lab(args.lab)
    if args.csv is not None:
        if not args.submission.is_dir():
            print(f"grade: --csv needs an export folder, got {args.submission}", file=sys.stderr)
            return 2
        grade_batch(lab, args.submission, args.csv, references_file=args.references)
        print(f"grades written to {args.csv}")
        return 0
    out = args.out
    grade(lab, args.submission, out, references_file=args.references, quiet=args.quiet)
    return 0
