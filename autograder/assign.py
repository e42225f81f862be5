"""``python -m autograder assign``: master notebooks -> student copies, solution copies, Gradescope zips.

For each lab with checks, from ``labs/labNN_topic/labNN_topic.ipynb``:

* ``dist/student/labs/labNN_topic/labNN_topic.ipynb``: Colab badge + labkit install cell first,
  solutions stubbed, answers prompted, instructor cells removed, outputs cleared; assets copied;
* ``dist/solutions/labs/labNN_topic/labNN_topic.ipynb``: markers removed, outputs cleared;
* ``dist/autograder/labNN.zip``: ``setup.sh``, ``run_autograder``, the labkit wheel and the
  reference outputs computed by running the solution through every check input.

The build refuses (exit 1, message naming the cell) when a marker is unbalanced, a stub has no
solution, an exercise has no solution region, the solution copy does not earn full marks, or the
student copy fails with anything but ``NotImplementedError``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.config import REPO_ROOT, CourseConfig, load_config
from autograder.grade import compute_references, grade_submission, load_references, save_references
from autograder.labs import available_labs, get_lab
from autograder.spec import LabSpec


class AssignError(RuntimeError):
    """The master notebook cannot be turned into a student copy (message says why)."""


INSTALL_CELL = '''# Set-up: installs the course library when it is missing (Colab), then imports it.
try:
    import labkit
except ImportError:
    %pip install -q "{pip_spec}"
    import labkit'''


def student_header(cfg: CourseConfig, relpath: str) -> list[nbformat.NotebookNode]:
    """The badge cell and the install cell put first in every student copy."""
    url = cfg.colab_url(relpath)
    badge = nbformat.v4.new_markdown_cell(
        f'<a href="{url}" target="_parent"><img '
        'src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>'
    )
    badge.metadata["tags"] = ["colab-badge"]
    install = nbformat.v4.new_code_cell(INSTALL_CELL.format(pip_spec=cfg.pip_spec))
    install.metadata["tags"] = ["labkit-install"]
    return [badge, install]


def check_master(lab: LabSpec, master: nbformat.NotebookNode) -> None:
    """Markers balanced, no stub without a solution, every exercise has a solution region."""
    try:
        regions = nbmod.solution_regions(master)
    except nbmod.NotebookError as exc:
        raise AssignError(f"{lab.master_path}: {exc}") from None
    in_region = {(r.cell, line) for r in regions for line in range(r.start, r.end)}
    for ci, cell in enumerate(master.cells):
        if cell.cell_type != "code":
            continue
        for li, line in enumerate(cell.source.splitlines()):
            if "raise NotImplementedError" in line and (ci, li) not in in_region:
                raise AssignError(
                    f"{lab.master_path}: cell {ci} line {li + 1} is a stub "
                    "(`raise NotImplementedError`) without a solution: put the solution between "
                    f"'{nbmod.BEGIN}' and '{nbmod.END}' instead."
                )
    for ex in lab.exercises:
        cells = [ci for ci, c in enumerate(master.cells)
                 if c.cell_type == "code" and _defines(c.source, ex.name)]
        if not cells:
            raise AssignError(f"{lab.master_path}: exercise `{ex.name}` is not defined in any cell.")
        if not any(r.cell == cells[-1] for r in regions):
            raise AssignError(
                f"{lab.master_path}: exercise `{ex.name}` (cell {cells[-1]}) has no solution region; "
                f"mark its body with '{nbmod.BEGIN}' / '{nbmod.END}'."
            )


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(nbmod._drop_magics(source))
    except SyntaxError:
        return False
    return any(isinstance(s, (ast.FunctionDef, ast.ClassDef)) and s.name == name for s in tree.body)


def build_wheel(dist: Path) -> Path:
    """The labkit wheel in ``dist/`` (built when missing)."""
    wheels = sorted(dist.glob("labkit-*.whl"))
    if wheels:
        return wheels[-1]
    dist.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO_ROOT)],
        check=True,
    )
    return sorted(dist.glob("labkit-*.whl"))[-1]


SETUP_SH = """#!/usr/bin/env bash
# Gradescope autograder set-up (Ubuntu 22.04 base image; runs once, with internet).
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-pip
# The unprivileged account that runs student code.
id sandbox >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin sandbox
python3 -m pip install -q --upgrade pip
# CPU-only torch: much smaller than the CUDA build and all the grader needs.
python3 -m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install -q "$(ls /autograder/source/{wheel})[grader]"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission into /autograder/results/results.json.
set -u
# Student code runs as `sandbox`; keep the references and results out of its reach.
chmod -R go-rwx /autograder/source /autograder/results 2>/dev/null || true
cd /autograder/source
AUTOGRADER_SANDBOX_USER=sandbox AUTOGRADER_MEMORY_MB=${{AUTOGRADER_MEMORY_MB:-1024}} \\
  python3 -m autograder grade {lab} /autograder/submission \\
  --references /autograder/source/references.npz \\
  --out /autograder/results/results.json
"""


def build_zip(lab: LabSpec, dist: Path, wheel: Path, references: Path) -> Path:
    """``dist/autograder/labNN.zip`` for Gradescope."""
    out = dist / "autograder" / f"{lab.id}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP_SH.format(wheel=wheel.name)),
                           ("run_autograder", RUN_AUTOGRADER.format(lab=lab.id))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            zf.writestr(info, text)
        zf.write(wheel, wheel.name)
        zf.write(references, "references.npz")
    return out


def _write_nb(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def assign_lab(
    lab: LabSpec, dist: Path, cfg: CourseConfig, *, verify: bool = True, copies_only: bool = False
) -> dict[str, Path]:
    """Build one lab's student copy, solution copy and zip; verify them unless told not to.

    ``copies_only`` writes the two notebooks and stops (no references, checks or zip), for
    previews and the website build.
    """
    if not lab.master_path.exists():
        raise AssignError(f"master notebook not found: {lab.master_path}")
    try:
        master = nbmod.read_notebook(lab.master_path)
    except nbmod.NotebookError as exc:
        raise AssignError(str(exc)) from None
    check_master(lab, master)
    relpath = f"labs/{lab.slug}/{lab.notebook_name}"
    student = nbmod.make_student(master)
    student.cells = student_header(cfg, relpath) + student.cells
    solution = nbmod.make_solution(master)
    solution.cells = student_header(cfg, relpath)[1:] + solution.cells

    student_path = dist / "student" / relpath
    solution_path = dist / "solutions" / relpath
    _write_nb(student, student_path)
    _write_nb(solution, solution_path)
    for asset in lab.master_path.parent.iterdir():  # small assets (images, data lists)
        if asset.name != lab.notebook_name and asset.is_file() and not asset.name.startswith("."):
            for root in (student_path.parent, solution_path.parent):
                shutil.copy(asset, root / asset.name)
    if copies_only:
        return {"student": student_path, "solution": solution_path}

    refs_path = dist / "autograder" / lab.id / "references.npz"
    try:
        save_references(compute_references(lab), refs_path)
    except RuntimeError as exc:  # the solution itself failed on a check input
        raise AssignError(f"{lab.id}: {exc}") from None
    if verify:
        verify_lab(lab, solution_path, student_path, refs_path)
    wheel = build_wheel(dist)
    zip_path = build_zip(lab, dist, wheel, refs_path)
    return {"student": student_path, "solution": solution_path, "zip": zip_path, "references": refs_path}


def verify_lab(lab: LabSpec, solution_path: Path, student_path: Path, refs_path: Path) -> None:
    """Solution earns full marks; student copy earns zero, failing only with NotImplementedError."""
    refs = load_references(refs_path)
    sol = grade_submission(lab, solution_path, references=refs)
    total = sum(t["max_score"] for t in sol["tests"])
    if sol["score"] < total:
        failing = [f"{t.get('number', '')} {t['name']}: {t.get('output', '').strip()}"
                   for t in sol["tests"] if t["score"] < t["max_score"]]
        raise AssignError(
            f"{lab.id}: the solution copy earns {sol['score']:g}/{total:g}, not full marks:\n  "
            + "\n  ".join(failing)
        )
    stu = grade_submission(lab, student_path, references=refs)
    wrong = [t for t in stu["tests"]
             if t["score"] > 0 or "NotImplementedError" not in t.get("output", "")]
    if wrong:
        details = "\n  ".join(f"{t.get('number', '')} {t['name']}: score {t['score']:g}, "
                              f"{t.get('output', '').strip()}" for t in wrong)
        raise AssignError(
            f"{lab.id}: the student copy must fail every check with NotImplementedError only:\n  "
            + details
        )


def assign(labs: list[str] | None, dist: Path, *, verify: bool = True, copies_only: bool = False) -> int:
    cfg = load_config()
    ids = labs or available_labs()
    status = 0
    for lab_id in ids:
        lab = get_lab(lab_id)
        try:
            paths = assign_lab(lab, dist, cfg, verify=verify, copies_only=copies_only)
        except AssignError as exc:
            print(f"assign: REFUSED {lab_id}: {exc}", file=sys.stderr)
            status = 1
            continue
        rel = {k: str(v.relative_to(dist.parent) if v.is_relative_to(dist.parent) else v)
               for k, v in paths.items()}
        print(f"assign: {lab_id}: student {rel['student']} | solutions {rel['solution']}"
              + ("" if copies_only else f" | zip {rel['zip']}")
              + (" | verified" if verify and not copies_only else ""))
    return status
