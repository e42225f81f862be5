"""What grading one lab imports, so that its Gradescope image installs only that.

Found statically from the source (nothing is imported or run): the grader's own modules
(``autograder.grade``, the sandbox and its driver), the lab's ``autograder/labs/labNN`` package
(spec, probes, checks), and what the grader runs of the lab's student and solution copies
(:func:`graded_sources`: each exercise with what it uses), followed through every
``labkit``/``autograder`` module they reach (imports inside functions included, and ``lk.<sub>``
attribute references, since ``labkit`` loads its submodules lazily). The third-party top-level
modules found are mapped to their distributions (``importlib.metadata``) and, where
``pyproject.toml`` lists them, to its version specifiers. torch and torchvision are reported
apart: ``setup.sh`` installs them from the PyTorch CPU wheel index (torchvision only for the labs
that import it).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder import notebook as nbmod
from autograder.config import REPO_ROOT
from autograder.spec import LabSpec

OURS = ("labkit", "autograder")
# `python -m autograder grade`: cli imports only the standard library and these at grading time
GRADER_ROOTS = ("autograder.config", "autograder.grade", "autograder.sandbox", "autograder._driver")
TORCH = ("torch", "torchvision")
_LAZY_RE = re.compile(r"\b(?:lk|labkit)\.([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class LabRequirements:
    torch: tuple[str, ...]  # ("torch",) or ("torch", "torchvision"): from the CPU index
    pip: tuple[str, ...]  # other requirement specifiers, e.g. "numpy>=1.24"
    modules: tuple[str, ...]  # the third-party top-level modules found


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(tree: ast.AST):
    """``ast.walk`` without the bodies of ``if TYPE_CHECKING:`` blocks (never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if _is_type_checking(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    names = []
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return [n for n in names if n]


def _labkit_exports(root: Path) -> dict[str, str]:
    """labkit's lazily exported names and their modules (``_EXPORTS`` in labkit/__init__.py)."""
    init = root / "labkit" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def third_party_modules(roots: list[str], sources: list[str] = (), root: Path = REPO_ROOT
                        ) -> set[str]:
    """Top-level third-party modules reachable from ``roots`` (our module names) and from the
    extra Python ``sources`` (e.g. a notebook's graded program)."""
    external: set[str] = set()
    todo: list[str] = []
    exports = _labkit_exports(root)

    def add(name: str) -> None:
        top = name.split(".")[0]
        if top in OURS:
            todo.extend(_with_parents(name))
        elif top and top not in sys.stdlib_module_names and top != "__future__":
            external.add(top)

    for source in sources:
        for name in _imports(ast.parse(source), "__main__", False):
            add(name)
        for sub in _LAZY_RE.findall(source):
            add(f"labkit.{exports.get(sub, sub)}")
    for name in roots:
        add(name)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name, root)
        if path is None:
            continue
        text = path.read_text(encoding="utf-8")
        for imported in _imports(ast.parse(text), name, path.name == "__init__.py"):
            add(imported)
        if not name.startswith("labkit"):  # code that uses labkit, e.g. probes: `lk.metrics`
            for sub in _LAZY_RE.findall(text):
                add(f"labkit.{exports.get(sub, sub)}")
    return external


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_specifiers(root: Path) -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for items in project.get("optional-dependencies", {}).values():
        reqs.extend(r for r in items if not r.startswith("labkit["))
    return {_canonical(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]): r for r in reqs}


def graded_sources(nb, exercises: list[str]) -> list[str]:
    """What of a notebook can run during grading: for every exercise, the statements the
    grader's child runs for it (:meth:`labkit.checking.program.Program.program_for`: the exercise,
    what it uses, transitively, and the imports those read)."""
    from labkit.checking.program import build_program

    program = build_program(nb)
    chosen: dict[int, str] = {}
    for exercise in exercises:
        for st in program.program_for(exercise, exercises):
            chosen[st.index] = st.source
    return [chosen[i] for i in sorted(chosen)]


def lab_requirements(lab: LabSpec, root: Path = REPO_ROOT) -> LabRequirements:
    """What grading ``lab`` needs installed (see module docstring)."""
    # the lab's declarations (public in labkit, hidden here), its probes and the generic ones
    roots = [*GRADER_ROOTS, f"autograder.labs.{lab.id}", f"labkit.checking.{lab.id}",
             "labkit.checking.probe_utils"]
    if lab.public.probes:
        roots.append(lab.public.probes)
    # the driver loads the labkit modules holding an exercise's forbidden names, to stub them
    exports, subs = _labkit_exports(root), {p.stem for p in (root / "labkit").iterdir()}
    for ex in lab.exercises:
        for name in getattr(ex, "forbidden", ()):
            if name in subs or name in exports:
                roots.append(f"labkit.{exports.get(name, name)}")
    master = nbmod.read_notebook(lab.master_path)
    exercises = [ex.name for ex in lab.exercises]
    # the student's program (same imports and helpers) and the solution's (the reference
    # implementation of the other exercises when one exercise is graded)
    sources = (graded_sources(nbmod.make_student(master), exercises)
               + graded_sources(nbmod.make_solution(master), exercises))
    modules = third_party_modules(roots, sources, root)
    dists = importlib.metadata.packages_distributions()
    specifiers = _pyproject_specifiers(root)
    pip: dict[str, str] = {}
    for module in sorted(modules - set(TORCH)):
        for dist in dists.get(module, [module]):
            key = _canonical(dist)
            pip.setdefault(key, specifiers.get(key, key))
    torch = tuple(t for t in TORCH if t in modules or t == "torch")
    return LabRequirements(torch, tuple(pip[k] for k in sorted(pip)), tuple(sorted(modules)))
