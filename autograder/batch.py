"""Grade a Gradescope export in parallel: ``python -m autograder grade LAB EXPORT --csv FILE``.

Each submission is graded in a worker process of its own (forked from this one, so the lab's
checks and references are loaded once), at most ``--jobs`` at a time (default: the number of
cores), each in its own jail (:mod:`autograder.sandbox`). A worker that outlives the
submission's budget (plus a margin for the grader itself) is killed with everything it started,
and the submission gets a complete results.json saying so: one hanging, crashing or hostile
submission never delays or loses another's row. Every finished submission's row is appended
to ``FILE.partial`` at once; the CSV, sorted by submission, is written atomically at the end,
with one row per submitter (group members share the score) and a JSON sidecar ``FILE.json``
with every check's number, title, maximum and visibility.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

from autograder.classlist import read_metadata
from autograder.grade import (
    _references,
    finalize,
    grade_submission,
    listed_tests,
    private_paths,
    write_results,
)
from autograder.runner import budget_s
from autograder.spec import LabSpec

GRACE_S = 120.0  # the grader's own work beyond the students' budget (parsing, checks)


def _worker(lab: LabSpec, folder: Path, refs, hide: list[str], conn) -> None:
    """Grade one folder (in a forked process) and send the results back."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    results = grade_submission(lab, folder, references=refs, hide=hide)
    try:
        write_results(results, folder / "results.json")
    except OSError:
        pass
    conn.send(results)
    conn.close()


def _kill_tree(pid: int) -> None:
    from autograder.sandbox import _descendants, _signal_all

    _signal_all([pid, *_descendants(pid)], signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _timed_out(lab: LabSpec, limit: float) -> dict:
    message = (f"The autograder stopped this submission after {limit:.0f} s (the time budget per "
               "submission plus the grader's own margin); please tell the course staff.")
    results = finalize(listed_tests(lab, message), [message])
    results["execution_time"] = round(limit, 2)
    return results


def grade_export(lab: LabSpec, export_dir: Path, *, references_file: Path | None = None,
                 jobs: int | None = None, progress: bool = True,
                 on_result=None) -> dict[str, dict]:
    """Grade every submission folder of ``export_dir``; {folder name: results}."""
    refs = _references(lab, references_file)
    folders = sorted(p for p in export_dir.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_")))
    hide = private_paths(lab, export_dir, references_file)
    jobs = max(1, jobs or os.cpu_count() or 1)
    limit = budget_s() + GRACE_S
    ctx = multiprocessing.get_context("fork")
    bar = _bar(len(folders), progress)
    todo, running, done = list(folders), {}, {}
    try:
        while todo or running:
            while todo and len(running) < jobs:
                folder = todo.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(lab, folder, refs, hide, send),
                                   daemon=False)
                proc.start()
                send.close()
                running[folder] = (proc, recv, time.monotonic())
            time.sleep(0.05)
            for folder, (proc, recv, start) in list(running.items()):
                results = None
                if recv.poll():
                    try:
                        results = recv.recv()
                    except (EOFError, OSError):
                        results = None
                elif proc.is_alive() and time.monotonic() - start < limit:
                    continue
                proc.join(timeout=1)
                if proc.is_alive() or results is None:
                    _kill_tree(proc.pid)
                    proc.join(timeout=5)
                if results is None:
                    results = _timed_out(lab, time.monotonic() - start)
                    write_results(results, folder / "results.json")
                recv.close()
                del running[folder]
                done[folder.name] = results
                if on_result is not None:
                    on_result(folder, results)
                bar.update(1)
    finally:
        for proc, _, _ in running.values():
            _kill_tree(proc.pid)
        bar.close()
    return done


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="submission", disable=not enabled,
                file=sys.stderr)


def rows_of(name: str, results: dict, submitters) -> list[dict]:
    """One CSV row per submitter (a group shares one score)."""
    base = {"submission": name, "score": results["score"],
            "max_score": sum(t["max_score"] for t in results["tests"]),
            "execution_time": results.get("execution_time", "")}
    for t in results["tests"]:
        base[_column(t)] = t["score"]
    people = submitters or [None]
    return [{"submission": name, "name": getattr(p, "name", ""), "sid": getattr(p, "sid", ""),
             "email": getattr(p, "email", ""), **base} for p in people]


def _column(test: dict) -> str:
    return f"{test.get('number', '')} {test['name']}".strip()


def grade_batch(lab: LabSpec, export_dir: Path, csv_path: Path, *,
                references_file: Path | None = None, jobs: int | None = None,
                progress: bool = True) -> list[dict]:
    """Grade an export into ``csv_path`` (rows as they finish in ``.partial``, sorted at the
    end) and its sidecar ``csv_path.json`` (the checks and their maxima)."""
    meta = read_metadata(export_dir)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    partial = csv_path.with_name(csv_path.name + ".partial")
    partial.unlink(missing_ok=True)
    rows: list[dict] = []

    def keep(folder: Path, results: dict) -> None:
        new = rows_of(folder.name, results, meta.get(folder.name, []))
        rows.extend(new)
        with open(partial, "a") as fh:
            for row in new:
                fh.write(json.dumps(row) + "\n")

    grade_export(lab, export_dir, references_file=references_file, jobs=jobs,
                 progress=progress, on_result=keep)
    rows.sort(key=lambda r: (r["submission"], r["sid"], r["name"]))
    checks = listed_tests(lab, "")["tests"]
    fields = ["submission", "name", "sid", "email", "score", "max_score", "execution_time",
              *(_column(t) for t in checks)]
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, csv_path)
    sidecar = {"lab": lab.id, "max_score": sum(t["max_score"] for t in checks),
               "checks": [{"column": _column(t), "number": t.get("number", ""),
                           "name": t["name"], "max_score": t["max_score"],
                           "visibility": t["visibility"]} for t in checks]}
    csv_path.with_name(csv_path.name + ".json").write_text(json.dumps(sidecar, indent=2))
    partial.unlink(missing_ok=True)
    return rows
