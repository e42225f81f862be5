"""Course configuration (``course.toml`` at the repository root): repository URL and release ref."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CourseConfig:
    title: str
    short_name: str
    repository: str
    release_ref: str
    student_branch: str

    @property
    def github_slug(self) -> str:
        """``owner/name`` of the repository."""
        return self.repository.rstrip("/").removeprefix("https://github.com/")

    @property
    def pip_spec(self) -> str:
        """What students ``pip install`` to get labkit at the release ref."""
        return f"labkit @ git+{self.repository}@{self.release_ref}"

    def colab_url(self, notebook_relpath: str) -> str:
        """Colab link to a student notebook, given its path inside the student branch."""
        return (
            f"https://colab.research.google.com/github/{self.github_slug}/blob/"
            f"{self.student_branch}/{notebook_relpath}"
        )


def load_config(path: Path | None = None) -> CourseConfig:
    """Read ``course.toml`` (default: the repository root)."""
    path = path or REPO_ROOT / "course.toml"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as fh:
        data = tomllib.load(fh)["course"]
    return CourseConfig(**{k: str(data[k]) for k in CourseConfig.__dataclass_fields__})
