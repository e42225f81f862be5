"""What the grader knows of a lab: labkit's public declarations plus the hidden checks, turned
into Gradescope unittest cases; and the check base class those cases run on."""

from __future__ import annotations

import importlib.util
import unittest
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import Call, CallResult
from labkit.checking.spec import Check, Fail, Lab, unique_calls

StudentError = Fail  # a check failed because of the submission (shown to the student)


@dataclass
class LabSpec:
    """Everything the grader knows about one lab: labkit's public declarations (exercises,
    public checks, probes) and the hidden checks that exist only in this package."""

    public: Lab
    hidden: list[Check] = field(default_factory=list)

    def __post_init__(self):
        numbers = [c.number for c in self.checks]
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        if dup:
            raise ValueError(f"{self.id}: check numbers used twice: {dup}")
        bad = sorted({c.exercise for c in self.checks} - {e.name for e in self.exercises})
        if bad:
            raise ValueError(f"{self.id}: checks of unknown exercises {bad}")
        wrong = [c.number for c in self.hidden if not c.hidden]
        wrong += [c.number for c in self.public.checks if c.hidden]
        if wrong:
            raise ValueError(f"{self.id}: checks {wrong}: hidden checks belong in the "
                             "autograder (hidden=True), public ones in labkit")

    id = property(lambda self: self.public.id)
    slug = property(lambda self: self.public.slug)
    title = property(lambda self: self.public.title)
    exercises = property(lambda self: self.public.exercises)

    @property
    def checks(self) -> list[Check]:
        return list(self.public.checks) + list(self.hidden)

    def make_calls(self) -> list[Call]:
        """Every call of every check, once, with its inputs made (seeded by its id)."""
        calls = []
        for cid, (spec, exercise) in unique_calls(self.checks).items():
            arrays, params = spec.materialize()
            calls.append(Call(cid, spec.probe, arrays, params, exercise=exercise))
        return calls

    @property
    def probes_file(self) -> Path:
        """The lab's own probes (run in the sandboxed child; a lab may need none)."""
        if not self.public.probes:
            return Path(__file__).with_name("_no_probes.py")
        return Path(importlib.util.find_spec(self.public.probes).origin)

    @property
    def notebook_name(self) -> str:
        return f"{self.slug}.ipynb"

    @property
    def master_path(self) -> Path:
        from autograder.config import REPO_ROOT

        return REPO_ROOT / "labs" / self.slug / self.notebook_name

    def test_classes(self) -> list[type]:
        """One unittest class per exercise, one test per check (Gradescope's format)."""
        classes = []
        for ex in self.exercises:
            body = {f"test_{c.number.replace('.', '_')}": _test_method(c)
                    for c in self.checks if c.exercise == ex.name}
            if body:
                classes.append(type(f"Checks_{ex.name}", (LabCase,), body))
        return classes


def _test_method(check: Check):
    def test(self):
        self.exercise_ok(check.exercise)
        check.evaluate(self.result, self.reference)

    test.__doc__ = check.name
    test.__weight__ = check.weight
    test.__number__ = check.number
    test.__visibility__ = "after_due_date" if check.hidden else "visible"
    return test


@dataclass
class GradingContext:
    """Data the parent gathered before the checks run; checks only read it."""

    results: dict[str, CallResult]
    references: dict[str, CallResult]
    static_errors: dict[str, str]  # exercise name -> why it cannot be graded
    notes: list[str]


class LabCase(unittest.TestCase):
    """A check run on the grading context: the student's outputs and the references."""

    context: GradingContext | None = None

    def exercise_ok(self, name: str) -> None:
        """Fail with the static reason (missing function, wrong signature, forbidden name)."""
        assert self.context is not None
        if name in self.context.static_errors:
            raise StudentError(self.context.static_errors[name])

    def result(self, call_id: str) -> CallResult | None:
        assert self.context is not None
        return self.context.results.get(call_id)

    def reference(self, call_id: str) -> CallResult:
        assert self.context is not None
        ref = self.context.references.get(call_id)
        if ref is None or not ref.ok:
            raise RuntimeError(f"grader error: no reference for {call_id}; rebuild with assign")
        return ref
