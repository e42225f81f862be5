"""Public checks run where the student's code is: ``lk.check("mean_iou")`` in the notebook.

The probes run in this process on the student's live objects, the outputs go through the same
plain-data form the autograder's child hands back (arrays, JSON values), and the same
declarations (:mod:`labkit.checking.spec`) compare them with the expected outputs that ship with
labkit. A self-check and the autograder's public checks therefore give the same verdict, points
and message. Hidden checks are not in labkit.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import random
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labkit.checking.spec import CallResult, Fail, Lab, load_results, unmet_needs

EXPECTED = Path(__file__).with_name("expected")
MAX_MSG = 600


def lab_ids() -> list[str]:
    """Labs whose public checks ship with labkit: ``["lab01", ...]``."""
    import labkit.checking as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if m.name.startswith("lab") and not m.name.endswith("_probes"))


def public_lab(lab_id: str) -> Lab:
    """The public declarations of ``lab_id`` ("lab02" or "lab02_segmentation")."""
    short = lab_id.split("_")[0]
    if short not in lab_ids():
        raise ValueError(f"unknown lab {lab_id!r}: labkit has checks for {', '.join(lab_ids())}")
    return importlib.import_module(f"labkit.checking.{short}").LAB


def lab_of(exercise: str) -> Lab:
    """The lab that has an exercise called ``exercise``."""
    found = [lab for lab in map(public_lab, lab_ids())
             if any(e.name == exercise for e in lab.exercises)]
    if not found:
        raise ValueError(f"no graded exercise is called {exercise!r}")
    if len(found) > 1:
        raise ValueError(f"{exercise!r} is an exercise of {', '.join(x.id for x in found)}: "
                         "pass lab=...")
    return found[0]


def expected_outputs(lab: Lab) -> dict[str, CallResult]:
    """The expected outputs of the lab's public calls (computed from the solution)."""
    path = EXPECTED / f"{lab.id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall labkit (the instructors build "
                                "it with `python -m autograder assign`)")
    return load_results(path)[0]


class _Probes:
    def __init__(self, lab: Lab):
        self.modules = [importlib.import_module("labkit.checking.probe_utils")]
        if lab.probes:
            self.modules.insert(0, importlib.import_module(lab.probes))

    def get(self, name: str):
        for m in self.modules:
            fn = getattr(m, name, None)
            if callable(fn) and not name.startswith("_"):
                return fn
        raise KeyError(f"no probe named {name!r}")


def _seed(seed: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _error(exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    mine = str(Path(__file__).parent)
    frames = [f for f in tb if not f.filename.startswith(mine) and "site-packages" not in
              f.filename and "/torch/" not in f.filename]
    where = f"line {frames[-1].lineno}, in {frames[-1].name}" if frames else ""
    try:
        message = str(exc)[:MAX_MSG]
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        message = "(the exception could not be shown)"
    return {"type": type(exc).__name__, "message": message, "where": where}


def run_call(ns: dict, call, probes: _Probes) -> CallResult:
    """Run one probe call on namespace ``ns`` as the autograder's child does: the same seed,
    the outputs in plain form (JSON values, numeric arrays), or the error."""
    arrays, params = call.materialize()
    _seed(0)
    try:
        result = probes.get(call.probe)(ns, arrays, **params)
        if not isinstance(result, dict):
            raise TypeError("probe returned a non-dict")
        plain, out = {}, {}
        for key, value in result.items():
            if isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise TypeError(f"output '{key}' is not numeric")
                out[key] = np.array(value, copy=True)
            else:
                plain[key] = value
        plain = json.loads(json.dumps(plain, allow_nan=True))
        return CallResult(values=plain, arrays=out)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
        return CallResult(error=_error(exc))


@dataclass
class Verdict:
    """One check's outcome, as the autograder reports it."""

    number: str
    name: str
    score: float
    max_score: float
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass
class Report:
    """The public checks of some exercises; prints as the autograder's table."""

    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(v.score for v in self.verdicts)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for v in self.verdicts)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def __str__(self) -> str:
        return format_table(self.verdicts)

    def __repr__(self) -> str:  # what a notebook shows below the printed table
        state = "all passed" if self.passed else "not all passed yet"
        return f"public checks: {self.score:g}/{self.max_score:g} points ({state})"


def format_table(verdicts: list[Verdict]) -> str:
    """The public score table: number, check, points, then every failure's message."""
    w = max([len(v.name) for v in verdicts] + [10])
    lines = [f"{'#':<6} {'check':<{w}} {'score':>7}"]
    for v in verdicts:
        mark = "ok" if v.passed else "FAIL"
        lines.append(f"{v.number:<6} {v.name:<{w}} {v.score:>3g}/{v.max_score:<3g} {mark}")
    total = sum(v.score for v in verdicts)
    most = sum(v.max_score for v in verdicts)
    lines.append(f"{'':<6} {'public checks':<{w}} {total:>3g}/{most:g}")
    for v in verdicts:
        if not v.passed and v.output:
            lines.append(f"- {v.number} {v.name}: {v.output.strip()}")
    return "\n".join(lines)


def run_public(lab: Lab, ns: dict, exercises: list[str] | None = None,
               statics: dict[str, str] | None = None) -> Report:
    """Run the public checks of ``exercises`` (default: all) on namespace ``ns``."""
    expected = expected_outputs(lab)
    probes = _Probes(lab)
    statics = statics or {}
    checks = [c for c in lab.checks if not c.hidden and (exercises is None or
                                                         c.exercise in exercises)]
    results: dict[str, CallResult] = {}
    verdicts: dict[str, Verdict] = {}
    for c in checks:
        v = Verdict(c.number, c.name, 0.0, c.weight)
        verdicts[c.number] = v
        try:
            if c.exercise in statics:
                raise Fail(statics[c.exercise])
            if c.exercise not in ns:
                raise Fail(f"`{c.exercise}` is not defined: run its cell first.")
            for call in c.calls:
                if call.id not in results:
                    results[call.id] = run_call(ns, call, probes)
            c.evaluate(results.get, lambda cid: expected[cid])
            v.score = c.weight
        except Fail as exc:
            v.output = str(exc)
    passed = {n: v.passed for n, v in verdicts.items()}
    for number, message in unmet_needs({c.number: c.needs for c in checks}, passed).items():
        if verdicts[number].score:
            verdicts[number].score, verdicts[number].output = 0.0, message
    return Report(list(verdicts.values()))


def _caller_namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    return sys.modules["__main__"].__dict__


def _kernel_statics(lab: Lab, exercise: str, ns: dict) -> dict[str, str]:
    """The autograder's static verdict (missing, wrong signature, forbidden names) from the
    cells this kernel ran (IPython's input history), when there is one."""
    cells = ns.get("In")
    if not isinstance(cells, list) or len(cells) < 2:
        return {}
    import nbformat

    from labkit.checking.program import build_program, static_errors

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells[1:] if c])
    errors = static_errors(lab, build_program(nb))
    return {k: v for k, v in errors.items() if k == exercise and "is not defined" not in v}


def check(exercise: str, *, lab: str | None = None, ns: dict | None = None) -> Report:
    """Run ``exercise``'s public checks on the notebook's own ``exercise`` and print the
    autograder's verdict, points and message for each; returns the :class:`Report`."""
    spec = public_lab(lab) if lab else lab_of(exercise)
    spec.exercise(exercise)
    ns = _caller_namespace() if ns is None else ns
    report = run_public(spec, ns, [exercise], _kernel_statics(spec, exercise, ns))
    print(report)
    return report
