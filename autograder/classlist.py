"""A Gradescope export read as a class: submission folders, their submitters, notebooks, results.

Gradescope's *Export Submissions* (unzipped) holds one folder per submission,
``submission_<id>/``, with the files the student uploaded, and ``submission_metadata.yml`` at the
top, keyed by folder name (Ruby-style keys: ``:submitters:`` with ``:name:``, ``:sid:``,
``:email:``). ``python -m autograder grade LAB EXPORT --csv`` writes a ``results.json``
(Gradescope format) into each folder. The report, answers and similarity commands read the export
through this module only; it never runs student code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

METADATA = "submission_metadata.yml"
RESULTS = "results.json"


@dataclass(frozen=True)
class Submitter:
    name: str
    sid: str = ""
    email: str = ""


@dataclass
class Submission:
    """One submission folder of an export (a group submission has several submitters)."""

    id: str  # folder name, e.g. "submission_4103582"
    folder: Path
    submitters: list[Submitter] = field(default_factory=list)
    notebook: Path | None = None

    @property
    def label(self) -> str:
        """Names of the submitters, or the folder name when the metadata has none."""
        return " & ".join(s.name for s in self.submitters if s.name) or self.id

    def results(self) -> dict | None:
        """The graded ``results.json`` (None when missing or unreadable)."""
        path = self.folder / RESULTS
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("tests"), list) else None


def anonymous_id(lab_id: str, submission_id: str) -> str:
    """A stable pseudonym for a submission (same lab and folder -> same id), e.g. ``A-3f9c2e``."""
    return "A-" + hashlib.sha256(f"{lab_id}:{submission_id}".encode()).hexdigest()[:6]


def _submission_folders(export_dir: Path) -> list[Path]:
    """The submission folders: those the metadata lists, else every ``submission_*`` folder,
    else (a hand-made export) every visible folder."""
    folders = sorted(p for p in export_dir.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_")))
    listed = set(read_metadata(export_dir)) if (export_dir / METADATA).exists() else set()
    if listed:
        folders = [p for p in folders if p.name in listed]
    elif any(p.name.startswith("submission_") for p in folders):
        folders = [p for p in folders if p.name.startswith("submission_")]
    if not folders and not (export_dir / METADATA).exists():
        return []
    if len(folders) == 1 and not (export_dir / METADATA).exists() and (
            folders[0] / METADATA).exists():
        return _submission_folders(folders[0])  # the zip's own top folder
    return folders


def _pick_notebook(folder: Path, notebook_name: str | None) -> Path | None:
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if notebook_name:
        named = [p for p in found if p.name == notebook_name]
        if named:
            return named[0]
    return found[0] if found else None


def read_metadata(export_dir: Path) -> dict[str, list[Submitter]]:
    """Submitters per folder name from ``submission_metadata.yml`` (empty when absent)."""
    path = export_dir / METADATA
    if not path.exists():
        return {}
    import yaml  # PyYAML (a dependency of jupyter-book and nbformat's tooling)

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, list[Submitter]] = {}
    for key, entry in data.items():
        entry = entry or {}
        people = entry.get(":submitters") or entry.get("submitters") or []
        out[str(key)] = [
            Submitter(name=str(p.get(":name") or p.get("name") or ""),
                      sid=str(p.get(":sid") or p.get("sid") or ""),
                      email=str(p.get(":email") or p.get("email") or ""))
            for p in people if isinstance(p, dict)
        ]
    return out


def read_export(export_dir: Path, notebook_name: str | None = None) -> list[Submission]:
    """Every submission of an export, sorted by folder name; raises if it holds none."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise FileNotFoundError(f"{export_dir} is not a folder: unzip the Gradescope export first")
    folders = _submission_folders(export_dir)
    root = folders[0].parent if folders else export_dir
    meta = read_metadata(root)
    subs = [Submission(f.name, f, meta.get(f.name, []), _pick_notebook(f, notebook_name))
            for f in folders]
    if not subs:
        raise FileNotFoundError(
            f"{export_dir} holds no submission folders (expected submission_<id>/ folders from "
            "Gradescope's Review Grades > Export Submissions)")
    return subs
