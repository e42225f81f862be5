"""Per-lab hidden checks. One sub-package per lab: ``labNN/__init__.py`` declares ``HIDDEN``,
the lab's hidden checks, which exist only here (never in labkit, the public release or a student
notebook); :func:`get_lab` joins them with labkit's public declarations
(``labkit/checking/labNN.py``: exercises, public checks, probes) into a
:class:`autograder.spec.LabSpec`.
"""

from __future__ import annotations

import importlib
import pkgutil

from autograder.spec import LabSpec
from labkit.checking.spec import hidden

_LABS: dict[str, LabSpec] = {}


def available_labs() -> list[str]:
    """Lab ids that have checks, e.g. ``["lab02"]``."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("lab"))


def get_lab(lab_id: str) -> LabSpec:
    """The spec of ``lab_id`` ("lab02" or "lab02_segmentation"); clear error if unknown."""
    short = lab_id.split("_")[0]
    if short not in available_labs():
        raise SystemExit(
            f"unknown lab {lab_id!r}: labs with checks are {', '.join(available_labs()) or 'none'}"
        )
    if short not in _LABS:
        public = importlib.import_module(f"labkit.checking.{short}").LAB
        _LABS[short] = LabSpec(public, hidden(importlib.import_module(
            f"autograder.labs.{short}").HIDDEN))
    return _LABS[short]
