"""Grade a Gradescope export in parallel: ``python -m autograder grade LAB EXPORT --csv FILE``.

``--jobs`` warm workers (default: the number of cores) grade at the same time. Each is forked
from this process (the checks and references are loaded once) and keeps one jail whose zygote
imported torch once (:class:`autograder.sandbox.Session`); between two submissions every process
of the student's is killed and the jail's temp folders are emptied. A worker that outlives a
submission's budget (plus a margin for the grader itself) is killed with its jail and replaced,
and that submission gets a complete results.json saying so: one hanging, crashing or hostile
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


def _worker(lab: LabSpec, refs, hide: list[str], conn) -> None:
    """A warm worker: one jail whose zygote imported torch once, reused submission after
    submission (its children killed and its temp folders emptied in between)."""
    from autograder.runner import grading_limits
    from autograder.sandbox import Session

    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    from autograder.runner import imported_modules

    session = Session(lab.probes_file, limits=grading_limits(), hide=hide,
                      preload=imported_modules(refs.solution))
    try:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                break
            if task is None:
                break
            folder = Path(task)
            results = grade_submission(lab, folder, references=refs, hide=hide, session=session)
            try:
                write_results(results, folder / "results.json")
            except OSError:
                pass
            conn.send((task, results))
    finally:
        session.close()


def _kill_tree(pid: int) -> None:
    from autograder.sandbox import _descendants, _signal_all

    _signal_all([*_descendants(pid), pid], signal.SIGKILL)
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


class _Pool:
    """``jobs`` warm workers; a worker that overruns a submission's limit is killed (with its
    jail) and replaced."""

    def __init__(self, lab: LabSpec, refs, hide: list[str], jobs: int):
        self.lab, self.refs, self.hide = lab, refs, hide
        self.ctx = multiprocessing.get_context("fork")
        self.workers = [self._spawn() for _ in range(jobs)]

    def _spawn(self) -> dict:
        mine, theirs = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker, args=(self.lab, self.refs, self.hide, theirs))
        proc.start()
        theirs.close()
        return {"proc": proc, "conn": mine, "task": None, "start": 0.0}

    def idle(self) -> list[dict]:
        return [w for w in self.workers if w["task"] is None]

    def give(self, worker: dict, folder: Path) -> None:
        worker["task"], worker["start"] = folder, time.monotonic()
        try:
            worker["conn"].send(str(folder))
        except OSError:
            worker["start"] = -1e9  # a dead worker: replaced at the next poll

    def poll(self, limit: float):
        """Yield (folder, results) for every submission finished or given up."""
        for i, w in enumerate(self.workers):
            if w["task"] is None:
                continue
            results = None
            try:
                if w["conn"].poll():
                    _, results = w["conn"].recv()
            except (EOFError, OSError):
                results = None
            if results is not None:
                folder, w["task"] = w["task"], None
                yield folder, results
                continue
            overdue = time.monotonic() - w["start"] >= limit
            if w["proc"].is_alive() and not overdue:
                continue
            folder = w["task"]
            _kill_tree(w["proc"].pid)
            w["proc"].join(timeout=5)
            w["conn"].close()
            self.workers[i] = self._spawn()
            results = _timed_out(self.lab, time.monotonic() - w["start"])
            write_results(results, folder / "results.json")
            yield folder, results

    def close(self) -> None:
        for w in self.workers:
            try:
                w["conn"].send(None)
            except OSError:
                pass
        for w in self.workers:
            w["proc"].join(timeout=10)
            if w["proc"].is_alive():
                _kill_tree(w["proc"].pid)
                w["proc"].join(timeout=5)


def grade_export(lab: LabSpec, export_dir: Path, *, references_file: Path | None = None,
                 jobs: int | None = None, progress: bool = True,
                 on_result=None) -> dict[str, dict]:
    """Grade every submission folder of ``export_dir``; {folder name: results}."""
    refs = _references(lab, references_file)
    folders = sorted(p for p in export_dir.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_")))
    hide = private_paths(lab, export_dir, references_file)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(folders) or 1))
    limit = budget_s() + GRACE_S
    bar = _bar(len(folders), progress)
    todo, done = list(folders), {}
    pool = _Pool(lab, refs, hide, jobs)
    try:
        while todo or any(w["task"] is not None for w in pool.workers):
            for worker in pool.idle():
                if todo:
                    pool.give(worker, todo.pop(0))
            for folder, results in pool.poll(limit):
                done[folder.name] = results
                if on_result is not None:
                    on_result(folder, results)
                bar.update(1)
            time.sleep(0.02)
    finally:
        pool.close()
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
