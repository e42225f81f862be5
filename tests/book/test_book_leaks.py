"""No solution text reaches the website or the student notebooks.

What counts as solution text: the fragments that ``autograder.notebook.solution_texts`` returns
for each master notebook (lines of ``# BEGIN/END SOLUTION`` regions, lines ending ``# SOLUTION``,
the lines of cells tagged ``answer`` or ``instructor``), after normalisation, keeping only the
*secret* ones:

* whitespace is collapsed to single spaces (HTML and notebooks re-flow it); for fragments from
  markdown cells, list/heading/quote markers at the start and ``*``/`````` emphasis marks are
  dropped as well (the HTML shows the rendered text);
* a fragment shorter than ``MIN_CHARS`` (12) characters is ignored: ``return x``, ``else:``,
  ``pass`` carry no solution;
* a fragment that also occurs in *public* text is ignored: any master notebook outside its
  solution regions (the exercise's signature, the self-check cells, the text around), the
  book's own Markdown pages, the ``labkit`` sources (the course library is public), the
  stubs the generator inserts, and the static files of the site generator's own packages
  (Sphinx's ``searchtools.js`` contains ``return results``: that line reveals nothing).

Every remaining fragment must not occur in the whitespace-normalised text of any built page (HTML
text content, ``<pre>`` blocks included; other text files raw; notebooks by cell source and
outputs) nor in the student notebooks. Negative controls run the same scan on the solution copy,
on the master notebook and on syntax-highlighted HTML of a fragment: each must find leaks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from autograder.notebook import solution_texts

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_CHARS = 12
GENERATED = ["# YOUR CODE HERE", "raise NotImplementedError"]  # what the stubs put back
_BEGIN = re.compile(r"^\s*#\s*BEGIN SOLUTION\s*$")
_END = re.compile(r"^\s*#\s*END SOLUTION\s*$")
_LINE = re.compile(r"#\s*SOLUTION\s*$")
_MD_PREFIX = re.compile(r"^(?:[-*+>]|#{1,6}|\d+[.)])\s+")
_MD_EMPHASIS = re.compile(r"\*\*|\*|`")
TEXT_SUFFIXES = {".txt", ".js", ".json", ".md", ".py", ".css", ".svg", ".yml", ".xml"}


def normalise(text: str) -> str:
    return " ".join(text.split())


def markdown_plain(text: str) -> str:
    return normalise(_MD_EMPHASIS.sub("", _MD_PREFIX.sub("", text.strip())))


def public_text(nb: nbformat.NotebookNode) -> str:
    """The master's text outside solution regions (an oracle independent of the generator)."""
    parts = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []) or [])
        if tags & {"answer", "instructor"}:
            continue
        inside = False
        for line in cell.source.splitlines():
            if cell.cell_type == "code" and _BEGIN.match(line):
                inside = True
            elif cell.cell_type == "code" and _END.match(line):
                inside = False
            elif not inside and not (cell.cell_type == "code" and _LINE.search(line)):
                parts.append(line)
    return "\n".join(parts)


def labkit_text() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "labkit").rglob("*.py"))
    )


def secret_fragments(master: Path, extra_public: str = "") -> set[str]:
    """The normalised fragments that exist only inside the solution regions of ``master``."""
    nb = nbformat.read(master, as_version=4)
    markdown_lines = {
        line.strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
    }
    public = normalise("\n".join([public_text(nb), extra_public, *GENERATED]))
    public_plain = markdown_plain(public)
    secrets = set()
    for text in solution_texts(nb):
        variants = {normalise(text)}
        if text.strip() in markdown_lines:
            variants.add(markdown_plain(text))
        for fragment in variants:
            if (
                len(fragment) >= MIN_CHARS
                and fragment not in public
                and fragment not in public_plain
            ):
                secrets.add(fragment)
    return secrets


def notebook_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(json.dumps(output, ensure_ascii=False))
            parts.extend(str(v) for v in output.get("data", {}).values())
            parts.append(str(output.get("text", "")))
    return normalise("\n".join(parts))


def html_text(html: str) -> str:
    """Text content of a page; ``<pre>`` keeps its exact characters (highlighting spans joined)."""
    return normalise(BeautifulSoup(html, "html.parser").get_text())


def file_text(path: Path) -> str | None:
    if path.suffix == ".html":
        return html_text(path.read_text(encoding="utf-8", errors="replace"))
    if path.suffix == ".ipynb":
        return notebook_text(path)
    if path.suffix in TEXT_SUFFIXES:
        return normalise(path.read_text(encoding="utf-8", errors="replace"))
    return None


def find_leaks(paths: list[Path], secrets: set[str]) -> dict[str, list[str]]:
    leaks: dict[str, list[str]] = {}
    for path in paths:
        text = file_text(path)
        if text is None:
            continue
        found = sorted(s for s in secrets if s in text)
        if found:
            leaks[str(path)] = found
    return leaks


VENDOR_PACKAGES = ("sphinx", "sphinx_book_theme", "pydata_sphinx_theme", "myst_nb", "myst_parser",
                   "sphinx_design", "sphinx_copybutton", "sphinx_togglebutton", "sphinx_thebe",
                   "sphinxcontrib", "jupyter_book")
VENDOR_SUFFIXES = {".js", ".css", ".html"}


def vendor_text() -> str:
    """Static assets shipped by the site generator's packages (the same for every course)."""
    import importlib.util

    parts = []
    for name in VENDOR_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        roots = spec.submodule_search_locations or []
        for root in roots:
            for path in Path(root).rglob("*"):
                if path.suffix in VENDOR_SUFFIXES and path.stat().st_size < 2_000_000:
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def book_text() -> str:
    """The website's own hand-written sources (public by definition)."""
    return "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "book").rglob("*.md"))
    )


@pytest.fixture(scope="module")
def secrets(site_build) -> dict[Path, set[str]]:
    # Public text is global: a line inside one lab's solution that is printed openly in another
    # lab's notebook, in the book's own pages or in labkit (e.g. `n = len(labels)`) reveals nothing.
    masters = list(site_build.masters)
    public_all = "\n".join(
        [labkit_text(), book_text(), vendor_text()]
        + [public_text(nbformat.read(m, as_version=4)) for m in masters]
    )
    out = {m: secret_fragments(m, public_all) for m in masters}
    for master, frags in out.items():
        assert frags, f"{master}: no secret solution text found: the scan would prove nothing"
    return out


def test_site_has_no_solution_text(site: Path, secrets: dict[Path, set[str]]) -> None:
    files = [p for p in sorted(site.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    all_secrets = set().union(*secrets.values())
    leaks = find_leaks(files, all_secrets)
    assert not leaks, f"solution text on the website: {json.dumps(leaks, indent=1)[:4000]}"


def test_student_notebooks_have_no_solution_text(site_build, secrets) -> None:
    for master, frags in secrets.items():
        student = site_build.student_notebook(master)
        assert student.is_file()
        leaks = find_leaks([student], frags)
        assert not leaks, f"solution text in the student copy: {leaks}"


def test_negative_control_scan_finds_solutions(site_build, secrets) -> None:
    """The same scan flags the solution copy and the master (so the tests above can fail)."""
    for master, frags in secrets.items():
        assert find_leaks([master], frags), f"scan misses the solutions of {master}"
        solution = site_build.solution_notebook(master)
        assert solution.is_file()
        assert find_leaks([solution], frags), f"scan misses the solutions in {solution}"


def test_negative_control_scan_reads_highlighted_html(tmp_path: Path, secrets) -> None:
    """A code fragment rendered as Sphinx/Pygments HTML (one span per token) is still found."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    for frags in secrets.values():
        code = max(frags, key=len)
        page = tmp_path / "page.html"
        body = highlight(code, PythonLexer(), HtmlFormatter())
        page.write_text(
            f"<html><body><p>Intro</p><div class='highlight'>{body}</div></body></html>"
        )
        assert find_leaks([page], {code}), f"HTML scan misses {code!r}"
