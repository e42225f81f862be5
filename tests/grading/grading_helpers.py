"""Shared by the grading-week tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

N_SUBMISSIONS = 34  # size of the generated class export


def assert_clean(visit) -> None:
    """No console error, no failed or off-site request, every image decoded."""
    assert not visit.console_errors, visit.console_errors
    assert not visit.failed, visit.failed
    assert not visit.external, visit.external
    assert all(img["width"] > 0 for img in visit.images), visit.images
