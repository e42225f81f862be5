"""Suite-wide set-up: where the real dataset samples are (tests that need them skip if absent).

``$LABKIT_REAL_DATA`` wins; otherwise the first existing of ``<repo>/../shared/data/real`` (the
checkout beside the workplace's shared folder) and ``/work/shared/data/real`` (the workplace's
shared folder seen from a clone elsewhere, e.g. CI's clean clone).
"""

import os
from pathlib import Path

os.environ.setdefault("LABKIT_OFFLINE", "1")  # tests never download weights

_REPO = Path(__file__).resolve().parent.parent
_CANDIDATES = [_REPO.parent / "shared" / "data" / "real", Path("/work/shared/data/real")]

if "LABKIT_REAL_DATA" not in os.environ:
    for _path in _CANDIDATES:
        if _path.is_dir():
            os.environ["LABKIT_REAL_DATA"] = str(_path)
            break


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def assigned(tmp_path_factory):
    """``assigned(lab_id)``: the lab built once per session by ``assign_lab(verify=True)``.

    Verification means the solution copy earned full marks and the student copy earned zero,
    failing only with NotImplementedError; returns the paths (student, solution, zip, references).
    """
    from autograder.assign import assign_lab
    from autograder.config import load_config
    from autograder.labs import get_lab

    cache: dict[str, dict] = {}

    def build(lab_id: str) -> dict:
        if lab_id not in cache:
            dist = tmp_path_factory.mktemp(f"dist-{lab_id}")
            (dist / "labkit-0.1.0-py3-none-any.whl").write_bytes(b"placeholder: no wheel build")
            cache[lab_id] = assign_lab(get_lab(lab_id), dist, load_config(), verify=True)
        return cache[lab_id]

    return build


@pytest.fixture
def grade_mutant(assigned, tmp_path):
    """``grade_mutant(lab_id, old, new)``: grade the solution copy with ``old`` replaced by ``new``
    (exactly one occurrence) against the lab's references; returns (results, sections lost)."""
    import nbformat

    from autograder.grade import grade_submission, load_references
    from autograder.labs import get_lab

    def grade(lab_id: str, old: str, new: str):
        lab, built = get_lab(lab_id), assigned(lab_id)
        nb = nbformat.read(built["solution"], as_version=4)
        hits = sum(cell.source.count(old) for cell in nb.cells)
        assert hits == 1, f"{old!r} found {hits} times in the {lab_id} solution"
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
        path = tmp_path / lab.notebook_name
        nbformat.write(nb, str(path))
        results = grade_submission(lab, path, references=load_references(built["references"]))
        lost = {t["number"].split(".")[0] for t in results["tests"] if t["score"] < t["max_score"]}
        return results, lost

    return grade
