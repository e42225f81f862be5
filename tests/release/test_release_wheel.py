"""``assign`` never ships a stale labkit wheel: the wheel in dist/ is reused only when it
provably matches the source (every package file byte for byte, pyproject.toml and README.md
unchanged), else rebuilt from a clean copy. Built here from a copy of the source, so the test can
change a check's weight without touching the repository."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.assign import (
    SETUP_SH,
    WHEEL_METADATA_INPUTS,
    build_wheel,
    build_zip,
    package_files,
    wheel_stale_reason,
)
from autograder.config import REPO_ROOT
from autograder.labs import get_lab

LAB = get_lab("lab02")
CHECKS = "labkit/checking/lab02.py"  # where check 1.1 is declared
EXTRA = "labkit/_stale_probe.py"

WEIGHT_OF = """
import json
from autograder.labs import get_lab
print(json.dumps({c.number: c.weight for c in get_lab("lab02").checks}))
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for name in WHEEL_METADATA_INPUTS:
        shutil.copy2(REPO_ROOT / name, root / name)
    for rel, path in package_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, root / rel)
    return root


def weights_in_zip(zip_path: Path, wheel_name: str, tmp: Path) -> dict[str, float]:
    """The check weights the zip grades with: its wheel unpacked, its checks module imported."""
    with zipfile.ZipFile(zip_path) as zf:
        inner = zf.read(wheel_name)
    unpacked = tmp / "unpacked"
    with zipfile.ZipFile(io.BytesIO(inner)) as whl:
        whl.extractall(unpacked)
    out = subprocess.run([sys.executable, "-c", WEIGHT_OF], cwd=unpacked, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(unpacked)})
    return json.loads(out.stdout)


def test_changed_weight_changes_what_the_zip_grades_with(source: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    (source / EXTRA).write_text("STALE = True\n")
    wheel = build_wheel(dist, root=source)
    refs = tmp_path / "references.npz"
    refs.write_bytes(b"stand-in references")
    before = weights_in_zip(build_zip(LAB, dist, wheel, refs), wheel.name, tmp_path / "a")
    assert before["1.1"] == 2

    # proven current: the same wheel is reused, not rebuilt
    mtime = wheel.stat().st_mtime_ns
    assert build_wheel(dist, root=source) == wheel and wheel.stat().st_mtime_ns == mtime

    checks = source / CHECKS
    text = checks.read_text()
    changed = text.replace('(rows = targets, columns = preds)", 2,',
                           '(rows = targets, columns = preds)", 5,', 1)
    assert changed != text
    checks.write_text(changed)
    assert wheel_stale_reason(wheel, source) == f"{CHECKS} differs from the source"
    (source / EXTRA).unlink()

    rebuilt = build_wheel(dist, root=source)
    assert wheel_stale_reason(rebuilt, source) is None
    assert sorted(p.name for p in dist.glob("labkit-*.whl")) == [rebuilt.name]
    after = weights_in_zip(build_zip(LAB, dist, rebuilt, refs), rebuilt.name, tmp_path / "b")
    assert after["1.1"] == 5 and {k: v for k, v in after.items() if k != "1.1"} == {
        k: v for k, v in before.items() if k != "1.1"}
    with zipfile.ZipFile(rebuilt) as whl:
        assert EXTRA not in whl.namelist()  # a deleted source file leaves the wheel


def test_stale_reasons(source: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    dist.mkdir()
    fake = dist / "labkit-0.1.0-py3-none-any.whl"
    fake.write_bytes(b"placeholder")
    assert "not built here" in wheel_stale_reason(fake, source)
    (dist / (fake.name + ".inputs")).write_text("0" * 64)
    assert "pyproject.toml" in wheel_stale_reason(fake, source)


def test_setup_installs_bubblewrap():
    assert "bubblewrap" in SETUP_SH.split("apt-get install", 1)[1].splitlines()[0]
