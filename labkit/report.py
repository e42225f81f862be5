"""Result tables for the labs: ablation deltas against a base run, and student vs reference.

Tables are plain :class:`Table` objects that render as Markdown (``str``/``print``) and as HTML in
Jupyter (``_repr_html_``), so notebooks need no pandas.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    """A small table: column names and rows of cells (numbers are formatted on render)."""

    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    title: str = ""
    digits: int = 2
    signed_rows: set[int] = field(default_factory=set)  # rows shown with an explicit sign

    def _fmt(self, value: object, signed: bool = False) -> str:
        if isinstance(value, bool) or value is None:
            return "" if value is None else str(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "n/a"
            return f"{value:+.{self.digits}f}" if signed else f"{value:.{self.digits}f}"
        return str(value)

    def _cells(self, i: int, row: list[object]) -> list[str]:
        return [self._fmt(v, i in self.signed_rows) for v in row]

    def to_markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        sep = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(self._cells(i, row)) + " |" for i, row in enumerate(self.rows)]
        title = [f"**{self.title}**", ""] if self.title else []
        return "\n".join(title + [head, sep] + body)

    __str__ = to_markdown

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in self._cells(i, row)) + "</tr>"
            for i, row in enumerate(self.rows)
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def column(self, name: str) -> list[object]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


def delta_table(
    results: Mapping[str, Mapping[str, float]],
    *,
    base: str,
    metrics: Sequence[str] | None = None,
    scale: float = 100.0,
    title: str = "",
) -> Table:
    """Rows per run: the base run's metrics, then every other run as a difference from the base.

    ``results`` maps run name -> {metric: value}; values are multiplied by ``scale`` (accuracies in
    [0, 1] become percentage points).
    """
    if base not in results:
        raise KeyError(f"base run {base!r} not in results (runs: {', '.join(results)})")
    metrics = list(metrics or results[base].keys())
    table = Table(["run", *metrics], title=title)
    rows = []
    for name, values in results.items():
        if name == base:
            rows.insert(0, [f"{name} (absolute)", *(_get(values, m) * scale for m in metrics)])
        else:
            rows.append([f"{name} (delta)",
                         *(_get(values, m) * scale - _get(results[base], m) * scale for m in metrics)])
    table.rows = rows
    table.signed_rows = set(range(1, len(rows)))
    return table


def _get(values: Mapping[str, float], key: str) -> float:
    value = values.get(key, float("nan"))
    return float("nan") if value is None else float(value)


def compare_with_reference(
    student: Mapping[str, float],
    reference: Mapping[str, Mapping[str, object]],
    *,
    title: str = "Your numbers vs the reference",
) -> Table:
    """Closing table of a lab: each quantity, the student's value, the reference and its source.

    ``reference`` maps quantity -> {"value": float, "setting": str} (where it was measured:
    hardware, data, epochs), e.g. loaded with :func:`load_reference`.
    """
    table = Table(["quantity", "yours", "reference", "measured on"], title=title, digits=4)
    for key, ref in reference.items():
        yours = student.get(key)
        table.rows.append([key, float("nan") if yours is None else float(yours),
                           float(ref.get("value", float("nan"))), str(ref.get("setting", ""))])
    return table


def load_reference(path: str | Path) -> dict[str, dict[str, object]]:
    """Reference results saved with the lab (JSON: quantity -> {"value", "setting"})."""
    with open(path) as fh:
        data = json.load(fh)
    return data.get("results", data)


def save_results(path: str | Path, results: Mapping[str, float], *, setting: str) -> Path:
    """Save a lab's headline numbers with where they were measured and the labkit version."""
    import time

    import torch

    from labkit import __version__
    from labkit.utils import describe_hardware

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = describe_hardware()
    payload = {
        "labkit_version": __version__,
        "torch_version": torch.__version__,
        "device": device,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": {k: {"value": float(v), "setting": setting} for k, v in results.items()},
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
