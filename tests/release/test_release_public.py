"""``python -m autograder public``: dist/public holds what the public repository must contain
(labkit, the student notebooks, the website, a README) and nothing private: no solution text
(``autograder.notebook.solution_texts`` of every master, scanned as the website's leak test does),
no hidden check, no grader, no master notebook, no references.

The tree is built here from the student copies (``assign --copies-only``) and a stand-in site
page (the real website is scanned by tests/book/test_book_leaks.py); after ``make course`` the
real ``dist/public`` is scanned too.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.assign import AssignError, assign_lab, build_public, package_files
from autograder.cli import main
from autograder.config import REPO_ROOT, load_config
from autograder.labs import available_labs, get_lab

sys.path.insert(0, str(REPO_ROOT / "tests" / "book"))
from test_book_leaks import (  # noqa: E402
    book_text,
    find_leaks,
    labkit_text,
    public_text,
    secret_fragments,
    vendor_text,
)

MASTERS = sorted(p for p in (REPO_ROOT / "labs").glob("lab[0-9][0-9]_*/*.ipynb")
                 if p.stem == p.parent.name)
TOP_LEVEL = {"README.md", "pyproject.toml", "environment.yml", "labkit", "labs", "docs"}


def build_dist(dist: Path) -> None:
    cfg = load_config()
    for lab_id in available_labs():
        assign_lab(get_lab(lab_id), dist, cfg, copies_only=True)
    site = dist / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body><h1>Course website</h1></body></html>")


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("release") / "dist"
    build_dist(dist)
    assert main(["public", "--dist", str(dist)]) == 0
    return dist / "public"


@pytest.fixture(scope="module")
def secrets() -> set[str]:
    # public text as in the website's leak test (Sphinx's own assets say `return results`)
    public_all = "\n".join([labkit_text(), book_text(), vendor_text()]
                           + [public_text(nbformat.read(m, as_version=4)) for m in MASTERS])
    out = set()
    for master in MASTERS:
        frags = secret_fragments(master, public_all)
        assert frags, f"{master}: no secret text: the scan would prove nothing"
        out |= frags
    return out


def hidden_check_docstrings() -> set[str]:
    """The names of the hidden checks ("exercise: title"), as declared in autograder/labs/."""
    from autograder.labs import available_labs, get_lab

    return {c.name for lab in available_labs() for c in get_lab(lab).checks if c.hidden}


def scan(public: Path, secrets: set[str]) -> None:
    files = [p for p in sorted(public.rglob("*")) if p.is_file()]
    assert not find_leaks(files, secrets)
    hidden = hidden_check_docstrings()
    assert hidden, "no hidden check found: the scan would prove nothing"
    assert not find_leaks(files, hidden)
    for path in files:
        rel = path.relative_to(public)
        assert path.name not in ("checks.py", "probes.py"), rel
        assert path.suffix != ".npz" or rel.parent.as_posix() == "labkit/checking/expected", rel
        assert "autograder" not in rel.parts, rel
        if path.suffix in (".py", ".ipynb", ".md", ".toml", ".yml"):
            assert "after_due_date" not in path.read_text(), rel


def test_layout(public: Path):
    assert {p.name for p in public.iterdir()} == TOP_LEVEL
    assert (public / "docs" / "index.html").is_file() and (public / "docs" / ".nojekyll").is_file()
    labkit = {p.relative_to(public).as_posix() for p in (public / "labkit").rglob("*.py")}
    assert labkit == {n for n in package_files(REPO_ROOT, ("labkit",)) if n.endswith(".py")}
    expected = {p.relative_to(public).as_posix() for p in (public / "labkit").rglob("*.npz")}
    assert expected == {n for n in package_files(REPO_ROOT, ("labkit",)) if n.endswith(".npz")}
    notebooks = {p.relative_to(public).as_posix() for p in public.rglob("*.ipynb")}
    assert notebooks == {f"labs/{m.parent.name}/{m.name}" for m in MASTERS}


def test_no_solution_text_hidden_check_master_or_references(public: Path, secrets: set[str]):
    scan(public, secrets)
    for master in MASTERS:
        published = nbformat.read(public / "labs" / master.parent.name / master.name, 4)
        original = nbmod.read_notebook(master)
        assert [c.source for c in published.cells] != [c.source for c in original.cells]
        answers = [c for c in published.cells if nbmod.ANSWER_TAG in c.metadata.get("tags", [])]
        assert all(c.source == nbmod.ANSWER_PROMPT for c in answers)


def test_negative_control_scan_finds_the_masters(tmp_path: Path, public: Path, secrets):
    """The same scan fails on a tree with a master notebook in it (so the test above can fail)."""
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / MASTERS[0].name).write_bytes(MASTERS[0].read_bytes())
    with pytest.raises(AssertionError):
        scan(leaky, secrets)


def test_readme_links_every_lab_and_has_the_student_section(public: Path):
    readme = (public / "README.md").read_text()
    cfg = load_config()
    for master in MASTERS:
        assert cfg.colab_url(f"labs/{master.parent.name}/{master.name}") in readme
    assert "## For students" in readme and "## For instructors" not in readme
    assert cfg.pip_spec in readme


def test_public_pyproject_packages_labkit_alone(public: Path, tmp_path: Path):
    """What the notebooks' `%pip install "labkit @ git+REPOSITORY@REF"` gets from this tree."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(public)], check=True)
    (wheel,) = tmp_path.glob("labkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"labkit"}
    out = subprocess.run([sys.executable, "-c", "import labkit, sys; print(labkit.__file__)"],
                         cwd=public, capture_output=True, text=True, check=True)
    assert out.stdout.startswith(str(public))


def test_refuses_without_site_or_with_private_material(tmp_path: Path):
    dist = tmp_path / "dist"
    assign_lab(get_lab("lab02"), dist, load_config(), copies_only=True)
    with pytest.raises(AssignError, match="build_site.py"):
        build_public(dist)
    (dist / "site").mkdir()
    (dist / "site" / "index.html").write_text("<html></html>")
    (dist / "student" / "labs" / "lab02_segmentation" / "references.npz").write_bytes(b"x")
    with pytest.raises(AssignError, match="references.npz: grading material"):
        build_public(dist)
    assert not (dist / "public").exists()


@pytest.mark.skipif(not (REPO_ROOT / "dist" / "public").is_dir(),
                    reason="dist/public not built (make course)")
def test_built_dist_public(secrets):
    public = REPO_ROOT / "dist" / "public"
    assert {p.name for p in public.iterdir()} == TOP_LEVEL
    scan(public, secrets)
