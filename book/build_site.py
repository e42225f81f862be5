"""Build the course website (jupyter-book 1.x, offline) from ``book/`` and the student notebooks.

    python -m autograder assign             # writes dist/student/labs/labNN_topic/labNN_topic.ipynb
    python book/build_site.py --out dist/site

Steps: copy ``book/`` into a stage directory; copy the generated student notebooks (never the
master notebooks) next to their chapter pages, at the path they have on the student branch, so
that jupyter-book's Colab launch button equals ``CourseConfig.colab_url(relpath)``; render the
lab figures; fill in the course values from ``course.toml``; write one API page per importable
``labkit`` module; run ``jupyter-book build`` with warnings as errors and notebooks not executed;
copy the HTML to ``--out``.

Labs are discovered generically: every folder ``labs/labNN_topic/`` needs a chapter page
``book/labs/labNN_topic.md`` and a student notebook (the build fails loudly otherwise); a chapter
page without a lab folder is published with a "coming soon" note.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BOOK_DIR = Path(__file__).resolve().parent
REPO_ROOT = BOOK_DIR.parent
if str(REPO_ROOT) not in sys.path:  # `python book/build_site.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402  (installed with jupyter-book)

from autograder.config import CourseConfig, load_config  # noqa: E402

LAB_RE = re.compile(r"^lab\d\d_[a-z0-9_]+$")
# Files of book/ that are build machinery, not pages.
STAGE_IGNORE = shutil.ignore_patterns(
    "build_site.py",
    "figures.py",
    "figures_lab*.py",
    "README.md",
    "__pycache__",
    "_build",
    "*.pyc",
    ".ipynb_checkpoints",
)
ASSET_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
# labkit modules documented first (in this order); every other importable module follows.
API_FIRST = [
    "labkit",
    "labkit.utils",
    "labkit.metrics",
    "labkit.train",
    "labkit.viz",
    "labkit.data",
]
TOKEN_RE = re.compile(r"\{\{\s*(course|lab)\.([a-z_]+)\s*\}\}")
COURSE_MAP_MARKER = "<!-- course-map -->"
COMING_SOON_NOTE = """
```{{admonition}} Coming soon
:class: note
This lab is not published yet: its notebook will appear here when `labs/{lab_id}/` exists.
```
"""


class BuildError(RuntimeError):
    """A problem the person running the build must fix (printed without a traceback)."""


@dataclass(frozen=True)
class Lab:
    lab_id: str  # "lab02_segmentation"
    chapter: Path | None  # book/labs/lab02_segmentation.md
    has_folder: bool  # labs/lab02_segmentation/ exists in the repository

    @property
    def number(self) -> int:
        return int(self.lab_id[3:5])

    @property
    def notebook_relpath(self) -> str:
        """Path of the student notebook on the student branch (and inside the stage)."""
        return f"labs/{self.lab_id}/{self.lab_id}.ipynb"

    @property
    def docname(self) -> str:
        return f"labs/{self.lab_id}"

    @property
    def notebook_docname(self) -> str:
        return f"labs/{self.lab_id}/{self.lab_id}"


def display(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def discover_labs(labs_dir: Path, chapters_dir: Path) -> list[Lab]:
    """Labs with a folder in ``labs/`` or a chapter page in ``book/labs/``, in course order."""
    folders = set()
    if labs_dir.is_dir():
        folders = {p.name for p in labs_dir.iterdir() if p.is_dir() and LAB_RE.match(p.name)}
    chapters = {p.stem: p for p in chapters_dir.glob("lab*.md") if LAB_RE.match(p.stem)}
    missing = sorted(folders - chapters.keys())
    if missing:
        raise BuildError(
            "labs without a chapter page: "
            + ", ".join(missing)
            + f"\nwrite {display(chapters_dir)}/<lab>.md for each "
            "(learning goals, short theory, figures; see book/labs/lab02_segmentation.md)"
        )
    return [
        Lab(lab_id, chapters.get(lab_id), lab_id in folders)
        for lab_id in sorted(folders | chapters.keys())
    ]


def copy_student_notebooks(labs: list[Lab], student_dir: Path, stage: Path) -> None:
    """Copy ``<student_dir>/labs/<lab>/`` (notebook and assets) to ``<stage>/labs/<lab>/``."""
    if any(lab.has_folder for lab in labs) and not (student_dir / "labs").is_dir():
        raise BuildError(
            f"no student notebooks in {student_dir}/labs: run `python -m autograder assign` "
            "first (or pass --student-dir)"
        )
    for lab in labs:
        if not lab.has_folder:
            continue
        src = student_dir / "labs" / lab.lab_id
        notebook = student_dir / lab.notebook_relpath
        if not notebook.is_file():
            raise BuildError(
                f"missing student notebook {notebook} for labs/{lab.lab_id}/: run "
                "`python -m autograder assign` first"
            )
        check_no_solutions(notebook)
        shutil.copytree(src, stage / "labs" / lab.lab_id, ignore=ASSET_IGNORE)
        hide_badge_cells(stage / lab.notebook_relpath)


def hide_badge_cells(notebook: Path) -> None:
    """Hide the notebook's own Colab badge cell (tag ``colab-badge``) on the site.

    Its image comes from colab.research.google.com, which an offline page cannot load; the
    chapter page shows a local badge and the notebook page has the Colab launch button. The
    cell stays in the notebook (``remove-cell`` only hides it from the HTML).
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "colab-badge" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            changed = True
    if changed:
        nbformat.write(nb, notebook)


def check_no_solutions(notebook: Path) -> None:
    """Refuse a master notebook in place of a student copy (a cheap guard; the book tests scan
    the built site for every solution fragment)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    if re.search(r"^\s*#\s*(BEGIN|END) SOLUTION\b|#\s*SOLUTION\s*$", text, re.MULTILINE):
        raise BuildError(f"{notebook} contains solution markers: it is not a student copy")
    instructor = [i for i, cell in enumerate(nb.cells) if "instructor" in cell_tags(cell)]
    if instructor:
        raise BuildError(
            f"{notebook} has cells tagged 'instructor' ({instructor}): not a student copy"
        )


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def colab_badge(cfg: CourseConfig, lab: Lab) -> str:
    """Markdown for an "Open in Colab" badge (local SVG: the site works offline)."""
    return f"[![Open in Colab](../_static/colab-badge.svg)]({cfg.colab_url(lab.notebook_relpath)})"


def render_tokens(text: str, values: dict[str, dict[str, str]], where: Path) -> str:
    """Replace ``{{ course.x }}`` / ``{{ lab.x }}`` tokens; unknown tokens fail the build."""

    def sub(match: re.Match[str]) -> str:
        scope, key = match.groups()
        try:
            return values[scope][key]
        except KeyError:
            raise BuildError(f"{where}: unknown token {match.group(0)}") from None

    return TOKEN_RE.sub(sub, text)


def course_values(cfg: CourseConfig) -> dict[str, str]:
    return {
        "title": cfg.title,
        "repository": cfg.repository,
        "repository_name": cfg.repository.rstrip("/").rsplit("/", 1)[-1],
        "release_ref": cfg.release_ref,
        "student_branch": cfg.student_branch,
        "pip_spec": cfg.pip_spec,
        "conda_env": conda_env_name(),
    }


def conda_env_name() -> str:
    """``name:`` of ``environment.yml`` (falls back to "labkit" while the file does not exist)."""
    env = REPO_ROOT / "environment.yml"
    if env.is_file():
        name = (yaml.safe_load(env.read_text()) or {}).get("name")
        if name:
            return str(name)
    return "labkit"


def course_map(labs: list[Lab]) -> str:
    """The welcome page's table of labs (from ``book/course_map.yml``)."""
    entries = yaml.safe_load((BOOK_DIR / "course_map.yml").read_text())["labs"]
    by_id = {lab.lab_id: lab for lab in labs}
    unknown = sorted(by_id.keys() - {e["id"] for e in entries})
    if unknown:
        raise BuildError(f"add {', '.join(unknown)} to book/course_map.yml")
    rows = ["| Lab | Topic | Key papers | Status |", "|---|---|---|---|"]
    for e in entries:
        lab = by_id.get(e["id"])
        name = f"Lab {e['id'][3:5]}: {e['title']}"
        if lab is not None and lab.chapter is not None:
            name = f"[{name}]({lab.docname}.md)"
        status = "available" if lab is not None and lab.has_folder else "coming soon"
        papers = ", ".join(f"{{cite:t}}`{key}`" for key in e.get("papers", []))
        rows.append(f"| {name} | {e['topic']} | {papers} | {status} |")
    return "\n".join(rows) + "\n"


def render_pages(stage: Path, cfg: CourseConfig, labs: list[Lab]) -> None:
    course = course_values(cfg)
    by_chapter = {f"labs/{lab.lab_id}.md": lab for lab in labs}
    for page in sorted(stage.rglob("*.md")):
        rel = page.relative_to(stage).as_posix()
        text = page.read_text()
        values: dict[str, dict[str, str]] = {"course": course}
        lab = by_chapter.get(rel)
        if lab is not None:
            values["lab"] = {
                "colab_badge": colab_badge(cfg, lab) if lab.has_folder else "",
                "colab_url": cfg.colab_url(lab.notebook_relpath) if lab.has_folder else "",
                "notebook": (
                    f"{{doc}}`the student notebook <{lab.lab_id}/{lab.lab_id}>`"
                    if lab.has_folder
                    else "the student notebook (coming soon)"
                ),
            }
            if not lab.has_folder:
                text = insert_after_title(text, COMING_SOON_NOTE.format(lab_id=lab.lab_id))
        if COURSE_MAP_MARKER in text:
            text = text.replace(COURSE_MAP_MARKER, course_map(labs))
        page.write_text(render_tokens(text, values, page))


def insert_after_title(text: str, block: str) -> str:
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "".join(lines[: i + 1]) + block + "".join(lines[i + 1 :])
    return block + text


def api_modules() -> list[str]:
    """Importable ``labkit`` modules: API_FIRST order, then the rest alphabetically.

    Modules that do not exist yet are skipped; a module that exists but fails to import fails
    the build (autodoc would only warn).
    """
    import labkit

    found = {"labkit"}
    errors = []
    for info in pkgutil.walk_packages(labkit.__path__, "labkit.", onerror=errors.append):
        lab_checks = info.name.startswith("labkit.checking.lab")  # declarations, not an API
        if not lab_checks and not any(part.startswith("_") for part in info.name.split(".")):
            found.add(info.name)
    for name in sorted(found):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001  (report any import failure)
            raise BuildError(f"cannot import {name} for the API reference: {exc!r}") from exc
    if errors:
        raise BuildError(f"cannot import labkit subpackages: {errors}")
    return [m for m in API_FIRST if m in found] + sorted(found - set(API_FIRST))


def api_page(module_name: str) -> str:
    """One API page: the module documented by autodoc, members defined in that module only.

    ``:ignore-module-all:`` keeps autodoc from documenting re-exports twice (which would make
    type cross-references ambiguous); re-exported names are listed with a link instead.
    """
    module = importlib.import_module(module_name)
    lines = [
        f"# `{module_name}`",
        "",
        "```{eval-rst}",
        f".. automodule:: {module_name}",
        "   :members:",
        "   :ignore-module-all:",
        "   :show-inheritance:",
        "```",
        "",
    ]
    reexports = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name, None)
        origin = getattr(obj, "__module__", None)
        if origin and origin != module_name and origin.startswith("labkit"):
            reexports.append(f"- `{module_name}.{name}`: {{py:obj}}`{origin}.{name}`")
    if reexports:
        lines += ["## Re-exported names", "", *reexports, ""]
    return "\n".join(lines)


def write_api_pages(stage: Path) -> list[str]:
    docnames = []
    for name in api_modules():
        (stage / "api" / f"{name}.md").write_text(api_page(name))
        docnames.append(f"api/{name}")
    return docnames


def write_toc(stage: Path, labs: list[Lab], api_docs: list[str]) -> None:
    toc_path = stage / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text())
    chapters = []
    for lab in labs:
        if lab.chapter is None:
            continue
        entry: dict = {"file": lab.docname}
        if lab.has_folder:
            entry["sections"] = [{"file": lab.notebook_docname}]
        chapters.append(entry)
    for part in toc["parts"]:
        if part.get("caption") == "Labs":
            part["chapters"] = chapters
        for chapter in part["chapters"]:
            if chapter.get("file") == "api/index":
                chapter["sections"] = [{"file": doc} for doc in api_docs]
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False))


def write_config(stage: Path, cfg: CourseConfig) -> None:
    """Fill ``_config.yml`` with the values of ``course.toml``."""
    path = stage / "_config.yml"
    conf = yaml.safe_load(path.read_text())
    conf["title"] = cfg.title
    conf["repository"]["url"] = cfg.repository
    conf["repository"]["branch"] = cfg.student_branch
    path.write_text(yaml.safe_dump(conf, sort_keys=False))


def make_figures(stage: Path, labs: list[Lab]) -> None:
    sys.path.insert(0, str(BOOK_DIR))
    try:
        import figures
    finally:
        sys.path.remove(str(BOOK_DIR))
    for lab in labs:
        for make in figures.FIGURES.get(lab.lab_id, []):
            make(stage / "labs" / "figures")


def stage_book(stage: Path, student_dir: Path, labs_dir: Path) -> None:
    cfg = load_config()
    labs = discover_labs(labs_dir, BOOK_DIR / "labs")
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(BOOK_DIR, stage, ignore=STAGE_IGNORE)
    copy_student_notebooks(labs, student_dir, stage)
    make_figures(stage, labs)
    render_pages(stage, cfg, labs)
    api_docs = write_api_pages(stage)
    write_toc(stage, labs, api_docs)
    write_config(stage, cfg)


def run_jupyter_book(stage: Path) -> Path:
    """``jupyter-book build`` with warnings as errors; returns the HTML directory."""
    cmd = [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(stage),
        "--path-output", str(stage), "--all", "-W", "--keep-going",
    ]  # fmt: skip
    env = dict(os.environ)  # autodoc documents the labkit of this checkout
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, cwd=stage, env=env)
    html = stage / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        raise BuildError(
            f"jupyter-book build failed (exit {proc.returncode}); warnings count as errors, "
            "see the messages above"
        )
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "dist" / "site",
        help="where the HTML site goes (default: dist/site)",
    )  # fmt: skip
    parser.add_argument(
        "--student-dir", type=Path, default=REPO_ROOT / "dist" / "student",
        help="`python -m autograder assign` output: labs/<lab>/<lab>.ipynb (default: dist/student)",
    )  # fmt: skip
    parser.add_argument(
        "--stage", type=Path, default=REPO_ROOT / "build" / "book_stage",
        help="scratch copy of book/ that jupyter-book builds (default: build/book_stage)",
    )  # fmt: skip
    parser.add_argument(
        "--labs-dir", type=Path, default=REPO_ROOT / "labs",
        help="the master notebooks' folders; only their names are read (default: labs/)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        stage = args.stage.resolve()
        stage_book(stage, args.student_dir.resolve(), args.labs_dir.resolve())
        html = run_jupyter_book(stage)
    except BuildError as exc:
        print(f"build_site.py: error: {exc}", file=sys.stderr)
        return 1
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html, out)
    print(f"site written to {out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
