"""The course website builds offline with warnings as errors, from the student copies only."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from autograder.config import load_config

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "book" / "build_site.py"


def page_text(path: Path) -> str:
    return " ".join(
        BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").get_text().split()
    )


def hrefs(path: Path) -> list[str]:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return [a["href"] for a in soup.find_all("a", href=True)]


def test_build_succeeds_with_warnings_as_errors(site_build) -> None:
    assert site_build.returncode == 0, site_build.log[-8000:]
    assert "-W" in (Path(__file__).parents[2] / "book" / "build_site.py").read_text()
    assert (site_build.site / "index.html").is_file()
    print(f"site built in {site_build.seconds:.1f} s; notes: {site_build.notes}")


def test_every_part_of_the_site_exists(site: Path, site_build) -> None:
    for page in [
        "intro.html", "getting_started.html", "instructor_guide.html", "bibliography.html",
        "changelog.html", "api/index.html", "api/labkit.html", "api/labkit.utils.html",
        "search.html", "genindex.html",
    ]:  # fmt: skip
        assert (site / page).is_file(), page
    for master in site_build.masters:
        lab = master.parent.name
        assert (site / "labs" / f"{lab}.html").is_file(), f"chapter page of {lab}"
        assert (site / "labs" / lab / f"{lab}.html").is_file(), f"notebook page of {lab}"


def test_notebook_pages_are_the_student_copies(site: Path, site_build) -> None:
    for master in site_build.masters:
        lab = master.parent.name
        text = page_text(site / "labs" / lab / f"{lab}.html")
        assert "raise NotImplementedError" in text, (
            f"{lab}: the notebook page is not the student copy"
        )
        source = site / "_sources" / "labs" / lab / f"{lab}.ipynb"
        if source.is_file():  # the download button's copy
            student = nbformat.read(site_build.student_notebook(master), as_version=4)
            staged = nbformat.read(source, as_version=4)
            assert [c.source for c in staged.cells] == [c.source for c in student.cells]


def test_colab_launch_button_equals_course_colab_url(site: Path, site_build) -> None:
    cfg = load_config()
    for master in site_build.masters:
        lab = master.parent.name
        url = cfg.colab_url(f"labs/{lab}/{lab}.ipynb")
        assert url in hrefs(site / "labs" / lab / f"{lab}.html"), "launch button"
        assert url in hrefs(site / "labs" / f"{lab}.html"), "chapter badge"


def test_getting_started_uses_course_toml(site: Path) -> None:
    cfg = load_config()
    text = page_text(site / "getting_started.html")
    assert f'pip install -q "{cfg.pip_spec}"' in text
    for needle in ['pip install -e ".[all]"', "environment.yml", "LABKIT_SMOKE=1", "LABKIT_DATA",
                   "/content/data", "~/.cache/labkit/data", "gtFine_trainvaltest.zip",
                   "leftImg8bit_trainvaltest.zip", "cityscapes-dataset.com"]:  # fmt: skip
        assert needle in text, needle


def test_course_map_lists_the_seven_labs(site: Path) -> None:
    text = page_text(site / "intro.html")
    for n in range(1, 8):
        assert f"Lab 0{n}:" in text


def test_every_reference_is_cited(site: Path) -> None:
    """The bibliography lists cited entries only: every paper of references.bib must be there."""
    bib = (Path(__file__).parents[2] / "book" / "references.bib").read_text()
    n_keys = sum(line.startswith("@") for line in bib.splitlines())
    soup = BeautifulSoup((site / "bibliography.html").read_text(), "html.parser")
    assert n_keys >= 15  # the papers of the seven labs
    assert len(soup.select('[role="doc-biblioentry"]')) == n_keys


def test_build_refuses_missing_student_notebooks(
    tmp_path: Path, site_build, run_build_site
) -> None:
    proc = run_build_site("--out", tmp_path / "site", "--student-dir", tmp_path / "nothing",
                     "--stage", tmp_path / "stage", "--labs-dir", site_build.labs_dir)  # fmt: skip
    assert proc.returncode != 0
    assert "python -m autograder assign" in proc.stderr


def test_build_refuses_a_master_notebook(tmp_path: Path, site_build, run_build_site) -> None:
    wrong = tmp_path / "student"
    for master in site_build.masters:
        dest = wrong / "labs" / master.parent.name
        dest.mkdir(parents=True)
        shutil.copy(master, dest)
    proc = run_build_site("--out", tmp_path / "site", "--student-dir", wrong,
                     "--stage", tmp_path / "stage", "--labs-dir", site_build.labs_dir)  # fmt: skip
    assert proc.returncode != 0
    assert "not a student copy" in proc.stderr
    assert not (tmp_path / "site").exists()


def load_build_script():
    spec = importlib.util.spec_from_file_location("book_build_site", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_lab_discovery(tmp_path: Path) -> None:
    """Lab folder without chapter: loud error; chapter without lab folder: "coming soon"."""
    bs = load_build_script()
    labs, chapters = tmp_path / "labs", tmp_path / "chapters"
    (labs / "lab02_segmentation").mkdir(parents=True)
    chapters.mkdir()
    (chapters / "lab02_segmentation.md").write_text("# Lab 02\n")
    (chapters / "lab06_vit.md").write_text("# Lab 06\n")
    found = bs.discover_labs(labs, chapters)
    assert [(lab.lab_id, lab.has_folder) for lab in found] == [
        ("lab02_segmentation", True),
        ("lab06_vit", False),
    ]
    note = bs.insert_after_title("# Lab 06\n\nText.\n", bs.COMING_SOON_NOTE.format(lab_id="x"))
    assert note.startswith("# Lab 06\n") and "Coming soon" in note
    (labs / "lab07_detection").mkdir()
    with pytest.raises(bs.BuildError, match="lab07_detection"):
        bs.discover_labs(labs, chapters)


def test_unknown_token_fails(tmp_path: Path) -> None:
    bs = load_build_script()
    with pytest.raises(bs.BuildError, match="unknown token"):
        bs.render_tokens("{{ course.nope }}", {"course": {}}, tmp_path / "page.md")
