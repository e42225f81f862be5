"""environment.yml must install exactly what `pip install -e ".[all]"` installs."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    req = req.split(";")[0] if "python_version" not in req else req
    return re.sub(r"\s+", "", req).lower()


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {_norm(r) for r in project["dependencies"] if "python_version" not in r}
    extras = project["optional-dependencies"]
    for items in extras.values():
        for r in items:
            if not r.startswith("labkit["):
                reqs.add(_norm(r))
    return reqs


def _environment_requirements() -> tuple[set[str], list[str]]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip, others, in_pip = set(), [], False
    for line in lines:
        stripped = line.split("#")[0].rstrip()
        if re.match(r"^\s+- pip:\s*$", stripped):
            in_pip = True
            continue
        m = re.match(r"^\s+- (.+)$", stripped)
        if m and in_pip and line.startswith(" " * 6):
            pip.add(_norm(m.group(1)))
        elif m:
            in_pip = False
            others.append(m.group(1).strip())
    return pip, others


def test_environment_matches_pyproject():
    pip, _ = _environment_requirements()
    assert "-e." in pip, "environment.yml must install this repository (- -e .)"
    pip.discard("-e.")
    expected = _pyproject_requirements()
    assert pip == expected, (
        f"only in environment.yml: {sorted(pip - expected)}; "
        f"only in pyproject.toml: {sorted(expected - pip)}"
    )


def test_environment_python_and_all_extra():
    _, others = _environment_requirements()
    assert "python=3.11" in others
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert extras["all"] == ["labkit[book,grader,dev]"]
    assert set(extras) == {"book", "grader", "dev", "all"}


def test_no_exact_pins_of_torch_or_numpy():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        if re.match(r"^(torch|torchvision|numpy)\b", req):
            assert "==" not in req and ">=" in req, req
