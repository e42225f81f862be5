"""Public and hidden checks apart: the labkit wheel students install (what the public release
packages) and the student notebooks hold no hidden check's name, input or expected value.

The public checks' declarations, inputs and expected outputs must be in that wheel (the
notebook's self-check runs them); the hidden ones exist only in ``autograder/labs/`` and the
autograder zip. Inputs and expected values are compared as raw bytes of every array (the wheel's
files and the members of its ``.npz`` files) and as the long decimal forms of every number.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from autograder.assign import PUBLIC_PACKAGES_FIND, WHEEL_METADATA_INPUTS, package_files
from autograder.config import REPO_ROOT
from autograder.grade import load_references
from autograder.labs import available_labs, get_lab

MIN_ARRAY_BYTES = 48  # shorter byte strings occur by chance


@cache
def labkit_wheel_files(tmp: str) -> dict[str, bytes]:
    """Every file of the labkit-only wheel (as build_public packages it), npz members included."""
    src = Path(tmp) / "src"
    src.mkdir(parents=True)
    for name in WHEEL_METADATA_INPUTS:
        shutil.copy2(REPO_ROOT / name, src / name)
    for rel, path in package_files(REPO_ROOT, ("labkit",)).items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / rel)
    pyproject = (src / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(pyproject.replace(PUBLIC_PACKAGES_FIND,
                                                          'include = ["labkit*"]'))
    out = Path(tmp) / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(src)], check=True)
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(next(out.glob("labkit-*.whl"))) as whl:
        for name in whl.namelist():
            files[name] = whl.read(name)
            if name.endswith(".npz"):
                with zipfile.ZipFile(io.BytesIO(files[name])) as npz:
                    for member in npz.namelist():
                        files[f"{name}/{member}"] = npz.read(member)
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> dict[str, bytes]:
    return labkit_wheel_files(str(tmp_path_factory.mktemp("leaks")))


def hidden_only(lab):
    """(hidden checks, hidden-only call ids): calls no public check makes."""
    public = {call.id for c in lab.public.checks for call in c.calls}
    hidden = [c for c in lab.checks if c.hidden]
    return hidden, {call.id for c in hidden for call in c.calls} - public


def numbers(obj) -> set[str]:
    """Decimal forms of the non-round numbers in a JSON value (likely to be unique)."""
    out = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= numbers(v)
    elif isinstance(obj, float) and np.isfinite(obj) and len(repr(obj)) >= 10:
        out.add(repr(obj))
    return out


def array_bytes(arrays: dict[str, np.ndarray]) -> list[tuple[str, bytes]]:
    out = []
    for key, arr in arrays.items():
        data = np.ascontiguousarray(arr).tobytes()
        if len(data) >= MIN_ARRAY_BYTES and len(set(data)) > 2:  # not a constant fill
            out.append((key, data))
    return out


def test_wheel_is_labkit_only_with_the_public_checks(wheel):
    assert not [n for n in wheel if n.startswith("autograder/")]
    for lab_id in available_labs():
        assert f"labkit/checking/{lab_id}.py" in wheel
        assert f"labkit/checking/expected/{lab_id}.npz" in wheel


@pytest.mark.parametrize("lab_id", available_labs())
def test_no_hidden_check_name_input_or_expected_value(lab_id, wheel, assigned):
    lab = get_lab(lab_id)
    hidden, calls = hidden_only(lab)
    assert hidden and calls
    paths = assigned(lab_id)
    text_files = {n: b for n, b in wheel.items() if not n.endswith((".npy", ".npz"))}
    student = paths["student"].read_text(encoding="utf-8")
    # names: the title of every hidden check (and its "exercise: title" form)
    for c in hidden:
        for name in (c.title, c.name):
            assert name not in student, f"hidden check {c.number} named in the student notebook"
            found = [n for n, b in text_files.items() if name.encode() in b]
            assert not found, f"hidden check {c.number} ({name!r}) named in {found}"
    # inputs: the hidden calls' ids and input arrays
    made = {c.id: c for c in lab.make_calls()}
    for cid in calls:
        assert not [n for n in wheel if cid in n], f"hidden call {cid} in the wheel"
        for key, data in array_bytes(made[cid].arrays):
            found = [n for n, b in wheel.items() if data in b]
            assert not found, f"input {key} of hidden call {cid} is in {found}"
    # expected values: the solution's outputs of the hidden calls
    refs = load_references(paths["references"])
    for cid in calls:
        ref = refs[cid]
        for key, data in array_bytes(ref.arrays):
            found = [n for n, b in wheel.items() if data in b]
            assert not found, f"expected {key} of hidden call {cid} is in {found}"
        for number in numbers(ref.values):
            assert number not in student, f"expected value {number} ({cid}) in the notebook"
            found = [n for n, b in text_files.items()
                     if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", b.decode("latin-1"))]
            assert not found, f"expected value {number} of hidden call {cid} is in {found}"


def test_the_search_finds_what_is_there(wheel, assigned):
    """The same search on a public call finds its input and expected value (it can fail)."""
    lab = get_lab("lab02")
    public = [c for c in lab.make_calls() if c.id in {call.id for ch in lab.public.checks
                                                      for call in ch.calls}]
    hits = [cid for cid in (c.id for c in public) if any(cid in n for n in wheel)]
    assert len(hits) == len(public)
    refs = load_references(assigned("lab02")["references"])
    found = 0
    for c in public:
        for _, data in array_bytes(refs[c.id].arrays):
            found += any(data in b for b in wheel.values())
    assert found > 0
