"""Declarative checks: one declaration per check, used by the notebook's self-check, the
student's "before you submit" cell and the autograder.

A check names its exercise, number, title, weight and visibility, and lists *steps*: a probe
call (inputs made from fixed seeds) and what to compare in its raw outputs, and how. Probes run
where the student's code is (the notebook's kernel, or the autograder's jailed child) and hand
back raw outputs only; every comparison below runs on those outputs, in the notebook for a
self-check and in the trusted parent when grading, so both give the same verdict and message::

    Check("2.1", "mean_iou", "3x3 confusion matrix", 2,
          fn("mean_iou", np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]])).expect(
              same("out.0", "per-class IoU", dtype="f"), same("out.1", "mIoU")))

Public checks (and their expected outputs, ``labkit/checking/expected/labNN.npz``) ship with
labkit; hidden checks live only in the course's private ``autograder`` package and its zip.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------- outcomes


class Fail(AssertionError):
    """A check failed because of the submission; the message is shown to the student."""


@dataclass
class CallResult:
    """What came back for one call: plain values and arrays, or an error description."""

    values: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# errors that are never the student's "raised X" (the call did not get to return or raise)
ABORTED = {"Timeout", "Crash", "Killed", "Exit", "InvalidOutput", "NotRun", "NotDefined",
           "MemoryError"}


def outputs_or_fail(got: CallResult | None, exercise: str) -> CallResult:
    """``got`` when the call returned; otherwise :class:`Fail` with what went wrong."""
    if got is None:
        raise Fail(f"`{exercise}` was not run (internal: no result for this check).")
    if got.ok:
        return got
    err = got.error or {}
    where = f" ({err.get('where')})" if err.get("where") else ""
    kind = err.get("type", "Error")
    if kind == "NotDefined":
        raise Fail(err.get("message", "") or f"`{exercise}` is not defined.")
    if kind == "NotImplementedError":
        raise Fail(f"`{exercise}` is not implemented yet (NotImplementedError).")
    raise Fail(f"`{exercise}` raised {kind}{where}: {err.get('message', '')}")


def raised_kind(got: CallResult | None, exercise: str) -> str | None:
    """The exception type the call raised (None: it returned); aborted calls fail."""
    if got is None:
        outputs_or_fail(got, exercise)  # raises: not run
    if got.ok:
        return None
    kind = (got.error or {}).get("type", "Error")
    if kind in ABORTED:
        outputs_or_fail(got, exercise)
    return kind


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Gen:
    """An input array made from the call's seed: ``fn(rng, *args)``; its repr names it."""

    fn: Callable
    args: tuple = ()

    def make(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.fn(rng, *[a.make(rng) if isinstance(a, Gen) else a
                                         for a in self.args]))

    def __repr__(self) -> str:
        return f"{self.fn.__name__}{self.args!r}"


def _labels(rng, shape, k, ignore, ignore_index):
    x = rng.integers(0, k, size=shape, dtype=np.int64)
    if ignore:
        x[rng.random(shape) < ignore] = ignore_index
    return x


def labels(shape, k: int, ignore: float = 0.0, ignore_index: int = 255) -> Gen:
    """int64 class ids in [0, k) of ``shape``, a fraction ``ignore`` set to ``ignore_index``."""
    return Gen(_labels, (tuple(shape), k, ignore, ignore_index))


def _normal(rng, shape, scale):
    return (rng.normal(0, 1, size=shape) * scale).astype(np.float32)


def normal(shape, scale: float = 1.0) -> Gen:
    """float32 N(0, scale^2) of ``shape``."""
    return Gen(_normal, (tuple(shape), scale))


def _uniform(rng, shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def uniform(shape, lo: float = 0.0, hi: float = 1.0) -> Gen:
    """float32 uniform in [lo, hi) of ``shape``."""
    return Gen(_uniform, (tuple(shape), lo, hi))


def _integers(rng, shape, lo, hi):
    return rng.integers(lo, hi, size=shape, dtype=np.int64)


def integers(shape, lo: int, hi: int) -> Gen:
    """int64 in [lo, hi) of ``shape``."""
    return Gen(_integers, (tuple(shape), lo, hi))


@dataclass(frozen=True)
class Grad:
    """An input tensor that requires grad: the probe back-propagates the output to it."""

    value: Any


# ----------------------------------------------------------------------------- calls


def _digest(obj) -> str:
    def enc(o):
        if isinstance(o, np.ndarray):
            return f"array{o.dtype}{o.shape}:{zlib.crc32(np.ascontiguousarray(o).tobytes()):08x}"
        if isinstance(o, dict):
            return "{" + ",".join(f"{k!r}:{enc(v)}" for k, v in sorted(o.items())) + "}"
        if isinstance(o, (list, tuple)):
            return "[" + ",".join(enc(v) for v in o) + "]"
        if isinstance(o, Grad):
            return f"grad({enc(o.value)})"
        return repr(o)

    return f"{zlib.crc32(enc(obj).encode()):08x}"


@dataclass(frozen=True)
class CallSpec:
    """One probe call: a probe (generic ``call``/``module`` or the lab's own), its arguments
    (arrays and :class:`Gen` become input arrays, the rest JSON parameters)."""

    probe: str
    args: dict

    @property
    def id(self) -> str:
        return f"{self.probe}_{_digest(self.args)}"

    def materialize(self) -> tuple[dict[str, np.ndarray], dict]:
        """(input arrays, JSON params), the arrays made from a seed that is the call's id."""
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        arrays: dict[str, np.ndarray] = {}

        def conv(o, key):
            if isinstance(o, Grad):
                arrays[key] = _arr(o.value)
                return {"__array__": key, "grad": True}
            if isinstance(o, (Gen, np.ndarray)):
                arrays[key] = _arr(o)
                return {"__array__": key}
            if isinstance(o, dict):
                return {k: conv(v, f"{key}.{k}") for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [conv(v, f"{key}.{i}") for i, v in enumerate(o)]
            return o

        def _arr(o):
            return o.make(rng) if isinstance(o, Gen) else np.asarray(o)

        params = {}
        for k, v in self.args.items():  # top-level arrays reach a lab's probe as inputs[k]
            spec = conv(v, k)
            if not (isinstance(v, (Gen, np.ndarray, Grad))):
                params[k] = spec
        return arrays, params

    def after(self) -> CallSpec:
        """The same ``fn`` call, also reporting its arguments after it (``after.<i>``)."""
        return CallSpec(self.probe, {**self.args, "after": True})

    def expect(self, *comparisons: Callable) -> Step:
        return Step(self, comparisons)

    def raises(self, kind: str, what: str) -> Step:
        """The call must raise ``kind`` (``what``: the call as the student would write it)."""
        return Step(self, (), raises=kind, what=what)


def fn(name: str, *args, **kwargs) -> CallSpec:
    """Call the student's function ``name(*args, **kwargs)`` (arrays become tensors;
    :class:`Grad` marks one to differentiate); its result is flattened under ``out``."""
    return CallSpec("call", {"fn": name, "args": list(args), "kwargs": kwargs})


def module(cls: str, config: dict, *inputs, seed: int = 0, train: bool = True,
           backward: bool = True) -> CallSpec:
    """Build ``cls(**config)`` (seeded), report its structure, and with ``inputs`` run it in
    train mode (``train``: logits and gradients) and in eval mode (``eval``)."""
    return CallSpec("module", {"cls": cls, "config": config, "args": list(inputs),
                               "seed": seed, "train": train, "backward": backward})


def loaded(cls: str, config: dict, *inputs, **opts) -> CallSpec:
    """Build ``cls(**config)`` with fixed weights drawn from the parameters' names and run it in
    eval mode: ``params`` and each of ``methods``' outputs (see ``probe_utils.loaded``)."""
    return CallSpec("loaded", {"cls": cls, "config": config, "args": list(inputs), **opts})


def probe(name: str, **args) -> CallSpec:
    """A lab's own probe ``name(ns, inputs, **params)``."""
    return CallSpec(name, args)


@dataclass(frozen=True)
class Step:
    call: CallSpec
    comparisons: tuple
    raises: str | None = None
    what: str = ""


# ----------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Check:
    """One graded check: number ("2.1"), exercise, title, weight, steps; hidden or public;
    ``needs``: numbers of checks that must pass for this one to count (error handling)."""

    number: str
    exercise: str
    title: str
    weight: float
    steps: tuple[Step, ...]
    hidden: bool = False
    needs: tuple[str, ...] = ()

    def __init__(self, number, exercise, title, weight, *steps, hidden=False, needs=()):
        object.__setattr__(self, "number", number)
        object.__setattr__(self, "exercise", exercise)
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "weight", float(weight))
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "needs", tuple(needs))

    @property
    def name(self) -> str:
        return f"{self.exercise}: {self.title}"

    @property
    def calls(self) -> list[CallSpec]:
        return [s.call for s in self.steps]

    def evaluate(self, result: Callable[[str], CallResult | None],
                 reference: Callable[[str], CallResult]) -> None:
        """Raise :class:`Fail` with the message the student sees, or return (passed)."""
        for step in self.steps:
            cid = step.call.id
            if step.raises:
                kind = raised_kind(result(cid), self.exercise)
                if kind == "NotImplementedError":
                    outputs_or_fail(result(cid), self.exercise)
                if kind != step.raises:
                    did = "returned" if kind is None else f"raised {kind}"
                    raise Fail(f"{step.what} should raise {step.raises}; it {did}.")
                continue
            got = outputs_or_fail(result(cid), self.exercise)
            ref = reference(cid)
            for compare in step.comparisons:
                compare(got, ref)


def hidden(checks: list[Check]) -> list[Check]:
    """The same checks, hidden until the due date (declared in the private autograder only)."""
    return [Check(c.number, c.exercise, c.title, c.weight, *c.steps, hidden=True, needs=c.needs)
            for c in checks]


def unmet_needs(needs: dict[str, tuple[str, ...]], passed: dict[str, bool]) -> dict[str, str]:
    """Error-handling checks that count for nothing because a check they need (the same
    exercise on valid inputs) does not pass: {number: the message that says so}."""
    out = {}
    for number, required in needs.items():
        failing = [n for n in required if n in passed and not passed[n]]
        if failing:
            out[number] = ("This error-handling check counts only when the exercise also returns "
                           f"correct results on valid inputs (check {', '.join(failing)} does "
                           "not pass yet).")
    return out


@dataclass(frozen=True)
class Exercise:
    """A graded exercise: a top-level function or class the student writes in the notebook."""

    name: str
    params: tuple[str, ...]  # required leading parameter names, in order
    kind: str = "function"  # "function" or "class"
    forbidden: tuple[str, ...] = ()  # names the solution may not use (e.g. labkit's own metric)


@dataclass
class Lab:
    """A lab's public side: its exercises and public checks (hidden ones join in autograder).
    Its own probes, if any, are the module ``labkit.checking.<id>_probes``."""

    slug: str  # "lab02_segmentation"
    title: str
    exercises: tuple[Exercise, ...]
    checks: list[Check]

    @property
    def id(self) -> str:
        return self.slug.split("_")[0]

    @property
    def probes(self) -> str:
        """Dotted module of the lab's own probes ("" when it needs none)."""
        import importlib.util

        name = f"labkit.checking.{self.id}_probes"
        return name if importlib.util.find_spec(name) is not None else ""

    def exercise(self, name: str) -> Exercise:
        for ex in self.exercises:
            if ex.name == name:
                return ex
        raise KeyError(f"{self.id} has no exercise {name!r}: its exercises are "
                       f"{', '.join(e.name for e in self.exercises)}")


def unique_calls(checks: list[Check]) -> dict[str, tuple[CallSpec, str]]:
    """call id -> (call, exercise), in check order (a call two checks share runs once)."""
    out: dict[str, tuple[CallSpec, str]] = {}
    for c in checks:
        for call in c.calls:
            out.setdefault(call.id, (call, c.exercise))
    return out


# ----------------------------------------------------------------------------- comparisons


_KINDS = {"tensor": "torch.Tensor", "ndarray": "NumPy array"}


def _equal(a, b) -> bool:
    """JSON values equal, a bool only to a bool (``1`` is not ``True``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v)


def compare_array(a, b: np.ndarray, what: str, *, rtol=1e-5, atol=1e-6, dtype=None,
                  nan_ok=True) -> None:
    """``a`` must match ``b`` in shape, dtype kind (``dtype``: allowed kinds), NaNs, values."""
    if not isinstance(a, np.ndarray):
        raise Fail(f"{what}: expected a tensor, got "
                   f"{type(a).__name__ if a is not None else 'nothing'}.")
    if a.shape != b.shape:
        raise Fail(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}.")
    if dtype is not None and a.dtype.kind not in dtype:
        raise Fail(f"{what}: dtype {a.dtype}, expected {b.dtype}.")
    if a.dtype.kind not in "biuf":
        raise Fail(f"{what}: dtype {a.dtype} is not numeric.")
    af, bf = a.astype(np.float64), b.astype(np.float64)
    if np.isinf(af).any():
        raise Fail(f"{what}: contains Inf.")
    nan_a, nan_b = np.isnan(af), np.isnan(bf)
    if not nan_ok and nan_a.any():
        raise Fail(f"{what}: contains NaN.")
    if (nan_a != nan_b).any():
        idx = tuple(int(i) for i in np.argwhere(nan_a != nan_b)[0])
        should = "NaN" if nan_b[idx] else "a number"
        raise Fail(f"{what}: entry {idx} should be {should}, got {af[idx]}.")
    ok = np.isclose(af, bf, rtol=rtol, atol=atol) | (nan_a & nan_b)
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise Fail(f"{what}: {int((~ok).sum())} of {ok.size} values differ; first at {idx}: "
                   f"got {af[idx]:.6g}, expected {bf[idx]:.6g}.")


def compare_number(a, b, what: str, *, rtol=1e-5, atol=1e-6) -> None:
    """A real number (or one-element tensor) equal to ``b`` (NaN matches NaN)."""
    if isinstance(a, np.ndarray) and a.size == 1 and a.dtype.kind in "biuf":
        a = float(a.reshape(()))
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        raise Fail(f"{what}: expected a Python number, got {type(a).__name__}.")
    if math.isinf(a):
        raise Fail(f"{what}: is Inf.")
    if math.isnan(a) or math.isnan(b):
        if not (math.isnan(a) and math.isnan(b)):
            raise Fail(f"{what}: got {a}, expected {b}.")
        return
    if not math.isclose(a, b, rel_tol=rtol, abs_tol=atol):
        raise Fail(f"{what}: got {a:.6g}, expected {b:.6g}.")


def same(key: str, what: str, *, rtol=1e-5, atol=1e-6, dtype=None, nan_ok=True, hint=""):
    """Output ``key`` equals the reference's: arrays and numbers within tolerance, anything
    else exactly."""

    def compare(got: CallResult, ref: CallResult) -> None:
        try:
            if key in ref.arrays:
                kind = ref.values.get(f"{key}.kind")
                have = got.values.get(f"{key}.kind") or got.values.get(f"{key}.type")
                if kind and have != kind:
                    raise Fail(f"{what}: expected a {_KINDS[kind]}, got "
                               f"{_KINDS.get(have, have or 'nothing')}.")
                compare_array(got.arrays.get(key, got.values.get(key)), ref.arrays[key], what,
                              rtol=rtol, atol=atol, dtype=dtype, nan_ok=nan_ok)
            elif isinstance(ref.values.get(key), (int, float)) and not isinstance(
                    ref.values.get(key), bool):
                compare_number(got.values.get(key, got.arrays.get(key)), ref.values[key], what,
                               rtol=rtol, atol=atol)
            elif not _equal(got.values.get(key), ref.values.get(key)):
                raise Fail(f"{what}: got {_fmt(got.values.get(key))}, expected "
                           f"{_fmt(ref.values.get(key))}.")
        except Fail as exc:
            raise Fail(f"{exc}{' ' + hint if hint else ''}") from None

    return compare


def shape(key: str, what: str, hint: str = ""):
    """Output ``key`` is a finite float tensor of the reference's shape."""

    def compare(got: CallResult, ref: CallResult) -> None:
        a, want = got.arrays.get(key), list(ref.arrays[key].shape)
        have = None if a is None else list(a.shape)
        if have != want:
            raise Fail(f"{what}: shape {have}, expected {want}.{' ' + hint if hint else ''}")
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise Fail(f"{what}: contains NaN or Inf (or is not a float tensor).")

    return compare


def scalar(key: str, what: str):
    """Output ``key`` is a 0-dimensional float tensor that requires grad."""

    def compare(got: CallResult, ref: CallResult) -> None:
        a = got.arrays.get(key)
        if a is None or a.shape != ():
            raise Fail(f"{what} must be a 0-dimensional tensor (a scalar), got shape "
                       f"{None if a is None else tuple(a.shape)}.")
        if a.dtype.kind != "f":
            raise Fail(f"{what} must be a float tensor, got {a.dtype}.")
        if got.values.get(f"{key}.requires_grad") is not True:
            raise Fail(f"{what} must be differentiable: it does not require grad (computed "
                       "from detached values or turned into a number?).")

    return compare


def all_used(what: str = "the model"):
    """Every trainable parameter of a ``module`` call got a gradient."""

    def compare(got: CallResult, ref: CallResult) -> None:
        missing = list(got.values.get("without_grad") or [])
        if missing:
            raise Fail(f"{what}: {len(missing)} parameters get no gradient "
                       f"({', '.join(map(str, missing[:4]))}): every layer must be used in "
                       "forward.")

    return compare


def param_shapes(key: str, what: str, hint: str = ""):
    """The parameters' shapes equal the reference's as a multiset (names may differ)."""

    def compare(got: CallResult, ref: CallResult) -> None:
        params = got.values.get(key)
        if not isinstance(params, dict):
            raise Fail(f"{what}: could not read the parameters.")
        g = Counter(tuple(int(s) for s in v) for v in params.values())
        w = Counter(tuple(int(s) for s in v) for v in ref.values[key].values())
        if g == w:
            return
        count = sum(math.prod(s) for s in g.elements())
        want = sum(math.prod(s) for s in w.elements())
        extra, missing = sorted((g - w).elements()), sorted((w - g).elements())
        parts = [f"{count:,} parameters, expected {want:,}"]
        if extra:
            parts.append("unexpected parameters of shape " + ", ".join(map(str, extra[:4])))
        if missing:
            parts.append("missing parameters of shape " + ", ".join(map(str, missing[:4])))
        raise Fail(f"{what}: " + "; ".join(parts) + (f" ({hint})" if hint else "") + ".")

    return compare


def with_modules(key: str, kinds: tuple[str, ...], what: str):
    """For each torch.nn class in ``kinds``: the model has one iff the reference has one."""

    def compare(got: CallResult, ref: CallResult) -> None:
        have, want = set(got.values.get(key) or []), set(ref.values[key])
        for kind in kinds:
            if (kind in have) != (kind in want):
                raise Fail(f"{what}: {'no' if kind in want else 'unexpected'} nn.{kind} modules.")

    return compare


def same_set(key: str, what: str, hint: str = ""):
    """The list ``key`` holds the reference's entries, in any order; the message names a few
    missing and unexpected ones (lists of hundreds of names stay readable)."""

    def compare(got: CallResult, ref: CallResult) -> None:
        have, want = [str(x) for x in got.values.get(key) or []], [str(x) for x in ref.values[key]]
        if sorted(have) == sorted(want):
            return
        gone, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        diff = [f"{len(x)} {w} (e.g. {', '.join(x[:3])})" for w, x in
                (("missing", gone), ("unexpected", extra)) if x] or ["duplicate entries"]
        raise Fail(f"{what}: {'; '.join(diff)}.{' ' + hint if hint else ''}")

    return compare


def param_names(key: str, what: str, hint: str = "the weights are loaded by name"):
    """The parameters ``{name: shape}`` are the reference's, names included (the stub's names
    are the specification)."""

    def compare(got: CallResult, ref: CallResult) -> None:
        have, want = got.values.get(key) or {}, ref.values[key]
        wrong = sorted(k for k in have.keys() | want.keys() if have.get(k) != want.get(k))[:4]
        if wrong:
            raise Fail(f"{what}: the parameters do not follow the stub's names and shapes ({hint})"
                       f": expected { {k: want.get(k) for k in wrong} }, got "
                       f"{ {k: have.get(k) for k in wrong} }.")

    return compare


def custom(fn: Callable[[CallResult, CallResult], None]):
    """Escape hatch: ``fn(got, ref)`` raises :class:`Fail` with its own message."""
    return fn


# ----------------------------------------------------------------------------- references


def _json_bytes(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, allow_nan=True).encode(), dtype=np.uint8)


def save_results(results: dict[str, CallResult], path, extra: dict | None = None) -> None:
    """Results in one pickle-free ``.npz``: values (and ``extra`` entries) as JSON bytes,
    arrays as ``call/key``; a call that raised keeps its error as ``__error__``."""
    payload = {"__values__": _json_bytes(
        {cid: (r.values if r.ok else {"__error__": r.error}) for cid, r in results.items()})}
    for key, value in (extra or {}).items():
        payload[key] = _json_bytes(value)
    for cid, r in results.items():
        for key, arr in r.arrays.items():
            payload[f"{cid}/{key}"] = arr
    np.savez_compressed(path, **payload)


def load_results(path) -> tuple[dict[str, CallResult], dict]:
    """(results, extra JSON entries) from :func:`save_results`."""
    with np.load(path, allow_pickle=False) as data:
        values = json.loads(bytes(data["__values__"]).decode())
        out = {cid: (CallResult(error=v["__error__"]) if "__error__" in v else CallResult(values=v))
               for cid, v in values.items()}
        extra = {}
        for name in data.files:
            if name == "__values__":
                continue
            if "/" not in name:
                extra[name] = json.loads(bytes(data[name]).decode())
                continue
            cid, key = name.split("/", 1)
            out[cid].arrays[key] = data[name]
    return out, extra
