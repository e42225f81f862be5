"""Sphinx extension: the site works offline and loads without console errors.

* MathJax 3 is served from the site itself instead of a CDN. The files come from the
  ``sphinx-mathjax-offline`` package (MathJax 3.2); only the TeX-to-HTML bundle, its TeX
  extensions (loaded on demand), its fonts, the menu and the accessibility components are copied
  (about 3 MB).
* Scripts registered twice are written once: sphinx-thebe 0.3 registers its inline configuration
  (``const THEBE_JS_URL = ...``) twice under jupyter-book 1.x, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" on every page.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

MATHJAX_FILES = ["tex-chtml.js", "input/tex/extensions", "output/chtml", "ui", "a11y"]


def mathjax_source() -> Path:
    try:
        dist = distribution("sphinx-mathjax-offline")
    except PackageNotFoundError:
        raise ExtensionError(
            'offline MathJax needs the `sphinx-mathjax-offline` package: pip install -e ".[book]"'
        ) from None
    return Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))


def set_mathjax_path(app: Sphinx, config: Config) -> None:
    config.mathjax_path = "mathjax/tex-chtml.js"  # relative: served from _static/


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    src = mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    for rel in MATHJAX_FILES:
        if (src / rel).is_dir():
            copy_asset(str(src / rel), str(dest / rel))
        else:
            dest.joinpath(rel).parent.mkdir(parents=True, exist_ok=True)
            copy_asset(str(src / rel), str(dest / Path(rel).parent))


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated scripts (same file and attributes; an inline script's file is None or "")."""
    seen: set[tuple] = set()
    unique = []
    for js in context.get("script_files", []):
        key = (
            str(getattr(js, "filename", js) or ""),
            tuple(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(js)
    if "script_files" in context:
        context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    mathjax_source()  # fail early with the install hint
    app.connect("config-inited", set_mathjax_path, priority=900)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
