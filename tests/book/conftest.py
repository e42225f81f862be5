"""Fixtures of the book tests: the course website built once per session into a temporary folder.

The build needs student notebooks. The fixture runs ``python -m autograder assign --copies-only
--out <tmp>/dist`` (verification is the autograder tests' job) and fails if it fails. When
``labs/`` holds no master notebook, a small master written in the temporary folder stands in.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "book" / "build_site.py"


@dataclass
class SiteBuild:
    """What the session build produced."""

    site: Path  # the HTML site (build_site.py --out)
    student_dir: Path  # dist/student
    solutions_dir: Path  # dist/solutions
    labs_dir: Path  # the master notebooks' folders (labs/ or a stand-in)
    masters: list[Path]  # labs/labNN_topic/labNN_topic.ipynb
    returncode: int
    log: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def student_notebook(self, master: Path) -> Path:
        return self.student_dir / "labs" / master.parent.name / master.name

    def solution_notebook(self, master: Path) -> Path:
        return self.solutions_dir / "labs" / master.parent.name / master.name


def master_notebooks(labs_dir: Path) -> list[Path]:
    return sorted(p for p in labs_dir.glob("lab[0-9][0-9]_*/*.ipynb") if p.stem == p.parent.name)


def write_standin_master(labs_dir: Path) -> Path:
    """A small lab02 master with every kind of solution region (while labs/ is empty)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    answer = nbformat.v4.new_markdown_cell(
        "A class that never occurs has an undefined intersection over union and is skipped."
    )
    answer.metadata["tags"] = ["answer"]
    instructor = nbformat.v4.new_markdown_cell("Instructor note: hidden checks cover empty masks.")
    instructor.metadata["tags"] = ["instructor"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lab 02: Semantic segmentation (stand-in)\n\nMath: $x^2$."),
        nbformat.v4.new_code_cell(
            "import torch\n\n\n"
            "def confusion_matrix(preds, targets, num_classes, ignore_index=255):\n"
            '    """(B,H,W) preds and targets -> (K,K) counts."""\n'
            "    # BEGIN SOLUTION\n"
            "    keep_mask = targets != ignore_index\n"
            "    flat_index = num_classes * targets[keep_mask] + preds[keep_mask]\n"
            "    counts = torch.bincount(flat_index, minlength=num_classes**2)\n"
            "    return counts.view(num_classes, num_classes)\n"
            "    # END SOLUTION\n"
        ),
        nbformat.v4.new_code_cell("SECRET_SCALE = 0.123456789  # SOLUTION\nprint('done')"),
        nbformat.v4.new_markdown_cell("**Q1.** What happens to a class that never occurs?"),
        answer,
        instructor,
    ]
    path = labs_dir / "lab02_segmentation" / "lab02_segmentation.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def make_copies(masters: list[Path], dist: Path, notes: list[str]) -> None:
    """Student and solution copies under ``dist``, made by the real ``assign --copies-only``."""
    labs_are_real = all(m.is_relative_to(REPO_ROOT / "labs") for m in masters)
    if labs_are_real:
        cmd = [sys.executable, "-m", "autograder", "assign", "--copies-only", "--out", str(dist)]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd[1:])} failed:\n{proc.stderr}{proc.stdout}"
        for m in masters:
            for kind in ("student", "solutions"):
                assert (dist / kind / "labs" / m.parent.name / m.name).is_file(), (kind, m)
        return
    notes.append("labs/ has no master notebook: a stand-in lab02 master was used")
    from autograder.notebook import make_solution, make_student

    for master in masters:
        nb = nbformat.read(master, as_version=4)
        for kind, make in (("student", make_student), ("solutions", make_solution)):
            out = dist / kind / "labs" / master.parent.name / master.name
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(make(nb), out)


def run_build(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), *map(str, args)],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def site_build(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    tmp = tmp_path_factory.mktemp("book")
    notes: list[str] = []
    labs_dir = REPO_ROOT / "labs"
    masters = master_notebooks(labs_dir)
    if not masters:
        labs_dir = tmp / "labs"
        masters = [write_standin_master(labs_dir)]
    dist = tmp / "dist"
    make_copies(masters, dist, notes)
    for note in notes:
        warnings.warn(f"book tests: {note}", stacklevel=1)
    start = time.perf_counter()
    proc = run_build(
        "--out", tmp / "site", "--student-dir", dist / "student",
        "--stage", tmp / "stage", "--labs-dir", labs_dir,
    )  # fmt: skip
    return SiteBuild(
        site=tmp / "site",
        student_dir=dist / "student",
        solutions_dir=dist / "solutions",
        labs_dir=labs_dir,
        masters=masters,
        returncode=proc.returncode,
        log=proc.stdout + proc.stderr,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


@pytest.fixture(scope="session")
def run_build_site():
    """``run_build_site(*args)`` runs ``book/build_site.py`` and returns the completed process."""
    return run_build


@pytest.fixture(scope="session")
def site(site_build: SiteBuild) -> Path:
    """The built site; tests that need it fail (not error) when the build failed."""
    if site_build.returncode != 0:
        pytest.fail(f"the site build failed:\n{site_build.log[-6000:]}")
    return site_build.site
