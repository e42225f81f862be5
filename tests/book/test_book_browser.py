"""The built website in a real headless Chromium (playwright), served from localhost, offline.

Every HTML page is opened once (the ``crawl`` fixture); every request that leaves localhost is
aborted and recorded, so the site is checked as it behaves without internet. Screenshots of the
home page and of each lab go to ``dist/screenshots/``.
"""

from __future__ import annotations

import functools
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from autograder.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = REPO_ROOT / "dist" / "screenshots"
SEARCH_WORD = "segmentation"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server(site: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=site))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the book tests need Chromium. Run `make test` (it installs it) "
            "or `apt-get install -y chromium`."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('playwright is not installed: pip install -e ".[dev]" (or run `make test`)')
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class PageVisit:
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # same-origin requests that failed or >= 400
    external: list[str] = field(default_factory=list)  # requests that tried to leave localhost
    links: list[str] = field(default_factory=list)  # absolute hrefs
    images: list[dict] = field(default_factory=list)


def new_page(browser, base: str, visit_ref: list[PageVisit]):
    """A page whose events are recorded into ``visit_ref[0]``; off-site requests are aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(route):
        url = route.request.url
        if url.startswith(base) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            visit_ref[0].external.append(url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console",
        lambda msg: msg.type == "error" and visit_ref[0].console_errors.append(msg.text),
    )
    page.on("pageerror", lambda exc: visit_ref[0].console_errors.append(f"uncaught: {exc}"))

    def on_failed(request):
        if request.url.startswith(base):
            visit_ref[0].failed.append(f"{request.url} ({request.failure})")

    def on_response(response):
        if response.url.startswith(base) and response.status >= 400:
            visit_ref[0].failed.append(f"{response.url} (HTTP {response.status})")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return page


LOAD_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done);
                            setTimeout(done, 5000); })));
  return imgs.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                           complete: img.complete}));
}"""


def html_pages(site: Path) -> list[str]:
    """Every HTML page of the site, except the theme's template fragments in ``_static``."""
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if "_static" not in p.relative_to(site).parts
    )


@pytest.fixture(scope="module")
def crawl(browser, server: str, site: Path, site_build) -> dict[str, PageVisit]:
    visits: dict[str, PageVisit] = {}
    ref: list[PageVisit] = [PageVisit(server)]
    page = new_page(browser, server, ref)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {"intro.html": "home.png"}
    for master in site_build.masters:
        lab = master.parent.name
        shots[f"labs/{lab}.html"] = f"{lab}.png"
        shots[f"labs/{lab}/{lab}.html"] = f"{lab}_notebook.png"
    for rel in html_pages(site):
        visit = ref[0] = visits[rel] = PageVisit(server + rel)
        page.goto(visit.url, wait_until="networkidle")
        visit.images = page.evaluate(LOAD_IMAGES_JS)
        visit.links = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        if rel in shots:
            page.screenshot(path=str(SCREENSHOTS / shots[rel]), full_page=True)
    page.context.close()
    return visits


def report(visits: dict[str, PageVisit], attr: str) -> dict[str, list]:
    return {rel: getattr(v, attr) for rel, v in visits.items() if getattr(v, attr)}


def test_every_page_was_opened(crawl: dict[str, PageVisit], site_build) -> None:
    assert "intro.html" in crawl and "search.html" in crawl
    for master in site_build.masters:
        assert f"labs/{master.parent.name}/{master.parent.name}.html" in crawl


def test_no_console_errors(crawl: dict[str, PageVisit]) -> None:
    assert not report(crawl, "console_errors")


def test_no_failed_same_origin_requests(crawl: dict[str, PageVisit]) -> None:
    assert not report(crawl, "failed")


def test_nothing_loaded_from_the_internet(crawl: dict[str, PageVisit]) -> None:
    """Offline: no page fetches a CDN, font or analytics resource when it loads."""
    assert not report(crawl, "external")


def test_every_image_loads(crawl: dict[str, PageVisit]) -> None:
    broken = {
        rel: [img["src"] for img in v.images if not img["width"]]
        for rel, v in crawl.items()
        if any(not img["width"] for img in v.images)
    }
    assert not broken
    assert any(v.images for v in crawl.values())


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"id", "name"} and value:
                self.ids.add(value)


def test_internal_links_resolve(crawl: dict[str, PageVisit], server: str) -> None:
    status: dict[str, int] = {}
    ids: dict[str, set[str]] = {}
    broken = []
    for rel, visit in crawl.items():
        for href in visit.links:
            if not href.startswith(server):
                continue
            target, fragment = urldefrag(href)
            if target not in status:
                try:
                    with urllib.request.urlopen(target, timeout=10) as resp:
                        status[target] = resp.status
                        if resp.headers.get_content_type() == "text/html":
                            parser = _Ids()
                            parser.feed(resp.read().decode("utf-8", "replace"))
                            ids[target] = parser.ids
                except urllib.error.HTTPError as exc:
                    status[target] = exc.code
            if status[target] != 200:
                broken.append(f"{rel}: {href} (HTTP {status[target]})")
            elif fragment and target in ids and unquote(fragment) not in ids[target]:
                broken.append(f"{rel}: {href} (no anchor #{fragment})")
    assert not broken, "\n".join(broken)
    assert status, "no internal links found"


def test_colab_links_point_at_student_notebooks(crawl: dict[str, PageVisit], site_build) -> None:
    cfg = load_config()
    pattern = re.compile(
        rf"^https://colab\.research\.google\.com/github/{re.escape(cfg.github_slug)}/blob/"
        rf"{re.escape(cfg.student_branch)}/(?P<relpath>labs/(?P<lab>lab\d\d_\w+)/(?P=lab)\.ipynb)$"
    )
    seen = set()
    bad = []
    for rel, visit in crawl.items():
        for href in visit.links:
            if "colab.research.google.com" not in href:
                continue
            match = pattern.match(href)
            if not match or not (site_build.student_dir / match["relpath"]).is_file():
                bad.append(f"{rel}: {href}")
            else:
                seen.add(match["relpath"])
    assert not bad, "Colab links not pointing at a student notebook:\n" + "\n".join(bad)
    expected = {f"labs/{m.parent.name}/{m.name}" for m in site_build.masters}
    assert seen == expected


def test_search_finds_a_known_word(browser, server: str) -> None:
    ref = [PageVisit(server)]
    page = new_page(browser, server, ref)
    page.goto(f"{server}search.html?q={SEARCH_WORD}", wait_until="networkidle")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    results = page.eval_on_selector_all(
        "#search-results ul.search li a", "els => els.map(a => a.href)"
    )
    page.context.close()
    assert any("labs/lab02_segmentation" in urlparse(r).path for r in results), results
    assert not ref[0].console_errors and not ref[0].failed and not ref[0].external


def test_screenshots_saved(crawl: dict[str, PageVisit]) -> None:
    home = SCREENSHOTS / "home.png"
    assert home.is_file() and home.stat().st_size > 10_000
