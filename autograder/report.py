"""``python -m autograder report LAB EXPORT``: item analysis of a graded Gradescope export.

Reads the ``results.json`` that ``python -m autograder grade LAB EXPORT --csv`` wrote into every
submission folder (Gradescope's format: ``tests`` with ``number`` "N.M", ``name``, ``score``,
``max_score``), never the grader's internals, and writes ``OUT/report.html`` with PNG figures
beside it and ``OUT/report.json``:

* the distribution of total scores (histogram);
* per exercise section N (checks "N.M"): points, mean, share of full and of zero marks, and a
  histogram per section;
* per check: pass rate (full points) and the **fail rate among students who pass every other
  check of its section**. A check that most of those students still fail is flagged: either it
  tests something the others do not (look at the students' code) or, more likely, it is broken.
  Flagged when that rate is at least ``FLAG_RATE`` over at least ``FLAG_MIN`` such students. The
  rates of the other checks are then computed again without the flagged ones (a check that fails
  everyone would otherwise leave no student who "passes the rest" of its section).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import pages
from autograder.classlist import read_export

FLAG_RATE = 0.5
FLAG_MIN = 5


@dataclass
class CheckStats:
    number: str
    name: str
    section: str
    max_score: float
    visibility: str
    graded: int  # submissions whose results list this check
    passed: int  # full points
    others_pass: int  # students who pass every other check of the section
    others_pass_failed: int  # ... and fail this one
    flagged: bool = False

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else float("nan")

    @property
    def conditional_fail_rate(self) -> float:
        return self.others_pass_failed / self.others_pass if self.others_pass else float("nan")


@dataclass
class SectionStats:
    section: str
    title: str
    max_score: float
    scores: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else float("nan")

    @property
    def full(self) -> float:
        return sum(s >= self.max_score for s in self.scores) / len(self.scores)

    @property
    def zero(self) -> float:
        return sum(s <= 0 for s in self.scores) / len(self.scores)


@dataclass
class ItemAnalysis:
    lab: str
    submissions: int
    missing: list[str]  # folders without a readable results.json
    totals: list[float]
    max_total: float
    sections: list[SectionStats]
    checks: list[CheckStats]

    @property
    def flagged(self) -> list[CheckStats]:
        return [c for c in self.checks if c.flagged]

    def to_json(self) -> dict:
        return {
            "lab": self.lab, "submissions": self.submissions, "missing": self.missing,
            "totals": self.totals, "max_total": self.max_total,
            "sections": [{**asdict(s), "mean": s.mean, "full": s.full, "zero": s.zero}
                         for s in self.sections],
            "checks": [{**asdict(c), "pass_rate": c.pass_rate,
                        "conditional_fail_rate": c.conditional_fail_rate} for c in self.checks],
        }


def _number_key(number: str) -> list:
    return [int(p) if p.isdigit() else p for p in str(number).split(".")]


def _section_of(number: str) -> str:
    return str(number).split(".")[0] if number else "?"


def analyse(lab_id: str, results: dict[str, dict], missing: list[str]) -> ItemAnalysis:
    """Item analysis of ``{submission id: results.json content}``."""
    info: dict[str, dict] = {}  # number -> name, max, visibility
    passed: dict[str, dict[str, bool]] = {}  # submission -> number -> full points
    points: dict[str, dict[str, float]] = {}
    for sid, data in results.items():
        passed[sid], points[sid] = {}, {}
        for t in data["tests"]:
            number = str(t.get("number") or t.get("name", "?"))
            mx = float(t.get("max_score") or 0)
            entry = info.setdefault(number, {"name": t.get("name", ""), "max": mx,
                                             "visibility": t.get("visibility", "visible")})
            entry["max"] = max(entry["max"], mx)
            score = float(t.get("score") or 0)
            points[sid][number] = score
            passed[sid][number] = score >= mx
    numbers = sorted(info, key=_number_key)
    by_section: dict[str, list[str]] = {}
    for n in numbers:
        by_section.setdefault(_section_of(n), []).append(n)
    def check_stats(n: str, ignore: set[str]) -> CheckStats:
        others = [m for m in by_section[_section_of(n)] if m != n and m not in ignore]
        graded = [s for s in results if n in passed[s]]
        ok_rest = [s for s in graded if others and all(passed[s].get(m, False) for m in others)]
        c = CheckStats(n, info[n]["name"], _section_of(n), info[n]["max"], info[n]["visibility"],
                       graded=len(graded), passed=sum(passed[s][n] for s in graded),
                       others_pass=len(ok_rest),
                       others_pass_failed=sum(not passed[s][n] for s in ok_rest))
        c.flagged = c.others_pass >= FLAG_MIN and c.conditional_fail_rate >= FLAG_RATE
        return c

    # two passes: a broken check fails everyone, which would hide its section's other checks
    first = {n: check_stats(n, set()) for n in numbers}
    broken = {n for n, c in first.items() if c.flagged}
    checks = [first[n] if n in broken else check_stats(n, broken) for n in numbers]
    sections = []
    for sec, nums in by_section.items():
        prefixes = Counter(info[n]["name"].split(":")[0].strip() for n in nums if ":" in info[n]["name"])
        title = prefixes.most_common(1)[0][0] if prefixes else info[nums[0]]["name"][:40]
        sections.append(SectionStats(sec, title, sum(info[n]["max"] for n in nums),
                                     [sum(points[s].get(n, 0.0) for n in nums) for s in results]))
    totals = [float(data.get("score", sum(points[s].values()))) for s, data in results.items()]
    return ItemAnalysis(lab_id, len(results) + len(missing), missing, totals,
                        sum(info[n]["max"] for n in numbers), sections, checks)


def _no_nan(obj):
    """NaN (an undefined rate) as JSON null."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_nan(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- figures


def _figures(a: ItemAnalysis, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = max(5, min(30, int(a.max_total) + 1))
    ax.hist(a.totals, bins=bins, range=(0, a.max_total), color="#4c72b0", edgecolor="white")
    ax.set(xlabel=f"total score (max {a.max_total:g})", ylabel="submissions",
           title=f"{a.lab}: total scores")
    fig.tight_layout()
    fig.savefig(out / "totals.png", dpi=110)
    plt.close(fig)
    names["totals"] = "totals.png"

    n = len(a.sections)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), squeeze=False)
    for ax, sec in zip(axes.flat, a.sections):
        ax.hist(sec.scores, bins=max(2, min(12, int(sec.max_score) + 1)),
                range=(0, sec.max_score), color="#55a868", edgecolor="white")
        ax.set_title(f"{sec.section}. {sec.title}"[:40], fontsize=9)
        ax.set_xlabel(f"points (max {sec.max_score:g})", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "sections.png", dpi=110)
    plt.close(fig)
    names["sections"] = "sections.png"

    fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(a.checks)), 3.2))
    colours = ["#c44e52" if c.flagged else "#4c72b0" for c in a.checks]
    ax.bar([c.number for c in a.checks], [c.pass_rate for c in a.checks], color=colours)
    ax.set(ylim=(0, 1), ylabel="pass rate", title="pass rate per check (red: flagged)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "checks.png", dpi=110)
    plt.close(fig)
    names["checks"] = "checks.png"
    return names


# ----------------------------------------------------------------------------- page


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.0f}%"


def render(a: ItemAnalysis, figures: dict[str, str]) -> str:
    e = pages.esc
    body = [f"<p>{a.submissions} submissions; {len(a.totals)} with results"
            + (f"; <b>{len(a.missing)} without a results.json</b> (not graded yet?): "
               + ", ".join(e(m) for m in a.missing) if a.missing else "") + ".</p>"]
    if a.totals:
        body.append(f"<p>Total: mean {statistics.fmean(a.totals):.2f}, median "
                    f"{statistics.median(a.totals):g} of {a.max_total:g} points.</p>")
    if a.flagged:
        items = "".join(
            f"<li><b>{e(c.number)}</b> {e(c.name)}: failed by {c.others_pass_failed} of the "
            f"{c.others_pass} students who pass every other check of section {e(c.section)}</li>"
            for c in a.flagged)
        body.append(f'<div class="callout"><p><b>Checks to look at (likely broken):</b></p>'
                    f"<ul>{items}</ul><p class=\"note\">Fix the check, rebuild the autograder "
                    "(<code>python -m autograder assign LAB</code>) and regrade.</p></div>")
    body.append('<h2>Total scores</h2><img src="{}" alt="histogram of total scores">'
                .format(figures["totals"]))
    body.append("<h2>Exercises</h2>")
    body.append(pages.table(
        ["section", "exercise", "points", "mean", "full marks", "zero"],
        [[e(s.section), e(s.title), f"{s.max_score:g}", f"{s.mean:.2f}", _pct(s.full),
          _pct(s.zero)] for s in a.sections], numeric={2, 3, 4, 5}))
    body.append('<img src="{}" alt="score distribution per exercise">'.format(figures["sections"]))
    body.append("<h2>Checks</h2>")
    body.append(f'<p class="note">Pass = full points. "Fail rate if the rest passes": among the '
                f"students who pass every other check of the same section, the share that fails "
                f"this one; flagged when at least {_pct(FLAG_RATE)} of at least {FLAG_MIN} such "
                "students fail it.</p>")
    body.append('<img src="{}" alt="pass rate per check">'.format(figures["checks"]))
    body.append(pages.table(
        ["check", "name", "points", "visibility", "pass rate", "fail rate if the rest passes",
         "flag"],
        [[e(c.number), e(c.name), f"{c.max_score:g}", e(c.visibility), _pct(c.pass_rate),
          f"{_pct(c.conditional_fail_rate)} ({c.others_pass_failed}/{c.others_pass})",
          "likely broken" if c.flagged else ""] for c in a.checks],
        row_classes=["flag" if c.flagged else "" for c in a.checks], numeric={2, 4, 5}))
    return pages.page(f"{a.lab}: item analysis", "\n".join(body))


def report(lab_id: str, export_dir: Path, out: Path) -> ItemAnalysis:
    """Analyse the export's results and write ``out/report.html`` (+ figures, report.json)."""
    results, missing = {}, []
    for sub in read_export(export_dir):
        data = sub.results()
        if data is None:
            missing.append(sub.id)
        else:
            results[sub.id] = data
    if not results:
        raise FileNotFoundError(
            f"no results.json in {export_dir}: grade the export first with "
            f"`python -m autograder grade {lab_id} {export_dir} --csv grades.csv`")
    a = analyse(lab_id, results, missing)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(a, out)
    pages.write(out / "report.html", render(a, figures))
    (out / "report.json").write_text(json.dumps(_no_nan(a.to_json()), indent=1))
    return a
