"""Suite-wide set-up: where the real dataset samples are (tests that need them skip if absent).

``$LABKIT_REAL_DATA`` wins; otherwise the first existing of ``<repo>/../shared/data/real`` (the
checkout beside the workplace's shared folder) and ``/work/shared/data/real`` (the workplace's
shared folder seen from a clone elsewhere, e.g. CI's clean clone).
"""

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_CANDIDATES = [_REPO.parent / "shared" / "data" / "real", Path("/work/shared/data/real")]

if "LABKIT_REAL_DATA" not in os.environ:
    for _path in _CANDIDATES:
        if _path.is_dir():
            os.environ["LABKIT_REAL_DATA"] = str(_path)
            break
