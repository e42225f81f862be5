"""One check, two places: the notebook's self-check (``lk.check``, the public checks run in the
student's kernel by labkit) gives the same verdict as the autograder's public checks.

For every lab and every exercise: on the solution copy, the untouched student copy and at least
two wrong variants (``wrong_notebooks()`` of tests/labs/test_labNN_variants.py). The autograder
grades each notebook through the real jailed path; the "kernel" is a fresh Python process that
runs the notebook's definitions (its imports and every statement the exercises need, in notebook
order) and then ``labkit.checking.kernel.run_public`` on that namespace, as ``lk.check`` does.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import variants

from autograder.labs import available_labs, get_lab

KERNEL = r"""
import json, sys
import nbformat
from labkit.checking.kernel import public_lab, run_public
from labkit.checking.program import build_program

lab = public_lab(sys.argv[2])
program = build_program(nbformat.read(sys.argv[1], as_version=4))
names = [e.name for e in lab.exercises]
ns = {"__name__": "__main__"}
for st in program.with_imports(program.needed(names)):
    try:
        exec(compile(st.padded(), f"<cell {st.cell}>", "exec"), ns)
    except Exception:
        pass  # as in a kernel: a failing cell leaves the rest defined
report = run_public(lab, ns)
print(json.dumps({v.number: [v.passed, v.output] for v in report.verdicts}))
"""


def kernel_verdicts(path: Path, lab_id: str) -> dict[str, list]:
    out = subprocess.run([sys.executable, "-c", KERNEL, str(path), lab_id], capture_output=True,
                         text=True, timeout=900, cwd=path.parent,
                         env={**os.environ, "LABKIT_SMOKE": "1",
                              "LABKIT_OFFLINE": "1", "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def grader_verdicts(results: dict) -> dict[str, list]:
    return {t["number"]: [t["score"] >= t["max_score"], t.get("output", "")]
            for t in results["tests"] if t["visibility"] == "visible"}


@pytest.mark.parametrize("lab_id", available_labs())
def test_self_check_verdicts_equal_the_public_checks(lab_id, assigned, tmp_path):
    lab = get_lab(lab_id)
    module = importlib.import_module(f"test_{lab_id}_variants")
    paths = assigned(lab_id)
    cases = [(nbformat.read(str(paths["solution"]), as_version=4), set(), "solution"),
             (nbformat.read(str(paths["student"]), as_version=4),
              {e.name for e in lab.exercises}, "student stub")]
    cases += [(nb, wrong, f"wrong variants of {sorted(wrong)}")
              for nb, wrong in module.wrong_notebooks()]
    wrong_count = {e.name: sum(e.name in w for _, w, _ in cases[2:]) for e in lab.exercises}
    assert min(wrong_count.values()) >= 2, f"exercises wrong in fewer than 2 notebooks: {wrong_count}"
    owner = {c.number: c.exercise for c in lab.public.checks}
    for nb, wrong, what in cases:
        folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        path = folder / lab.notebook_name
        nbformat.write(nb, str(path))
        graded = grader_verdicts(variants.grade_submission(lab, path,
                                                           references=variants.references(lab_id)))
        kernel = kernel_verdicts(path, lab_id)
        assert set(graded) == set(kernel) == set(owner)
        differ = {n: (graded[n], kernel[n]) for n in graded if graded[n][0] != kernel[n][0]}
        assert not differ, f"{lab_id}, {what}: grader vs self-check verdicts differ: {differ}"
        for n, (passed, _) in graded.items():  # and the notebook's cases are what they claim
            if owner[n] in wrong or what == "student stub":
                continue
            assert passed, f"{lab_id}, {what}: public check {n} fails: {graded[n][1]}"
        if what == "student stub":
            assert all(not p for p, _ in graded.values())
