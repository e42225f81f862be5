"""The graded program of a submission: which top-level statements each exercise needs.

A notebook is read statement by statement (each code cell parsed once; magics and shell lines
dropped). For every exercise the grader runs, in notebook order, every import and the
statements that bind the global names the exercise uses, transitively through the helpers,
constants and classes those use, whatever their form: calls, comprehensions, lambdas,
augmented assignments, ``with``/``try``/``if`` blocks, and later statements that mutate a needed
name (``ACTS["gelu"] = nn.GELU``, ``LAYERS.append(...)``). Another exercise of the lab is never
pulled in: the grader binds it to the reference implementation, so one wrong exercise costs only
its own points. Statements no exercise needs (training loops, plots) never run; they are listed.

Scopes come from the standard library's :mod:`symtable` (the compiler's own analysis): a name
read at module level or in a class body resolves to the last binding before the statement; a
name read inside a function body to its binding when the exercise was defined (as in the
student's kernel when the self-check ran), else to its last binding further down.
Odd but valid cells (NUL bytes, lone surrogates, nesting deeper than the parser allows) skip
only that cell, with a note. Everything is linear in the notebook's size.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import re
import symtable
from collections.abc import Iterable
from dataclasses import dataclass, field

import nbformat

MAX_SNIPPET = 40
_MAGIC_RE = re.compile(r"^(\s*)[!%]")
# cell magics whose body is ordinary Python (Colab users put %%capture on top of a cell)
_PYTHON_CELL_MAGICS = ("capture", "time", "timeit")
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeError, OverflowError)
_IMMEDIATE_SCOPES = {"listcomp", "setcomp", "dictcomp", "genexpr"}
_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__builtins__", "__file__", "__doc__",
                                         "get_ipython", "display"}


def drop_magics(source: str) -> str:
    """Cell magics drop the whole cell (but ``%%capture``/``%%time``/``%%timeit`` keep their
    Python body); line magics and shell lines become ``pass``. Valid Python is left alone."""
    try:
        ast.parse(source)
        return source
    except _PARSE_ERRORS:
        pass
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        if first[2:].split(" ")[0].strip() not in _PYTHON_CELL_MAGICS:
            return ""
        source = body
    out = []
    for line in source.splitlines():
        m = _MAGIC_RE.match(line)
        out.append(f"{m.group(1)}pass" if m else line)
    return "\n".join(out)


def snippet(text: str, limit: int = MAX_SNIPPET) -> str:
    """First non-empty line of ``text``, shortened, safe to print (no backticks, no surrogates)."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    first = first.encode("utf-8", "replace").decode("utf-8").replace("`", "'")
    first = "".join(c if c.isprintable() else "?" for c in first)
    return first if len(first) <= limit else first[: limit - 3] + "..."


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a code cell, with the names it binds, reads and mutates."""

    index: int  # position in the program (notebook order)
    cell: int  # 1-based number among the notebook's code cells
    line: int  # first line inside the cell
    source: str
    cell_start: str  # the cell's first line, to locate it as the student sees it
    binds: frozenset[str]
    uses_now: frozenset[str]  # read when the statement runs
    uses_later: frozenset[str]  # read inside function bodies (resolved at call time)
    mutates: frozenset[str]
    is_import: bool
    defines: str | None  # a top-level def/class name

    @property
    def where(self) -> str:
        """``code cell 7 (starts with `def mean_iou(`)``, plus the line when not the first."""
        cell = f"code cell {self.cell} (starts with `{self.cell_start}`)"
        if self.line > 1 and snippet(self.source) != self.cell_start:
            return f"{cell}, line {self.line} `{snippet(self.source)}`"
        return cell

    def padded(self) -> str:
        """The source with blank lines in front, so tracebacks give the line in the cell."""
        return "\n" * (self.line - 1) + self.source


@dataclass
class Program:
    """Every analysable top-level statement of a notebook, plus notes on cells skipped."""

    statements: list[Statement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _binders: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _mutators: dict[str, list[int]] = field(default_factory=dict, repr=False)
    has_star_import: bool = False

    def add(self, st: Statement) -> None:
        self.statements.append(st)
        for name in st.binds:
            self._binders.setdefault(name, []).append(st.index)
        for name in st.mutates:
            self._mutators.setdefault(name, []).append(st.index)

    # ------------------------------------------------------------------ queries

    def binding(self, name: str, before: int | None = None) -> Statement | None:
        """The last statement binding ``name`` (before position ``before`` when given)."""
        ids = self._binders.get(name)
        if not ids:
            return None
        if before is None:
            return self.statements[ids[-1]]
        k = bisect.bisect_left(ids, before)
        return self.statements[ids[k - 1]] if k else None

    def definition(self, name: str) -> ast.stmt | None:
        """The AST of the last statement binding ``name`` when it is a def/class, else None."""
        st = self.binding(name)
        if st is None or st.defines != name:
            return None
        try:
            node = ast.parse(st.source).body[0]
        except _PARSE_ERRORS:
            return None
        return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                         ast.ClassDef)) else None

    def defined_names(self) -> set[str]:
        return {st.defines for st in self.statements if st.defines}

    def imports(self) -> list[Statement]:
        return [st for st in self.statements if st.is_import]

    def needed(self, names: Iterable[str], *, stop: Iterable[str] = ()) -> list[Statement]:
        """Statements (notebook order) that the objects ``names`` need: their final bindings,
        what those read, transitively, and later statements mutating a needed name. Names in
        ``stop`` (the other exercises) are not followed. Imports are not included here."""
        stop = set(stop)
        chosen: set[int] = set()
        work: list[Statement] = []

        def take(st: Statement | None) -> None:
            if st is not None and st.index not in chosen and not st.is_import:
                chosen.add(st.index)
                work.append(st)

        roots = [st for st in (self.binding(n) for n in names) if st is not None]
        # names read inside function bodies resolve to what they were when the exercise was
        # defined (a demo cell further down that reuses a helper's name does not count);
        # a helper defined only further down still counts
        anchor = max((st.index for st in roots), default=-1) + 1
        for st in roots:
            take(st)
        while work:
            st = work.pop()
            for name in st.uses_now - stop:
                take(self.binding(name, before=st.index))
            for name in st.uses_later - stop:
                take(self.binding(name, before=anchor) or self.binding(name))
            for name in st.binds:
                if name in stop and st.defines == name:
                    continue
                for idx in self._mutators.get(name, ()):
                    if idx > st.index and not self.statements[idx].is_import:
                        take(self.statements[idx])
        return [self.statements[i] for i in sorted(chosen)]

    def unbound(self, statements: Iterable[Statement], *, also: Iterable[str] = ()) -> set[str]:
        """Names read by ``statements`` that no statement of the program binds (the grader
        will not have them: defined by a skipped cell, by ``exec`` or ``globals()``...)."""
        if self.has_star_import:
            return set()
        known = set(self._binders) | _BUILTINS | set(also)
        out: set[str] = set()
        for st in statements:
            out |= (st.uses_now | st.uses_later) - known
        return out

    def with_imports(self, statements: list[Statement]) -> list[Statement]:
        """``statements`` plus the imports that bind a name they read (and star imports), in
        notebook order."""
        used: set[str] = set()
        for st in statements:
            used |= st.uses_now | st.uses_later
        keep = {st.index for st in statements}
        keep |= {st.index for st in self.imports()
                 if st.binds & used or (self.has_star_import and not st.binds)}
        return [self.statements[i] for i in sorted(keep)]

    def program_for(self, exercise: str, exercises: Iterable[str]) -> list[Statement]:
        """What the child grading ``exercise`` runs: the statements the exercise needs and the
        imports they use, never another exercise's definition."""
        others = set(exercises) - {exercise}
        return self.with_imports(self.needed([exercise], stop=others))


# ----------------------------------------------------------------------------- analysis


def _first_line(node: ast.stmt) -> tuple[int, int]:
    """(line, column) where a statement starts: its first decorator, if it has any."""
    decorators = getattr(node, "decorator_list", None) or []
    if decorators:
        first = min(decorators, key=lambda d: (d.lineno, d.col_offset))
        return first.lineno, max(first.col_offset - 1, 0)  # the "@"
    return node.lineno, node.col_offset


def _segment(lines: list[str], node: ast.stmt) -> str:
    """Source text of ``node``, decorators included (column offsets are UTF-8 bytes)."""
    lineno, col = _first_line(node)
    first, last = lineno - 1, (node.end_lineno or node.lineno) - 1
    start = lines[first].encode("utf-8", "surrogatepass")[col:]
    if first == last:
        stop = (node.end_col_offset or 0) - col
        return start[:stop].decode("utf-8", "surrogatepass")
    middle = lines[first + 1: last]
    end = lines[last].encode("utf-8", "surrogatepass")[: node.end_col_offset or 0]
    return "\n".join([start.decode("utf-8", "surrogatepass"), *middle,
                      end.decode("utf-8", "surrogatepass")])


def _scope_names(source: str) -> tuple[set[str], set[str], set[str]]:
    """(binds, read now, read later) of a top-level statement, from :mod:`symtable`."""
    top = symtable.symtable(source, "<statement>", "exec")
    binds, now, later = set(), set(), set()
    for sym in top.get_symbols():
        name = sym.get_name()
        if sym.is_imported() or sym.is_assigned() or sym.is_namespace():
            binds.add(name)
        if sym.is_referenced():
            now.add(name)
    stack = [(child, False) for child in top.get_children()]
    while stack:
        table, deferred = stack.pop()
        kind = table.get_type()
        kind = getattr(kind, "value", kind)  # an enum from Python 3.13 on
        deferred = deferred or (kind == "function" and table.get_name() not in _IMMEDIATE_SCOPES)
        for sym in table.get_symbols():
            if sym.is_global() and sym.is_referenced():
                (later if deferred else now).add(sym.get_name())
        stack.extend((child, deferred) for child in table.get_children())
    return binds, now, later


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated(stmt: ast.stmt) -> set[str]:
    """Names whose object a module-level statement changes in place: ``N[k] = v``,
    ``N.attr = v``, ``del N[k]``, ``N.method(...)``, ``N += v`` (not inside function or class
    bodies)."""
    out: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            if node is not stmt:
                continue
            # a decorated def/class at top level: only its decorators and defaults run now
            stack.extend(getattr(node, "decorator_list", []))
            continue
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)  # `N += 1` reads N: it needs the earlier binding
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(
                node.ctx, (ast.Store, ast.Del)):
            name = _base_name(node)
            if name:
                out.add(name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = _base_name(node.func)
            if name:
                out.add(name)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _is_import(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(stmt, ast.Try):  # `try: import x / except ImportError: ...`
        simple = (ast.Import, ast.ImportFrom, ast.Pass, ast.Expr)
        return (all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) for s in stmt.body)
                and all(isinstance(s, simple) for h in stmt.handlers for s in h.body))
    return False


def build_program(nb: nbformat.NotebookNode) -> Program:
    """Analyse every code cell once (see the module docstring)."""
    prog = Program()
    number = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number += 1
        raw = cell.get("source", "")
        if not isinstance(raw, str):
            continue
        start = snippet(raw)
        where = f"code cell {number} (starts with `{start}`)"
        try:
            src = drop_magics(raw)
            if not src.strip():
                continue
            tree = ast.parse(src)
        except SyntaxError as exc:
            prog.notes.append(f"{where}: syntax error at line {exc.lineno}: {exc.msg}; this "
                              "cell was skipped.")
            continue
        except _PARSE_ERRORS as exc:
            prog.notes.append(f"{where} could not be read ({type(exc).__name__}: "
                              f"{snippet(str(exc), 80)}); this cell was skipped.")
            continue
        lines = src.splitlines() or [""]
        for stmt in tree.body:
            try:
                text = _segment(lines, stmt)
                binds, now, later = _scope_names(text)
                changed = _mutated(stmt)
                now |= changed & binds  # augmented assignment: reads the previous value
                mutates = changed - binds
            except _PARSE_ERRORS as exc:
                prog.notes.append(f"{where}, line {stmt.lineno} could not be analysed "
                                  f"({type(exc).__name__}); the grader skipped it.")
                continue
            if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
                prog.has_star_import = True
            defines = stmt.name if isinstance(
                stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
            prog.add(Statement(
                index=len(prog.statements), cell=number, line=_first_line(stmt)[0], source=text,
                cell_start=start, binds=frozenset(binds), uses_now=frozenset(now - binds
                if defines else now), uses_later=frozenset(later), mutates=frozenset(mutates),
                is_import=_is_import(stmt), defines=defines))
    return prog


# ----------------------------------------------------------------------------- static checks


def static_errors(lab, program: Program) -> dict[str, str]:
    """Per exercise: missing definition, wrong signature or a forbidden name (AST only)."""
    errors: dict[str, str] = {}
    names = [ex.name for ex in lab.exercises]
    for ex in lab.exercises:
        st = program.binding(ex.name)
        if st is None:
            errors[ex.name] = (
                f"`{ex.name}` is not defined in the notebook (renamed, deleted, or its cell has "
                "a syntax error?)."
            )
            continue
        node = program.definition(ex.name)
        if node is not None:
            if ex.kind == "class" and not isinstance(node, ast.ClassDef):
                errors[ex.name] = f"`{ex.name}` should be a class."
                continue
            if ex.kind == "function":
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    errors[ex.name] = f"`{ex.name}` should be a function."
                    continue
                args = [a.arg for a in node.args.posonlyargs + node.args.args]
                if tuple(args[: len(ex.params)]) != ex.params:
                    want = ", ".join(ex.params)
                    errors[ex.name] = (
                        f"`{ex.name}` has the wrong signature: its parameters are "
                        f"({', '.join(args)}), expected ({want}, ...) as in the stub."
                    )
                    continue
        if ex.forbidden:
            used = _names_used(program, ex.name, set(names) - {ex.name})
            bad = sorted(set(ex.forbidden) & used)
            if bad:
                errors[ex.name] = (
                    f"`{ex.name}` uses {', '.join(bad)}, which this exercise asks you to "
                    "implement yourself; the check gives no credit for it."
                )
    return errors


def _names_used(program: Program, name: str, stop: set[str]) -> set[str]:
    """Global names and attributes used by ``name`` and what it needs, plus the module paths
    of the imports that bind them (a local variable called like a library is not one)."""
    used: set[str] = set()
    needed = program.needed([name], stop=stop)
    for st in needed:
        used |= st.uses_now | st.uses_later
        try:
            tree = ast.parse(st.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        used |= {sub.attr for sub in ast.walk(tree) if isinstance(sub, ast.Attribute)}
    for st in program.imports():
        if not st.binds & used:
            continue
        try:
            tree = ast.parse(st.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for sub in ast.walk(tree):
            if isinstance(sub, ast.Import):
                for a in sub.names:
                    if (a.asname or a.name.split(".")[0]) in used:
                        used.update(a.name.split("."))
            elif isinstance(sub, ast.ImportFrom):
                for a in sub.names:
                    if (a.asname or a.name) in used:
                        used.update((sub.module or "").split("."))
                        used.add(a.name)
    used.discard(name)
    return used


# ----------------------------------------------------------------------------- notes


def graded_indices(lab, program: Program) -> set[int]:
    """Indices of the statements the grader runs for at least one exercise."""
    names = [ex.name for ex in lab.exercises]
    return {st.index for name in names for st in program.program_for(name, names)}


def missing_import_notes(lab, program: Program) -> list[str]:
    """Imports no exercise needs (so not run) whose module is not installed here: said once,
    at no cost (``from google.colab import drive`` in a notebook made on Colab)."""
    import importlib.util

    used = graded_indices(lab, program)
    notes = []
    for st in program.imports():
        if st.index in used:
            continue
        try:
            tree = ast.parse(st.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module
                    and not node.level else [])
            for mod in mods:
                top = mod.split(".")[0]
                try:
                    found = importlib.util.find_spec(top) is not None
                except (ImportError, ValueError):
                    found = False
                if not found:
                    notes.append(f"code cell {st.cell}: `{snippet(st.source, 60)}` would fail "
                                 f"here (ModuleNotFoundError: no module named '{top}'); no "
                                 "exercise needs it, so the grader did not run it and it costs "
                                 "nothing.")
                    break
    return notes[:20]


def skipped_note(lab, program: Program) -> str | None:
    """Which top-level statements no exercise needs (the grader does not run them)."""
    used = graded_indices(lab, program)
    skipped = [st for st in program.statements if st.index not in used]
    if not skipped:
        return None
    cells: dict[int, list] = {}
    for st in skipped:
        cells.setdefault(st.cell, []).append(st)
    parts = [f"code cell {c}: " + (f"`{snippet(sts[0].source)}`" if len(sts) == 1 else
                                    f"{len(sts)} statements, the first `{snippet(sts[0].source)}`")
             for c, sts in list(cells.items())[:30]]
    more = f"; and {len(cells) - 30} more cells" if len(cells) > 30 else ""
    return ("Statements the grader did not run (no exercise needs them, e.g. experiments and "
            "plots): " + "; ".join(parts) + more + ".")


def unbound_notes(lab, program: Program) -> list[str]:
    """Exercises that use a name no top-level statement binds (the grader will not have it)."""
    names = [ex.name for ex in lab.exercises]
    notes = []
    for ex in lab.exercises:
        if program.binding(ex.name) is None:
            continue
        missing = program.unbound(program.needed([ex.name], stop=set(names) - {ex.name}),
                                  also=names)
        if missing:
            notes.append(f"`{ex.name}` uses {', '.join(sorted(missing)[:8])}, which no top-level "
                         "statement of the notebook defines: the grader will not have "
                         + ("it." if len(missing) == 1 else "them."))
    return notes
