"""Checks of the labs' exercises, declared once (:mod:`labkit.checking.spec`) and used three
ways: the notebook's self-check (:func:`check`), the "before you submit" cell
(:func:`before_submit`) and the course's autograder. Only public checks ship here.

``program`` (what the autograder runs of a notebook) and ``probe_utils`` (how a probe reads the
student's objects) are shared with the autograder so that the notebook sees what it sees.
"""

from labkit.checking.kernel import check

__all__ = ["check", "before_submit"]


def before_submit(*args, **kwargs):
    """Rebuild what the autograder will run and run the public checks on it; see
    :func:`labkit.checking.submit.before_submit`."""
    from labkit.checking.submit import before_submit as run

    return run(*args, **kwargs)
