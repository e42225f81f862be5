"""Batch mode: ``python -m autograder grade lab02 EXPORT --csv grades.csv`` on a Gradescope-like
export with a solution, a student copy and a hostile submission that snoops on the others."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from ag_helpers import IOU_ONLY, IS_ROOT, OTHERS, TOTAL, validate_results_file

from autograder.config import REPO_ROOT

SNOOP_EXPORT = '''
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    import os
    try:  # the grader's command line names the export folder
        args = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")
        export = next(a.decode() for a in args if a.decode().endswith("export"))
        found = sorted(os.listdir(export))
    except Exception as exc:
        found = type(exc).__name__
    raise RuntimeError(f"export:{found}")
'''

METADATA = """\
submission_1:
  :submitters:
  - :name: Ada Lovelace
    :email: ada@example.org
submission_3:
  :submitters:
  - :name: Mallory
    :email: mallory@example.org
    :sid: "666"
submission_4:
  :submitters:
  - :name: Grace Hopper
    :sid: "101"
  - :name: Alan Turing
    :sid: "102"
"""

# a submission whose confusion_matrix hangs while its definitions run: only its own
# checks are lost, and nobody waits for it beyond the budget
HANG = "class _Forever:\n    while True:\n        pass\n\n" \
    "def confusion_matrix(preds, targets, num_classes, ignore_index=255, _f=_Forever):\n" \
    "    pass\n"


def test_batch_export_to_csv(world_dir, references, make_submission, student_nb, tmp_path):
    export = world_dir / "batch" / "export"  # readable by `nobody` unless the sandbox hides it
    export.mkdir(parents=True)
    os.chmod(export.parent, 0o755)
    os.chmod(export, 0o755)
    make_submission(tmp_path, folder=export / "submission_1")
    make_submission(tmp_path, folder=export / "submission_2", base=student_nb)
    make_submission(tmp_path, folder=export / "submission_3",
                    replace={"confusion_matrix": SNOOP_EXPORT})
    for sub in export.iterdir():
        os.chmod(sub, 0o755)
        for f in sub.iterdir():
            os.chmod(f, 0o644)
    make_submission(tmp_path, folder=export / "submission_4", replace={"confusion_matrix": HANG})
    for f in (export / "submission_4").iterdir():
        os.chmod(f, 0o644)
    (export / "submission_metadata.yml").write_text(METADATA)
    grades = tmp_path / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "lab02", str(export), "--csv", str(grades),
         "--references", str(references), "--jobs", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert f"grades written to {grades}" in proc.stdout

    with open(grades, newline="") as fh:
        all_rows = list(csv.DictReader(fh))
    rows = {r["submission"]: r for r in all_rows}
    assert sorted(rows) == ["submission_1", "submission_2", "submission_3", "submission_4"]
    # one row per submitter: the group of submission_4 shares its score
    group = [r for r in all_rows if r["submission"] == "submission_4"]
    assert [(r["name"], r["sid"]) for r in group] == [("Grace Hopper", "101"),
                                                      ("Alan Turing", "102")]
    assert group[0]["score"] == group[1]["score"]
    assert float(group[0]["score"]) == sum(IOU_ONLY.values()) + sum(OTHERS.values())
    assert rows["submission_3"]["sid"] == "666"
    assert all(float(r["execution_time"]) > 0 for r in all_rows)
    sidecar = json.loads(grades.with_name(grades.name + ".json").read_text())
    assert sidecar["max_score"] == TOTAL
    assert {c["column"]: c["max_score"] for c in sidecar["checks"]}[
        "1.1 confusion_matrix: 2x2 image, 3 classes (rows = targets, columns = preds)"] == 2
    assert not grades.with_name(grades.name + ".partial").exists()
    assert float(rows["submission_1"]["score"]) == TOTAL
    assert float(rows["submission_2"]["score"]) == 0.0
    assert float(rows["submission_3"]["score"]) == sum(IOU_ONLY.values()) + sum(OTHERS.values())
    assert all(float(r["max_score"]) == TOTAL for r in rows.values())
    assert rows["submission_1"]["name"] == "Ada Lovelace"
    assert rows["submission_3"]["email"] == "mallory@example.org"
    assert rows["submission_3"]["1.1 confusion_matrix: 2x2 image, 3 classes (rows = targets, "
                                "columns = preds)"] == "0.0"

    for name in rows:  # each folder also gets its own valid results.json
        data = validate_results_file(export / name / "results.json")
        assert data["score"] == float(rows[name]["score"])
    hostile = validate_results_file(export / "submission_3" / "results.json")
    msg = next(t["output"] for t in hostile["tests"] if t["number"] == "1.1")
    assert "export:" in msg
    if IS_ROOT:  # the other submissions are out of reach (hidden, or at least unreadable)
        assert "submission_1" not in msg, msg
