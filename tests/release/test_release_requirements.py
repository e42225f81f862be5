"""A lean Gradescope image: each zip's setup.sh installs only what grading its lab imports
(``autograder.requirements``: found statically), checked against what our code (labkit, the
grader, the lab's checks and probes, the solution's definitions) actually imports when loaded
here. Call-time imports are the static analysis' job (the probes are not run here)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement

from autograder.assign import build_zip
from autograder.config import REPO_ROOT
from autograder.labs import available_labs, get_lab
from autograder.requirements import lab_requirements

CORE = {"gradescope-utils", "nbformat", "numpy"}
GRADING_WEEK_ONLY = {"copydetect", "markdown-it-py", "pypdf"}

LOADED = r"""
import builtins, json, sys
first = {{}}  # top-level module -> the module that imported it first
_import = builtins.__import__

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split(".")[0]
    if level == 0 and top not in sys.modules and top not in first:
        first[top] = (globals or {{}}).get("__name__", "?")
    return _import(name, globals, locals, fromlist, level)

builtins.__import__ = recording
import autograder.grade, autograder.sandbox, autograder._driver
import importlib
from autograder import notebook as nbmod
from autograder.labs import get_lab
importlib.import_module("labkit.checking.probe_utils")
if get_lab("{lab}").public.probes:
    importlib.import_module(get_lab("{lab}").public.probes)
from autograder.requirements import graded_sources
lab = get_lab("{lab}")
solution = nbmod.make_solution(nbmod.read_notebook(lab.master_path))
ns = {{"__name__": "solution"}}
for src in graded_sources(solution, [ex.name for ex in lab.exercises]):
    exec(compile(src, "<solution>", "exec"), ns)
print(json.dumps(first))
"""
OURS = ("labkit", "autograder", "solution")


def _name(req: str) -> str:
    return Requirement(req).name.lower().replace("_", "-")


def allowed_distributions(reqs: list[str]) -> set[str]:
    """The distributions ``reqs`` install: themselves and their dependencies, recursively."""
    seen: set[str] = set()
    todo = [_name(r) for r in reqs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for r in requires:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    return seen


@pytest.mark.parametrize("lab_id", available_labs())
def test_requirements_are_lean_and_complete(lab_id: str):
    req = lab_requirements(get_lab(lab_id))
    names = {_name(r) for r in req.pip}
    assert req.torch[0] == "torch" and CORE <= names
    assert not names & GRADING_WEEK_ONLY
    assert not {"torch", "torchvision"} & names  # those come from the CPU index
    out = subprocess.run(
        [sys.executable, "-c", LOADED.format(labs=str(REPO_ROOT / "autograder" / "labs"),
                                             lab=lab_id)],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    importers = json.loads(out.stdout.strip().splitlines()[-1])
    dists = importlib.metadata.packages_distributions()
    allowed = allowed_distributions(list(req.pip) + list(req.torch))
    # what our code imports must be installed; a third-party package's own imports of modules
    # outside its declared dependencies are optional (try/except), like transformers' scipy
    missing = {m: who for m, who in importers.items()
               if m in dists and m not in OURS and who.split(".")[0] in OURS
               and not {d.lower().replace("_", "-") for d in dists[m]} & allowed}
    assert not missing, f"{lab_id}: loaded but not installed by setup.sh: {missing}"


def test_labs_differ_where_they_should():
    reqs = {lab: lab_requirements(get_lab(lab)) for lab in available_labs()}
    names = {lab: {_name(r) for r in r_.pip} for lab, r_ in reqs.items()}
    assert reqs["lab02"].torch == ("torch", "torchvision")  # FCN from torchvision
    assert "transformers" in names["lab03"]  # SegFormer against Hugging Face
    assert reqs["lab03"].torch == reqs["lab06"].torch == ("torch",)  # no torchvision
    assert not names["lab06"] & {"transformers", "imageio-ffmpeg", "scipy", "ipywidgets"}


def test_zip_setup_installs_the_lab_requirements(tmp_path):
    lab = get_lab("lab03")
    wheel = tmp_path / "labkit-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"stand-in")
    refs = tmp_path / "references.npz"
    refs.write_bytes(b"stand-in")
    with zipfile.ZipFile(build_zip(lab, tmp_path, wheel, refs)) as zf:
        setup = zf.read("setup.sh").decode()
    assert "pip install -q torch --index-url https://download.pytorch.org/whl/cpu" in setup
    assert f'--no-deps "/autograder/source/{wheel.name}"' in setup
    assert "'transformers>=4.40'" in setup and "[grader]" not in setup
    assert "bubblewrap" in setup
