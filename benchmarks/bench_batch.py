"""Batch grading throughput: serial (--jobs 1) vs parallel (--jobs N) on one generated export.

Generates a Gradescope-style export of lab02 submissions (tests/grading/export_factory.py:
correct in several styles, partial, wrong, planted copies, an untouched student copy) plus
hostile ones (an endless loop in one exercise, ``os._exit`` at definition time, a memory hog),
grades it twice with ``autograder.batch.grade_batch`` and prints submissions per second side by
side, and checks that both runs gave every submission the same score.

    python benchmarks/bench_batch.py --n 300 --jobs 2       # the issue's target size
    python benchmarks/bench_batch.py --n 40                 # a quicker look
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "grading"))

HOSTILE = {
    "loop": "def mean_iou(confmat):\n    while True:\n        pass\n",
    "exit": "import os\nos._exit(3)\n",
    "hog": "def dice_loss(logits, targets, ignore_index=255):\n"
           "    blocks = []\n    while True:\n        blocks.append(bytearray(1 << 26))\n",
}


def make_export(root: Path, n: int) -> None:
    import nbformat
    from export_factory import write_export

    from labkit.checking.program import build_program

    write_export(root, n=max(n - len(HOSTILE), 1), results=False)
    base = sorted(p for p in root.iterdir() if p.is_dir())[0]
    nb_path = next(base.glob("*.ipynb"))
    for i, (name, source) in enumerate(HOSTILE.items()):
        nb = nbformat.read(str(nb_path), as_version=4)
        target = {"loop": "mean_iou", "hog": "dice_loss"}.get(name)
        if target:
            prog = build_program(nb)
            cell = prog.binding(target).cell
            code = [c for c in nb.cells if c.cell_type == "code"]
            code[cell - 1].source = source
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
        folder = root / f"submission_9{i:05d}"
        folder.mkdir()
        nbformat.write(nb, str(folder / nb_path.name))


def scores(csv_path: Path) -> dict[str, str]:
    with open(csv_path) as fh:
        return {row["submission"]: row["score"] for row in csv.DictReader(fh)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="submissions in the export")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-serial", action="store_true")
    args = parser.parse_args()

    from autograder.batch import grade_batch
    from autograder.grade import compute_references, save_references
    from autograder.labs import get_lab

    lab = get_lab("lab02")
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    os.chmod(work, 0o755)
    try:
        refs = work / "references.npz"
        save_references(compute_references(lab), refs)
        export = work / "export"
        export.mkdir()
        make_export(export, args.n)
        n = sum(1 for p in export.iterdir() if p.is_dir())
        runs = {}
        for jobs in ([] if args.skip_serial else [1]) + [args.jobs]:
            for p in export.glob("*/results.json"):
                p.unlink()
            out = work / f"grades-{jobs}.csv"
            start = time.monotonic()
            grade_batch(lab, export, out, references_file=refs, jobs=jobs, progress=False)
            runs[jobs] = (time.monotonic() - start, scores(out))
        print(f"lab02 export: {n} submissions ({len(HOSTILE)} hostile); machine: "
              f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
        print(f"{'jobs':>5} {'seconds':>9} {'subs/s':>8} {'s/sub':>7}")
        for jobs, (secs, _) in runs.items():
            print(f"{jobs:>5} {secs:>9.1f} {n / secs:>8.2f} {secs / n:>7.2f}")
        if len(runs) == 2:
            (s1, a), (s2, b) = runs[1], runs[args.jobs]
            same = a == b
            print(f"speed-up parallel/serial: {s1 / s2:.2f}x; identical scores: {same}")
            if not same:
                diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
                print(f"differences: {diff}")
                sys.exit(1)
        print(f"projected for 300 submissions at jobs={args.jobs}: "
              f"{runs[args.jobs][0] / n * 300 / 60:.1f} min")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
