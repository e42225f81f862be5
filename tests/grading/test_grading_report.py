"""``python -m autograder report``: item analysis of a graded export (synthetic results.json)."""

from __future__ import annotations

import json
import shutil

import pytest
from export_factory import CHECKS
from grading_helpers import N_SUBMISSIONS, assert_clean

from autograder.classlist import read_export
from autograder.cli import main


@pytest.fixture(scope="module")
def report_dir(class_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "lab02", str(class_export.root), "--out", str(out)]) == 0
    return out


def test_pass_rates_and_distributions(report_dir, class_export):
    data = json.loads((report_dir / "report.json").read_text())
    assert data["submissions"] == N_SUBMISSIONS and not data["missing"]
    assert len(data["totals"]) == N_SUBMISSIONS
    assert data["max_total"] == sum(w for _, _, w, _ in CHECKS)
    checks = {c["number"]: c for c in data["checks"]}
    assert list(checks) == [n for n, *_ in CHECKS]
    # recompute one pass rate from the files themselves
    subs = read_export(class_export.root)
    full = sum(next(t for t in s.results()["tests"] if t["number"] == "1.2")["score"] == 2
               for s in subs)
    assert checks["1.2"]["pass_rate"] == pytest.approx(full / N_SUBMISSIONS)
    sections = {s["section"]: s for s in data["sections"]}
    assert set(sections) == {"1", "2", "3", "4", "5", "6"}
    assert sections["5"]["title"] == "UNet" and sections["5"]["max_score"] == 9
    empty = next(s for s in class_export.students if s.kind == "empty")
    assert min(data["totals"]) == 0 and empty.sid in {s.id for s in subs}


def test_broken_check_flagged_hard_check_not(report_dir, class_export):
    data = json.loads((report_dir / "report.json").read_text())
    flagged = [c["number"] for c in data["checks"] if c["flagged"]]
    assert flagged == [class_export.broken_check]
    hard = next(c for c in data["checks"] if c["number"] == class_export.hard_check)
    assert 0 < hard["conditional_fail_rate"] < 0.5 and not hard["flagged"]


def test_page_in_chromium(report_dir, open_page):
    visit = open_page(report_dir, "report.html")
    assert_clean(visit)
    assert len(visit.images) == 3
    assert "likely broken" in visit.text and "mean_iou: only one class present" in visit.text


def test_ungraded_submissions_are_listed(class_export, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(class_export.root, export)
    missing = class_export.students[0].sid
    (export / missing / "results.json").unlink()
    (export / class_export.students[1].sid / "results.json").write_text("{not json")
    (export / "notes").mkdir()  # not in the metadata: not a submission
    assert main(["report", "lab02", str(export)]) == 0  # default --out: EXPORT-report
    data = json.loads((tmp_path / "export-report" / "report.json").read_text())
    assert sorted(data["missing"]) == sorted([missing, class_export.students[1].sid])
    assert len(data["totals"]) == N_SUBMISSIONS - 2


def test_export_without_results_says_what_to_run(tmp_path, capsys):
    (tmp_path / "submission_1").mkdir()
    assert main(["report", "lab02", str(tmp_path)]) == 2
    assert "python -m autograder grade lab02" in capsys.readouterr().err
    assert main(["report", "lab02", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_group_submitters_from_metadata(class_export):
    subs = {s.id: s for s in read_export(class_export.root)}
    group = class_export.students[3]
    assert len(subs[group.sid].submitters) == 2
    assert subs[group.sid].label == " & ".join(group.names)
    assert subs[group.sid].submitters[0].sid and "@" in subs[group.sid].submitters[0].email
