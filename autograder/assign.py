"""``python -m autograder assign``: master notebooks -> student copies, solution copies, Gradescope zips.

For each lab with checks, from ``labs/labNN_topic/labNN_topic.ipynb``:

* ``dist/student/labs/labNN_topic/labNN_topic.ipynb``: Colab badge + labkit install cell first,
  solutions stubbed, answers prompted, instructor cells removed, outputs cleared; assets copied;
* ``dist/solutions/labs/labNN_topic/labNN_topic.ipynb``: markers removed, outputs cleared;
* ``dist/autograder/labNN.zip``: ``setup.sh``, ``run_autograder``, the labkit wheel (rebuilt
  from a clean copy of the source unless the one in ``dist/`` provably matches it) and the
  reference outputs computed by running the solution through every check input.

``build_public`` (``python -m autograder public``, after the website build) then writes
``dist/public/``: what the public repository holds (labkit, student notebooks, website).

The build refuses (exit 1, message naming the cell) when a marker is unbalanced, a stub has no
solution, an exercise has no solution region, the solution copy does not earn full marks, or the
student copy fails with anything but ``NotImplementedError``.
"""

from __future__ import annotations

import ast
import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.config import REPO_ROOT, CourseConfig, load_config
from autograder.grade import (
    References,
    check_references,
    compute_references,
    grade_submission,
    load_references,
    save_references,
)
from autograder.labs import available_labs, get_lab
from autograder.spec import LabSpec
from labkit.checking.program import drop_magics
from labkit.checking.spec import Fail, load_results, save_results


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


BEFORE_SUBMIT_TEXT = """## Before you submit

The autograder does not run this notebook top to bottom. For each exercise it runs the imports
and the top-level statements that exercise needs (not the experiments and plots), in a fresh
process, and then the exercise's checks. The cell below does the same with the public checks:
save the notebook first (File > Save), run it, and read what it says the grader will skip, what
fails there, and any name an exercise uses that the grader will not have. Hidden checks are
graded after the due date."""


def student_footer(lab: LabSpec) -> list[nbformat.NotebookNode]:
    """The "before you submit" cells put last in every student (and solution) copy."""
    text = nbformat.v4.new_markdown_cell(BEFORE_SUBMIT_TEXT)
    code = nbformat.v4.new_code_cell(f'lk.before_submit(lab="{lab.id}")')
    code.metadata["tags"] = ["before-submit"]
    return [text, code]


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
        tree = ast.parse(drop_magics(source))
    except SyntaxError:
        return False
    return any(isinstance(s, (ast.FunctionDef, ast.ClassDef)) and s.name == name for s in tree.body)


# ----------------------------------------------------------------------------- labkit wheel

PACKAGES = ("labkit", "autograder")
PACKAGE_DATA = ("labkit/checking/expected/*.npz",)  # as pyproject.toml's package-data
WHEEL_METADATA_INPUTS = ("pyproject.toml", "README.md")  # what setuptools reads besides code


def package_files(root: Path = REPO_ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """The files a wheel of ``packages`` must hold: every ``.py`` file of every package folder
    (a folder with ``__init__.py``, as setuptools' ``packages.find`` sees them)."""
    out: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts:
                continue
            if all((root.joinpath(*rel.parts[:i]) / "__init__.py").is_file()
                   for i in range(1, len(rel.parts))):
                out[rel.as_posix()] = path
    for pattern in PACKAGE_DATA:
        if pattern.split("/")[0] in packages:
            for path in sorted(root.glob(pattern)):
                out[path.relative_to(root).as_posix()] = path
    return out


def _inputs_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name in WHEEL_METADATA_INPUTS:
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def wheel_stale_reason(wheel: Path, root: Path = REPO_ROOT) -> str | None:
    """Why ``wheel`` is not the current source (None when it provably is): every package file
    byte for byte, no file that the source no longer has, and the same metadata inputs
    (``pyproject.toml``, ``README.md``; digest in ``<wheel>.inputs``, written by the build)."""
    sidecar = wheel.with_name(wheel.name + ".inputs")
    if not sidecar.is_file() or sidecar.read_text().strip() != _inputs_digest(root):
        return "pyproject.toml or README.md changed since it was built (or it was not built here)"
    try:
        with zipfile.ZipFile(wheel) as zf:
            inside = {n: zf.read(n) for n in zf.namelist()
                      if not n.split("/")[0].endswith(".dist-info")}
    except (zipfile.BadZipFile, OSError) as exc:
        return f"not a readable wheel ({exc})"
    expected = package_files(root)
    for name, path in expected.items():
        if name not in inside:
            return f"{name} is missing from it"
        if inside[name] != path.read_bytes():
            return f"{name} differs from the source"
    extra = sorted(set(inside) - set(expected))
    return f"{extra[0]} is in it but no longer in the source" if extra else None


def build_wheel(dist: Path, root: Path = REPO_ROOT) -> Path:
    """The labkit wheel in ``dist/``, proven current (see :func:`wheel_stale_reason`) or rebuilt
    from a clean copy of the source (setuptools' ``build/`` folder can hold deleted files)."""
    dist.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(dist.glob("labkit-*.whl")):
        if wheel_stale_reason(wheel, root) is None:
            return wheel
    for old in list(dist.glob("labkit-*.whl")) + list(dist.glob("labkit-*.whl.inputs")):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="labkit-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in WHEEL_METADATA_INPUTS:
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        for rel, path in package_files(root).items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / rel)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
             "-w", str(dist), str(src)],
            check=True,
        )
    wheel = sorted(dist.glob("labkit-*.whl"))[-1]
    wheel.with_name(wheel.name + ".inputs").write_text(_inputs_digest(root) + "\n")
    reason = wheel_stale_reason(wheel, root)
    if reason is not None:
        raise AssignError(f"the wheel just built from {root} does not match it: {reason}")
    return wheel


# ----------------------------------------------------------------------------- public release

PUBLIC_PACKAGES_FIND = 'include = ["labkit*", "autograder*"]'
STUDENT_SECTION = ("## For students", "## For instructors")  # README section for the public one


def public_readme(root: Path, cfg: CourseConfig, labs: list[str]) -> str:
    """README of the public repository: the lab list with Colab links and the students' section
    of this repository's README (one source for both)."""
    text = (root / "README.md").read_text(encoding="utf-8")
    start, end = text.find(STUDENT_SECTION[0]), text.find(STUDENT_SECTION[1])
    if start < 0 or end < start:
        raise AssignError(f"README.md needs a '{STUDENT_SECTION[0]}' section followed by "
                          f"'{STUDENT_SECTION[1]}': it becomes the public README")
    rows = "\n".join(f"| {lab} | [Open in Colab]({cfg.colab_url(f'labs/{lab}/{lab}.ipynb')}) |"
                      for lab in labs)
    return (f"# {cfg.title}\n\nThe course library `labkit`, the lab notebooks and the course "
            "website (`docs/`). Generated by `make course` from the course's private repository: "
            "do not edit this repository by hand.\n\n"
            f"| lab | notebook |\n|---|---|\n{rows}\n\n{text[start:end].rstrip()}\n")


def build_public(dist: Path, root: Path = REPO_ROOT, cfg: CourseConfig | None = None) -> Path:
    """``dist/public/``: exactly what the public repository (course.toml ``repository``) holds.

    ``labkit/`` and a ``pyproject.toml`` that packages only labkit (what the notebooks'
    ``%pip install "labkit @ git+REPOSITORY@RELEASE_REF"`` installs), ``environment.yml``,
    ``labs/`` (the student copies from ``dist/student``, at the paths of the Colab links),
    ``docs/`` (the website from ``dist/site``, servable by GitHub Pages) and a README. Nothing of
    ``autograder/`` (checks, hidden checks, probes), no master notebook, no solution copy, no
    references. Push it to the ``student_branch`` of the public repository and tag it
    ``release_ref``.
    """
    cfg = cfg or load_config()
    student, site, out = dist / "student" / "labs", dist / "site", dist / "public"
    if not student.is_dir():
        raise AssignError(f"no student notebooks in {student}: run `python -m autograder assign` "
                          "first (`make course` runs everything)")
    if not (site / "index.html").is_file():
        raise AssignError(f"no website in {site}: run `python book/build_site.py --out {site}` "
                          "first (`make course` runs everything)")
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    if PUBLIC_PACKAGES_FIND not in pyproject:
        raise AssignError(f"pyproject.toml no longer has `{PUBLIC_PACKAGES_FIND}`: update "
                          "autograder.assign.build_public to package labkit alone")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for rel, path in package_files(root, ("labkit",)).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / rel)
    (out / "pyproject.toml").write_text(
        pyproject.replace(PUBLIC_PACKAGES_FIND, 'include = ["labkit*"]'), encoding="utf-8")
    shutil.copy2(root / "environment.yml", out / "environment.yml")
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(student, out / "labs", ignore=junk)
    shutil.copytree(site, out / "docs", ignore=junk)
    (out / "docs" / ".nojekyll").touch()  # serve _static/ and _images/ as they are
    labs = sorted(p.name for p in (out / "labs").iterdir() if p.is_dir())
    (out / "README.md").write_text(public_readme(root, cfg, labs), encoding="utf-8")
    problems = public_problems(out)
    if problems:
        shutil.rmtree(out)
        raise AssignError("dist/public would publish private material:\n  " + "\n  ".join(problems))
    return out


def public_problems(public: Path) -> list[str]:
    """Build-time guard on a public tree: private file kinds and solution markers."""
    problems = []
    for path in sorted(public.rglob("*")):
        rel = path.relative_to(public).as_posix()
        if path.is_dir():
            if path.name == "autograder":
                problems.append(f"{rel}/: the grader (checks, hidden checks) is private")
            continue
        public_data = rel.startswith("labkit/checking/expected/")  # the public checks' outputs
        if (path.suffix == ".npz" and not public_data) or path.name in ("checks.py", "probes.py"):
            problems.append(f"{rel}: grading material")
        elif path.suffix in (".py", ".ipynb"):  # the site's pages: tests/book/test_book_leaks.py
            text = path.read_text(encoding="utf-8", errors="replace")
            if nbmod.BEGIN in text or nbmod.END in text:
                problems.append(f"{rel}: contains a solution marker")
    return problems


SETUP_SH = """#!/usr/bin/env bash
# Gradescope autograder set-up (Ubuntu 22.04 base image; runs once, with internet).
set -euo pipefail
apt-get update -q
# bubblewrap: the grader jails student code with bwrap when the kernel allows it
apt-get install -y -q python3 python3-pip bubblewrap
# The unprivileged account that runs student code.
id sandbox >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin sandbox
python3 -m pip install -q --upgrade pip
# CPU-only torch: much smaller than the CUDA build and all the grader needs.
python3 -m pip install -q {torch} --index-url https://download.pytorch.org/whl/cpu
# labkit + autograder without their dependencies, then only what grading {lab} imports
# (autograder.requirements: found in the source when the zip was built).
python3 -m pip install -q --no-deps "/autograder/source/{wheel}"
python3 -m pip install -q {requirements}
"""


def setup_sh(lab: LabSpec, wheel_name: str) -> str:
    """The zip's ``setup.sh``: CPU-only torch (+ torchvision when the lab imports it), the
    wheel, and the lab's own requirements (:func:`autograder.requirements.lab_requirements`)."""
    from autograder.requirements import lab_requirements

    req = lab_requirements(lab)
    return SETUP_SH.format(wheel=wheel_name, lab=lab.id, torch=" ".join(req.torch),
                           requirements=" ".join(shlex.quote(r) for r in req.pip))

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission into /autograder/results/results.json.
set -u
# Student code runs as `sandbox`; keep the references and results out of its reach.
chmod -R go-rwx /autograder/source /autograder/results 2>/dev/null || true
cd /autograder/source
# bubblewrap jails the student's code where the container allows namespaces; where it does
# not, the fallback (unprivileged user, limits, unreadable references) is accepted here, and the
# isolation reached is printed to this log (instructors see it) and kept in results.json
AUTOGRADER_SANDBOX_USER=sandbox AUTOGRADER_MEMORY_MB=${{AUTOGRADER_MEMORY_MB:-1024}} \\
  python3 -m autograder grade {lab} /autograder/submission \\
  --references /autograder/source/references.npz \\
  --out /autograder/results/results.json --allow-weak-jail
"""


def build_zip(lab: LabSpec, dist: Path, wheel: Path, references: Path) -> Path:
    """``dist/autograder/labNN.zip`` for Gradescope."""
    out = dist / "autograder" / f"{lab.id}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", setup_sh(lab, wheel.name)),
                           ("run_autograder", RUN_AUTOGRADER.format(lab=lab.id))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            zf.writestr(info, text)
        zf.write(wheel, wheel.name)
        zf.write(references, "references.npz")
    return out


# ----------------------------------------------------------------------------- public expected


def expected_path(lab: LabSpec) -> Path:
    from labkit.checking.kernel import EXPECTED

    return EXPECTED / f"{lab.id}.npz"


def expected_problems(lab: LabSpec, refs: References) -> list[str]:
    """Why labkit's expected outputs of the public checks are not those of the solution:
    each public check, run on the shipped outputs against ``refs``, must pass."""
    path = expected_path(lab)
    if not path.is_file():
        return [f"{path} is missing"]
    try:
        shipped = load_results(path)[0]
    except (OSError, ValueError, KeyError) as exc:
        return [f"{path} cannot be read ({exc})"]
    problems = []
    for check in lab.public.checks:
        try:
            check.evaluate(shipped.get, refs.__getitem__)
        except (Fail, KeyError) as exc:
            problems.append(f"check {check.number} (got: labkit's file; expected: the "
                            f"solution's): {exc}")
    wanted = {call.id for c in lab.public.checks for call in c.calls}
    if set(shipped) != wanted:
        problems.append(f"{path.name} holds other calls than the public checks make")
    return problems


def write_expected(lab: LabSpec, refs: References) -> Path:
    """labkit's expected outputs: the solution's outputs of the public checks' calls only."""
    path = expected_path(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = {call.id for c in lab.public.checks for call in c.calls}
    save_results({cid: refs[cid] for cid in sorted(wanted)}, path)
    return path


def _write_nb(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def assign_lab(
    lab: LabSpec, dist: Path, cfg: CourseConfig, *, verify: bool = True, copies_only: bool = False,
    update_expected: bool = False,
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
    student.cells = student_header(cfg, relpath) + student.cells + student_footer(lab)
    solution = nbmod.make_solution(master)
    solution.cells = student_header(cfg, relpath)[1:] + solution.cells + student_footer(lab)

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
        refs = compute_references(lab)
        check_references(lab, refs)
        save_references(refs, refs_path)
    except RuntimeError as exc:  # the solution itself failed on a check input
        raise AssignError(f"{lab.id}: {exc}") from None
    if verify:
        verify_lab(lab, solution_path, student_path, refs_path)
    problems = expected_problems(lab, refs)
    if problems and update_expected:
        write_expected(lab, refs)
    elif problems:
        raise AssignError(
            f"{lab.id}: labkit's expected outputs of the public checks do not match the "
            f"solution's:\n  " + "\n  ".join(problems[:5]) + "\nRun `python -m autograder "
            f"assign {lab.id} --update-expected` and commit {expected_path(lab).name} "
            "(labkit/checking/expected/).")
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


def assign(labs: list[str] | None, dist: Path, *, verify: bool = True, copies_only: bool = False,
           update_expected: bool = False) -> int:
    cfg = load_config()
    ids = labs or available_labs()
    status = 0
    for lab_id in ids:
        lab = get_lab(lab_id)
        try:
            paths = assign_lab(lab, dist, cfg, verify=verify, copies_only=copies_only,
                               update_expected=update_expected)
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
