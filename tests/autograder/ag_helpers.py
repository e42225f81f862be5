"""Shared helpers of the autograder tests (constants, results.json validation, process scans)."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat

from autograder.grade import listed_tests
from autograder.labs import get_lab
from autograder.sandbox import sandbox_user
from labkit.checking.program import drop_magics

# The lab02 check list, read from its checks module (every check, its number and weight), so
# that adding a check does not silently change what these tests mean.
_LISTED = listed_tests(get_lab("lab02"), "")["tests"]
FULL = {t["number"]: t["max_score"] for t in _LISTED}  # number -> max score, every check
NUMBERS = [t["number"] for t in _LISTED]  # in grading order
N_CHECKS = len(NUMBERS)
TOTAL = float(sum(FULL.values()))
N_VISIBLE = sum(t["visibility"] == "visible" for t in _LISTED)
# The hostile tests attack the two metric exercises; the other exercises of the notebook
# (build_fcn, UNet, dice_loss) keep the solution's code and must keep their points: one broken
# exercise never costs another one's. A check belongs to the exercise its title starts with.
EXERCISE_OF = {t["number"]: t["name"].split(":")[0].strip() for t in _LISTED}
CM_ONLY = {n: s for n, s in FULL.items() if EXERCISE_OF[n] == "confusion_matrix"}
IOU_ONLY = {n: s for n, s in FULL.items() if EXERCISE_OF[n] == "mean_iou"}
OTHERS = {n: s for n, s in FULL.items() if n not in CM_ONLY and n not in IOU_ONLY}
assert CM_ONLY and IOU_ONLY and OTHERS
assert set(EXERCISE_OF[n] for n in OTHERS) == {"build_fcn", "UNet", "dice_loss"}
IS_ROOT = os.geteuid() == 0


def defining_cell(nb: nbformat.NotebookNode, name: str) -> int:
    """Index of the code cell that defines top-level function/class ``name``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(drop_magics(cell.source))
        except SyntaxError:
            continue
        if any(getattr(s, "name", None) == name for s in tree.body):
            return i
    raise KeyError(name)


def _no_constants(text: str):
    raise AssertionError(f"results.json holds a non-finite number: {text}")


def validate_results_file(path: Path) -> dict:
    """results.json: strict JSON (no NaN/Infinity), every check once, scores within [0, max]."""
    data = json.loads(path.read_text(), parse_constant=_no_constants)
    tests = data["tests"]
    numbers = [t.get("number") for t in tests]
    assert sorted(numbers) == sorted(NUMBERS), f"checks listed: {numbers}"
    assert len(tests) == N_CHECKS
    for t in tests:
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"], t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t.get("output", ""), str)
    assert sum(t["max_score"] for t in tests) == TOTAL
    assert abs(data["score"] - sum(t["score"] for t in tests)) < 1e-6
    assert 0 <= data["score"] <= TOTAL
    assert isinstance(data["output"], str)
    return data


class Graded(dict):
    """Validated results with helpers to find a check's output."""

    def check(self, number: str) -> dict:
        return next(t for t in self["tests"] if t.get("number") == number)

    def out(self, number: str) -> str:
        return self.check(number)["output"]

    @property
    def text(self) -> str:
        """Summary plus every check's output (to look for a key phrase anywhere)."""
        return "\n".join([self["output"], *(t.get("output", "") for t in self["tests"])])


def assert_scores(res: dict, expected: dict[str, float]) -> None:
    """Exact per-check scores (``expected``: number -> score; checks not named must be 0)."""
    got = {t["number"]: t["score"] for t in res["tests"]}
    want = {n: float(expected.get(n, 0.0)) for n in NUMBERS}
    detail = "\n".join(f"{t['number']}: {t['score']} {t['output']}" for t in res["tests"])
    assert got == want, f"{res['output']}\n{detail}"
    assert res["score"] == sum(want.values())


def world_writable_dir(base: Path, name: str) -> Path:
    """A folder `nobody` may write into (so the harness, not permissions, must stop a write)."""
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    return path


def sandbox_uid() -> int | None:
    user = sandbox_user() if IS_ROOT else None
    return None if user is None else user.pw_uid


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, owner uid, name) of every live (non-zombie) process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_bytes()
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        close = data.rfind(b")")
        name = data[data.find(b"(") + 1 : close].decode(errors="replace")
        fields = data[close + 2 :].split()
        if fields[0] != b"Z":  # a zombie is already dead
            out[int(entry)] = (int(fields[1]), uid, name)
    return out


def descendants_of_me() -> list[tuple[int, str]]:
    """Live processes below this test process (the grader is a subreaper: anything the sandbox
    started, daemons included, stays below it until killed)."""
    procs, me = _processes(), os.getpid()
    out = []
    for pid, (ppid, _, name) in procs.items():
        p, hops = ppid, 0
        while hops < 64:
            if p == me:
                out.append((pid, name))
                break
            if p not in procs:
                break
            p = procs[p][0]
            hops += 1
    return out


def sandbox_orphans() -> set[int]:
    """Processes of the sandbox user adopted by init: what would have escaped the subreaper.
    (Other people's graders may run sandboxed children at the same time; those have a live
    grader parent and are neither listed here nor touched.)"""
    uid = sandbox_uid()
    if uid is None:
        return set()
    return {pid for pid, (ppid, owner, _) in _processes().items() if owner == uid and ppid == 1}
