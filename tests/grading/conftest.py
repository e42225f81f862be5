"""Fixtures of the grading-week tests (report, answers, similarity): one generated export of a
lab02 class per session, and the HTML pages opened in headless Chromium the way the website
tests do it (tests/book/test_book_browser.py: playwright, off-site requests aborted and recorded,
console errors and failed requests collected)."""

from __future__ import annotations

import functools
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "book"))

from export_factory import ClassExport, write_export  # noqa: E402
from grading_helpers import N_SUBMISSIONS  # noqa: E402
from test_book_browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LOAD_IMAGES_JS,
    PageVisit,
    QuietHandler,
    new_page,
)


@pytest.fixture(scope="session")
def class_export(tmp_path_factory) -> ClassExport:
    """A graded Gradescope-style export of 34 lab02 submissions (synthetic results.json)."""
    return write_export(tmp_path_factory.mktemp("export") / "lab02_export", N_SUBMISSIONS)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: run `make test` (it installs it) or "
                    "`apt-get install -y chromium`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def open_page(browser):
    """``open_page(folder, relpath)`` -> PageVisit: the page served from ``folder`` on
    localhost, loaded until the network is idle, every image loaded; plus its text."""
    servers = {}

    def serve(folder: Path) -> str:
        if folder not in servers:
            httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                        functools.partial(QuietHandler, directory=folder))
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            servers[folder] = httpd
        return f"http://127.0.0.1:{servers[folder].server_address[1]}/"

    def visit(folder: Path, relpath: str) -> PageVisit:
        base = serve(folder)
        ref = [PageVisit(base + relpath)]
        page = new_page(browser, base, ref)
        page.goto(ref[0].url, wait_until="networkidle")
        ref[0].images = page.evaluate(LOAD_IMAGES_JS)
        ref[0].links = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        ref[0].text = page.inner_text("body")
        page.context.close()
        return ref[0]

    yield visit
    for httpd in servers.values():
        httpd.shutdown()
        httpd.server_close()
