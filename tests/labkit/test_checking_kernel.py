"""lk.check: the public checks run in the student's kernel (labkit/checking/kernel.py), and the
declaration engine they share with the autograder (labkit/checking/spec.py, probe_utils.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import labkit as lk
from labkit.checking import kernel, spec
from labkit.checking.probe_utils import flatten

MEAN_IOU = '''
import torch
import labkit as lk


def mean_iou(confmat):
    confmat = confmat.double()
    tp = confmat.diag()
    union = confmat.sum(0) + confmat.sum(1) - tp
    per_class = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~per_class.isnan()
    return per_class.float(), (per_class[present].mean().item() if present.any() else float("nan"))
'''


def namespace(source: str, history: bool = True) -> dict:
    ns: dict = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), ns)
    if history:
        ns["In"] = ["", source]
    return ns


def test_a_correct_exercise_passes_with_the_autograders_points(capsys):
    report = lk.check("mean_iou", ns=namespace(MEAN_IOU))
    out = capsys.readouterr().out
    assert report.passed and report.score == report.max_score == 4
    assert "2.1    mean_iou: 3x3 confusion matrix" in out and "4/4" in out


def test_a_wrong_result_fails_with_the_message():
    wrong = MEAN_IOU.replace("return per_class.float(),", "return per_class.float().numpy(),")
    report = kernel.check("mean_iou", ns=namespace(wrong))
    assert report.score == 0
    assert all("per-class IoU: expected a torch.Tensor, got NumPy array" in v.output
               for v in report.verdicts)
    zero = MEAN_IOU.replace('torch.full_like(tp, float("nan"))', "torch.zeros_like(tp)")
    report = kernel.check("mean_iou", ns=namespace(zero))
    assert [v.passed for v in report.verdicts] == [True, False]  # 2.2: the absent class
    assert "entry (2,) should be NaN, got 0.0" in report.verdicts[1].output


def test_a_forbidden_name_fails_as_in_the_grader():
    """The kernel's input history is analysed like the submitted notebook."""
    lazy = MEAN_IOU.replace("    confmat = confmat.double()\n",
                            "    return lk.metrics.iou_from_confmat(confmat)\n")
    report = kernel.check("mean_iou", ns=namespace(lazy))
    assert report.score == 0
    assert "uses iou_from_confmat, metrics, which this exercise asks you to implement" in \
        report.verdicts[0].output


def test_not_defined_and_not_implemented():
    report = kernel.check("mean_iou", ns={"__name__": "__main__"})
    assert "`mean_iou` is not defined: run its cell first." in report.verdicts[0].output
    stub = "def mean_iou(confmat):\n    raise NotImplementedError\n"
    report = kernel.check("mean_iou", ns=namespace(stub))
    assert "`mean_iou` is not implemented yet (NotImplementedError)." in report.verdicts[0].output


def test_unknown_exercise_and_missing_expected_outputs(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="no graded exercise is called 'mean_iuo'"):
        kernel.check("mean_iuo", ns={})
    monkeypatch.setattr(kernel, "EXPECTED", tmp_path)
    with pytest.raises(FileNotFoundError, match="reinstall labkit"):
        kernel.check("mean_iou", ns=namespace(MEAN_IOU))


def test_error_handling_check_counts_only_with_the_checks_it_needs():
    """One rule for the kernel and the grader (autograder.grade.apply_needs uses it too)."""
    from autograder.grade import apply_needs

    needs = {"1.2": ("1.1",), "1.3": ("1.1",)}
    out = spec.unmet_needs(needs, {"1.1": False, "1.2": True, "1.3": False})
    assert set(out) == {"1.2", "1.3"} and "check 1.1 does not pass yet" in out["1.2"]
    assert spec.unmet_needs(needs, {"1.1": True, "1.2": True}) == {}
    data = {"tests": [{"number": "1.1", "score": 0, "max_score": 2},
                      {"number": "1.2", "score": 1, "max_score": 1, "output": ""}]}
    apply_needs(data, needs)
    assert data["tests"][1]["score"] == 0.0 and "1.1" in data["tests"][1]["output"]


# ----------------------------------------------------------------------------- the engine


def test_call_ids_and_inputs_are_the_same_in_every_process():
    code = ("import json; from labkit.checking import spec; c = spec.fn('f', spec.normal((2, 3)), "
            "k=spec.labels((4,), 3, 0.5)); a, p = c.materialize(); "
            "print(json.dumps([c.id, p, {k: v.tolist() for k, v in a.items()}]))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(seed)}).stdout
            for seed in (1, 2)]
    assert runs[0] == runs[1]
    cid, params, arrays = json.loads(runs[0])
    assert params == {"fn": "f", "args": [{"__array__": "args.0"}],
                      "kwargs": {"k": {"__array__": "kwargs.k"}}}
    assert np.array(arrays["args.0"]).shape == (2, 3) and len(arrays["kwargs.k"]) == 4
    other = spec.fn("f", spec.normal((2, 3)), k=spec.labels((4,), 3, 0.25))
    assert other.id != cid  # a different input is a different call


def test_same_compares_arrays_numbers_and_values():
    ref = spec.CallResult(values={"n": 0.5, "k": ["a"], "t.kind": "tensor"},
                          arrays={"t": np.array([1.0, np.nan, 3.0])})
    ok = spec.CallResult(values={"n": 0.5 + 1e-9, "k": ["a"], "t.kind": "tensor"},
                         arrays={"t": np.array([1.0, np.nan, 3.0 + 1e-7])})
    for cmp in (spec.same("t", "t"), spec.same("n", "n"), spec.same("k", "k")):
        cmp(ok, ref)
    bad = spec.CallResult(values={"n": 0.6, "k": ["b"], "t.kind": "tensor"},
                          arrays={"t": np.array([1.0, 2.0, 3.0])})
    messages = []
    for cmp in (spec.same("t", "t"), spec.same("n", "n"), spec.same("k", "k", hint="(why)")):
        with pytest.raises(spec.Fail) as err:
            cmp(bad, ref)
        messages.append(str(err.value))
    assert messages == ["t: entry (1,) should be NaN, got 2.0.", "n: got 0.6, expected 0.5.",
                        "k: got ['b'], expected ['a']. (why)"]


def test_param_shapes_names_what_differs():
    ref = spec.CallResult(values={"p": {"a": [4, 3], "b": [4]}})
    got = spec.CallResult(values={"p": {"x": [4, 3], "y": [4], "z": [4]}})
    with pytest.raises(spec.Fail, match=r"20 parameters, expected 16; unexpected parameters of "
                                         r"shape \(4,\)"):
        spec.param_shapes("p", "model")(got, ref)
    spec.param_shapes("p", "model")(spec.CallResult(values={"p": {"q": [4], "r": [4, 3]}}), ref)


def test_flatten_reports_raw_facts():
    out = flatten((torch.ones(2, requires_grad=True), 3, {"b": np.zeros(1), "a": "x"},
                   torch.nn.Linear(2, 3)), "out", {})
    assert out["out.type"] == "tuple" and out["out.len"] == 4
    assert out["out.0.kind"] == "tensor" and out["out.0.requires_grad"] is True
    assert out["out.1"] == 3.0 and out["out.1.type"] == "int"
    assert out["out.2.keys"] == ["a", "b"] and out["out.2.b.kind"] == "ndarray"
    assert out["out.3.params"] == {"weight": [3, 2], "bias": [3]}
    assert out["out.3.modules"] == ["Linear"]


def test_same_set_param_names_and_strict_bools():
    ref = spec.CallResult(values={"k": ["a", "b", "c"], "p": {"w": [2, 3]}, "f": True})
    spec.same_set("k", "keys")(spec.CallResult(values={"k": ["c", "a", "b"]}), ref)
    with pytest.raises(spec.Fail, match=r"keys: 1 missing \(e.g. c\); 1 unexpected \(e.g. d\)."):
        spec.same_set("k", "keys")(spec.CallResult(values={"k": ["a", "b", "d"]}), ref)
    with pytest.raises(spec.Fail, match="duplicate entries"):
        spec.same_set("k", "keys")(spec.CallResult(values={"k": ["a", "b", "c", "c"]}), ref)
    with pytest.raises(spec.Fail, match=r"expected \{'w': \[2, 3\], 'x': None\}, got "
                                        r"\{'w': None, 'x': \[2, 3\]\}"):
        spec.param_names("p", "M")(spec.CallResult(values={"p": {"x": [2, 3]}}), ref)
    with pytest.raises(spec.Fail, match="got 1, expected True"):
        spec.same("f", "flag")(spec.CallResult(values={"f": 1}), ref)


def test_generic_probes_report_arguments_after_and_fixed_weights():
    from labkit.checking import probe_utils as pu

    def scale_(x, by=2.0):
        x.mul_(by)
        return x.sum()

    arrays, params = spec.fn("scale_", np.ones(3, np.float32)).after().materialize()
    out = pu.call({"scale_": scale_}, arrays, **params)
    assert out["out"] == 6.0 and out["after.0"].tolist() == [2.0, 2.0, 2.0]

    class Net(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.fc = torch.nn.Linear(3, width)

        def forward(self, x):
            return self.fc(x)

    arrays, params = spec.loaded("Net", {"width": 4}, np.ones((2, 3), np.float32)).materialize()
    a = pu.loaded({"Net": Net}, arrays, **params)
    b = pu.loaded({"Net": Net}, arrays, **params)
    assert a["params"] == {"fc.weight": [4, 3], "fc.bias": [4]}
    np.testing.assert_array_equal(a["forward"], b["forward"])  # the same weights by name
    assert np.abs(a["forward"]).sum() > 0
