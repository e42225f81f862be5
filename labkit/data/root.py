"""Where datasets live on disk, the errors raised when they are missing or corrupt, and file readers."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from PIL import Image

from labkit.utils import smoke_mode

DATA_ENV = "LABKIT_DATA"
COLAB_DATA = Path("/content/data")
CACHE_DATA = Path("~/.cache/labkit/data")
T = TypeVar("T")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looked; the message says what to put where."""


class CorruptFileError(OSError):
    """A dataset file exists but cannot be read (truncated image, bad pickle, bad idx or XML file)."""


def on_colab() -> bool:
    """True inside Google Colab (the ``google.colab`` module is importable or ``/content`` exists)."""
    try:
        if importlib.util.find_spec("google.colab") is not None:
            return True
    except (ImportError, ValueError):
        pass
    return Path("/content").is_dir()


def data_root() -> Path:
    """Datasets folder: ``$LABKIT_DATA``, else ``/content/data`` on Colab, else ``~/.cache/labkit/data``."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    if on_colab():
        return COLAB_DATA
    return CACHE_DATA.expanduser()


def resolve_root(root: str | os.PathLike | None, folder: str | None = None) -> Path:
    """``root`` as a Path, or ``data_root()`` (joined with ``folder`` if given) when ``root`` is None."""
    if root is not None:
        return Path(root).expanduser()
    base = data_root()
    return base / folder if folder else base


def smoke_subset(n_full: int | None, n_smoke: int = 32) -> int | None:
    """``n_smoke`` in smoke mode (``LABKIT_SMOKE=1``), else ``n_full``: pass the result as ``subset=``."""
    if not smoke_mode():
        return n_full
    return n_smoke if n_full is None else min(n_full, n_smoke)


def subset_length(n_total: int, subset: int | None) -> int:
    """Number of samples kept by ``subset`` (the first ``subset`` of ``n_total``; all when None)."""
    if subset is None:
        return n_total
    if subset < 0:
        raise ValueError(f"subset must be >= 0 or None, got {subset}")
    return min(n_total, subset)


def not_found(
    dataset: str,
    *,
    searched: Path,
    layout: str,
    fixes: Sequence[str],
    missing: Sequence[Path] = (),
) -> DatasetNotFoundError:
    """Build the error for a missing dataset: names it, the path searched, the expected layout, the fixes."""
    lines = [f"{dataset} not found: searched {searched}"]
    if missing:
        lines.append("missing: " + ", ".join(str(p) for p in missing))
    lines.append(f"expected layout under {searched}:")
    lines.extend("    " + line for line in layout.strip("\n").splitlines())
    lines.append("fix:")
    lines.extend(f"  - {fix}" for fix in fixes)
    lines.append(
        f"  - or set {DATA_ENV} to the folder that holds your datasets "
        f"(now: {data_root()}), or pass root=..."
    )
    return DatasetNotFoundError("\n".join(lines))


def corrupt(path: str | os.PathLike, error: BaseException | str) -> CorruptFileError:
    """Build the error for an unreadable file, naming it and the reason."""
    return CorruptFileError(
        f"corrupt or unreadable file: {path} ({error}); delete it and download the dataset again"
    )


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open any image file (JPEG, PNG, GIF, RGBA, palette) fully decoded as RGB; CorruptFileError if not."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (FileNotFoundError, PermissionError):
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise corrupt(path, e) from e


def open_label_image(path: str | os.PathLike) -> Image.Image:
    """Open a label PNG fully decoded, keeping its integer values (mode L, P or I); CorruptFileError if not."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (FileNotFoundError, PermissionError):
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise corrupt(path, e) from e


def load_or_fixtures(
    load: Callable[[Path], T],
    write_fixtures: Callable[[Path], object],
    *,
    fallback: bool,
    name: str,
    root: str | os.PathLike | None = None,
) -> tuple[T, Path | None]:
    """``load(root)``; if the dataset is missing and ``fallback``, load miniature stand-ins instead.

    ``load(folder)`` builds the datasets from a data folder (``root``, default ``data_root()``).
    When it raises :class:`DatasetNotFoundError` and ``fallback`` is true (smoke runs, CPU runs of
    datasets that are not available offline), ``write_fixtures(folder)`` writes fixtures in the real
    format (``labkit.data.write_fake_*``) into a fresh temporary folder (removed when the Python
    process exits normally; a killed kernel leaves it in the temp dir), and ``load`` runs on it. Otherwise the error (which names the fix) propagates.
    Returns ``(result, fixtures_folder or None)``.
    """
    try:
        return load(resolve_root(root)), None
    except DatasetNotFoundError:
        if not fallback:
            raise
    folder = Path(tempfile.mkdtemp(prefix=f"labkit_{name}_fixtures_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    print(f"{name} not found: writing miniature stand-ins in the real format to {folder}")
    write_fixtures(folder)
    return load(folder), folder
