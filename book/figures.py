"""Figures of the chapter pages, drawn at build time by ``build_site.py`` (no binaries in git).

One module per lab, ``book/figures_labNN.py``, defines ``FIGURES = {lab_id: [make, ...]}`` with
functions ``make(outdir: Path) -> None`` that write ``labNN_<what>.png`` into ``outdir`` (the
stage's ``labs/figures/``) through :func:`save`, the one place that sets the format. ``FIGURES``
here merges them all (loaded on first use, so a lab module may import :func:`save` from here).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SAVE = {"dpi": 120, "bbox_inches": "tight", "metadata": {"Software": None}}  # reproducible PNGs


def save(fig: plt.Figure, outdir: Path, name: str, *, tight_layout: bool = True) -> Path:
    """Write ``fig`` as ``outdir/name`` (PNG, :data:`SAVE` settings), close it, return the path."""
    if tight_layout:
        fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / name, **SAVE)
    plt.close(fig)
    return outdir / name


def collect() -> dict[str, list[Callable[[Path], None]]]:
    """``{lab_id: [make, ...]}`` from every ``figures_lab*.py`` next to this file, in lab order."""
    figures: dict[str, list[Callable[[Path], None]]] = {}
    for path in sorted(Path(__file__).resolve().parent.glob("figures_lab*.py")):
        for lab_id, makers in importlib.import_module(path.stem).FIGURES.items():
            figures.setdefault(lab_id, []).extend(makers)
    return figures


def __getattr__(name: str):
    if name == "FIGURES":
        return collect()
    raise AttributeError(f"module 'figures' has no attribute {name!r}")
