"""What a lab declares to the grader: exercises, probe calls, checks; and the check base class."""

from __future__ import annotations

import math
import unittest
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.sandbox import Call, CallResult


@dataclass(frozen=True)
class Exercise:
    """A graded exercise: a top-level function or class the student writes in the notebook."""

    name: str
    params: tuple[str, ...]  # required leading parameter names, in order
    kind: str = "function"  # "function" or "class"
    forbidden: tuple[str, ...] = ()  # names the solution may not use (e.g. labkit's own metric)


@dataclass
class LabSpec:
    """Everything the grader knows about one lab."""

    id: str  # "lab02"
    slug: str  # "lab02_segmentation"
    exercises: tuple[Exercise, ...]
    make_calls: Callable[[], list[Call]]  # deterministic probe calls (inputs made in the parent)
    title: str = ""

    @property
    def checks_module(self) -> str:
        """Dotted module holding the lab's unittest cases (run in the trusted parent)."""
        return f"autograder.labs.{self.id}.checks"

    @property
    def probes_file(self) -> Path:
        """The lab's probes (run in the sandboxed child)."""
        return Path(__file__).parent / "labs" / self.id / "probes.py"

    @property
    def notebook_name(self) -> str:
        return f"{self.slug}.ipynb"

    @property
    def master_path(self) -> Path:
        from autograder.config import REPO_ROOT

        return REPO_ROOT / "labs" / self.slug / self.notebook_name


def needs_passing(*numbers: str):
    """Mark an error-handling check: it counts only when the checks ``numbers`` (the same
    exercise on valid inputs) earn full marks, so a stub that only raises earns nothing."""

    def deco(fn):
        fn.__needs_passing__ = tuple(numbers)
        return fn

    return deco


class StudentError(AssertionError):
    """A check failed because of the submission (message is shown to the student)."""


@dataclass
class GradingContext:
    """Data the parent gathered before the checks run; checks only read it."""

    results: dict[str, CallResult]
    references: dict[str, CallResult]
    static_errors: dict[str, str]  # exercise name -> why it cannot be graded
    notes: list[str]
    exercises_seen: list[str] | None = None  # filled by a dry run: the exercises checks name
    raised_calls: set[str] | None = None  # filled by a dry run: calls read for their exception


class LabCase(unittest.TestCase):
    """Base class for a lab's checks: fetch a call's outputs and compare with the reference."""

    context: GradingContext | None = None
    exercise_of: dict[str, str] = {}  # call id prefix -> exercise name (set by each lab)

    def exercise_ok(self, name: str) -> None:
        """Fail with the static reason (missing function, wrong signature, forbidden name)."""
        assert self.context is not None
        if self.context.exercises_seen is not None:
            self.context.exercises_seen.append(name)
        if name in self.context.static_errors:
            raise StudentError(self.context.static_errors[name])

    def outputs(self, call_id: str, exercise: str) -> CallResult:
        """The student's outputs for ``call_id`` (fails with the child's error otherwise)."""
        self.exercise_ok(exercise)
        assert self.context is not None
        got = self.context.results.get(call_id)
        if got is None:
            raise StudentError(f"`{exercise}` was not run (internal: no result for {call_id}).")
        if not got.ok:
            err = got.error or {}
            where = f" ({err.get('where')})" if err.get("where") else ""
            kind = err.get("type", "Error")
            if kind == "NotDefined":
                raise StudentError(err.get("message", ""))
            if kind == "NotImplementedError":
                raise StudentError(f"`{exercise}` is not implemented yet (NotImplementedError).")
            raise StudentError(f"`{exercise}` raised {kind}{where}: {err.get('message', '')}")
        return got

    def raised(self, call_id: str, exercise: str) -> str | None:
        """The exception type the student's code raised on ``call_id`` (None: it returned).

        For error-handling checks; a crash, a timeout or a missing definition still fails."""
        self.exercise_ok(exercise)
        assert self.context is not None
        if self.context.raised_calls is not None:
            self.context.raised_calls.add(call_id)
        got = self.context.results.get(call_id)
        if got is None:
            raise StudentError(f"`{exercise}` was not run (internal: no result for {call_id}).")
        if got.ok:
            return None
        kind = (got.error or {}).get("type", "Error")
        if kind in {"Timeout", "Crash", "Killed", "Exit", "InvalidOutput", "NotRun",
                    "NotDefined", "MemoryError"}:
            self.outputs(call_id, exercise)  # raises with the child's message
        return kind

    def reference(self, call_id: str) -> CallResult:
        assert self.context is not None
        ref = self.context.references.get(call_id)
        if ref is None or not ref.ok:
            raise RuntimeError(f"grader error: no reference for {call_id}; rebuild with assign")
        return ref

    # ------------------------------------------------------------------ comparisons

    def check_array(
        self,
        got: CallResult,
        ref: CallResult,
        key: str,
        *,
        what: str,
        rtol: float = 1e-5,
        atol: float = 1e-6,
        dtype_kind: str | None = None,
        equal_nan: bool = True,
    ) -> None:
        """``got.arrays[key]`` must match the reference in shape, dtype kind, NaNs and values."""
        if key not in got.arrays:
            raise StudentError(f"{what}: expected a tensor/array, got something else.")
        a, b = got.arrays[key], ref.arrays[key]
        if a.shape != b.shape:
            raise StudentError(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}.")
        if dtype_kind is not None and a.dtype.kind not in dtype_kind:
            raise StudentError(f"{what}: dtype {a.dtype}, expected {b.dtype}.")
        if a.dtype.kind not in "biuf":
            raise StudentError(f"{what}: dtype {a.dtype} is not numeric.")
        af, bf = a.astype(np.float64), b.astype(np.float64)
        if np.isinf(af).any():
            raise StudentError(f"{what}: contains Inf.")
        nan_a, nan_b = np.isnan(af), np.isnan(bf)
        if not equal_nan and nan_a.any():
            raise StudentError(f"{what}: contains NaN.")
        if (nan_a != nan_b).any():
            idx = tuple(int(i) for i in np.argwhere(nan_a != nan_b)[0])
            should = "NaN" if nan_b[idx] else "a number"
            raise StudentError(f"{what}: entry {idx} should be {should}, got {af[idx]}.")
        ok = np.isclose(af, bf, rtol=rtol, atol=atol) | (nan_a & nan_b)
        if not ok.all():
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            raise StudentError(
                f"{what}: {int((~ok).sum())} of {ok.size} values differ; "
                f"first at {idx}: got {af[idx]:.6g}, expected {bf[idx]:.6g}."
            )

    def check_number(self, got: CallResult, ref: CallResult, key: str, *, what: str,
                     rtol: float = 1e-5, atol: float = 1e-6) -> None:
        """A scalar output must be a real number equal to the reference (NaN matches NaN)."""
        a, b = got.values.get(key), ref.values.get(key)
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise StudentError(f"{what}: expected a Python number, got {type(a).__name__}.")
        if math.isinf(a):
            raise StudentError(f"{what}: is Inf.")
        if math.isnan(b) or math.isnan(a):
            if not (math.isnan(a) and math.isnan(b)):
                raise StudentError(f"{what}: got {a}, expected {b}.")
            return
        if not math.isclose(a, b, rel_tol=rtol, abs_tol=atol):
            raise StudentError(f"{what}: got {a:.6g}, expected {b:.6g}.")
