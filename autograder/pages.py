"""Self-contained HTML pages for the grading reports (report, answers, similarity).

No JavaScript, no external resources (the pages open offline, from disk or a local server),
student text always escaped; Markdown rendered with markdown-it-py (CommonMark, raw HTML off, so
a student's ``<script>`` is shown, never run; images named, never loaded).
"""

from __future__ import annotations

import html
from pathlib import Path

from markdown_it import MarkdownIt

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flag td { background: #fde2e1; }
.note { color: #555; font-size: .92em; }
.callout { border-left: 4px solid #c0392b; background: #fdf3f2; padding: .5em 1em; }
.answer { border: 1px solid #ddd; border-radius: 4px; padding: .2em 1em; margin: .8em 0;
          break-inside: avoid; }
.answer h3 { font-size: 1em; margin: .5em 0; color: #444; }
.missing { color: #999; font-style: italic; }
.question { background: #f6f8fa; padding: .3em 1em; border-radius: 4px; }
.page { break-after: page; } .page:last-child { break-after: auto; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: .85em; }
mark { background: #ffe08a; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
.side pre { margin: 0; }
img { max-width: 100%; }
"""

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def _image_as_text(self, tokens, idx, options, env) -> str:
    """An image in a student's answer is named, not loaded (no remote requests, no tracking
    pixel when the page is opened or printed; Colab attachments would not resolve anyway)."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    return f'<span class="missing">[image: {esc(alt or token.attrGet("src") or "")}]</span>'


_MD.add_render_rule("image", _image_as_text)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def markdown(text: str) -> str:
    """Markdown (CommonMark + tables) to HTML; raw HTML in the text is escaped."""
    return _MD.render(text)


def page(title: str, body: str, *, css: str = "") -> str:
    """A complete HTML document (UTF-8, inline CSS, no favicon request)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><link rel=\"icon\" href=\"data:,\">"
        f"<style>{CSS}{css}</style></head>\n<body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(header: list[str], rows: list[list[str]], *, row_classes: list[str] | None = None,
          numeric: set[int] | None = None) -> str:
    """An HTML table; cells are already HTML (escape them with :func:`esc`)."""
    numeric = numeric or set()
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
