"""Lines of check code per graded exercise, per lab: now and at an older revision.

Check code of a lab = everything written for that lab's grading: its public declarations and
probes in labkit (``labkit/checking/labNN.py``, ``labkit/checking/labNN_probes.py``) and its
hidden checks in the autograder (``autograder/labs/labNN/*.py``; before the declarative checks,
``__init__.py`` + ``probes.py`` + ``checks.py`` there). The shared engine (``labkit/checking/
spec.py``, ``probe_utils.py``, ``kernel.py``) is counted apart, once for all labs.

    python benchmarks/check_code_size.py                 # the working tree
    python benchmarks/check_code_size.py --rev 862b243   # and an older commit, side by side
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("labkit/checking/spec.py", "labkit/checking/probe_utils.py", "labkit/checking/kernel.py",
          "autograder/spec.py")
TARGET = 40  # lines per exercise, on average over the labs (issue 17)


def _files(rev: str | None) -> dict[str, str]:
    if rev is None:
        paths = [p for p in ROOT.glob("labkit/checking/*.py")] + list(ROOT.glob("autograder/**/*.py"))
        return {p.relative_to(ROOT).as_posix(): p.read_text() for p in paths}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "labkit", "autograder"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
            for n in names if n.endswith(".py")}


def _count(text: str) -> tuple[int, int]:
    """(all lines, code lines: not blank, not a comment)."""
    lines = text.splitlines()
    return len(lines), sum(1 for ln in lines if ln.strip() and not ln.strip().startswith("#"))


def lab_lines(files: dict[str, str], lab: str) -> tuple[int, int]:
    mine = [n for n in files if n.startswith(f"autograder/labs/{lab}/")
            or n in (f"labkit/checking/{lab}.py", f"labkit/checking/{lab}_probes.py")]
    counts = [_count(files[n]) for n in mine]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="also count at this git revision")
    args = parser.parse_args()
    from autograder.labs import available_labs, get_lab

    labs = {lab: len(get_lab(lab).exercises) for lab in available_labs()}
    now = _files(None)
    old = _files(args.rev) if args.rev else None
    head = f"{'lab':<6} {'exercises':>9} {'lines':>7} {'code':>6} {'lines/ex':>9}"
    print(head + (f" {'old lines':>10} {'old/ex':>7} {'ratio':>6}" if old else ""))
    tot_ex = tot = tot_old = 0
    for lab, n in labs.items():
        lines, code = lab_lines(now, lab)
        row = f"{lab:<6} {n:>9} {lines:>7} {code:>6} {lines / n:>9.1f}"
        if old:
            o = lab_lines(old, lab)[0]
            row += f" {o:>10} {o / n:>7.1f} {o / lines:>6.2f}"
            tot_old += o
        print(row)
        tot_ex, tot = tot_ex + n, tot + lines
    row = f"{'all':<6} {tot_ex:>9} {tot:>7} {'':>6} {tot / tot_ex:>9.1f}"
    if old:
        row += f" {tot_old:>10} {tot_old / tot_ex:>7.1f} {tot_old / tot:>6.2f}"
    print(row)
    engine = sum(_count(now[n])[0] for n in ENGINE if n in now)
    print(f"\ntarget: at most {TARGET} lines per exercise on average: "
          f"{'met' if tot / tot_ex <= TARGET else 'NOT met'} ({tot / tot_ex:.1f}).")
    print(f"shared engine, once for all labs ({', '.join(ENGINE)}): {engine} lines.")


if __name__ == "__main__":
    main()
