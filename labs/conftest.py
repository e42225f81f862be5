"""Master notebooks run top to bottom under nbval (lax mode) in smoke mode: tiny data, one epoch."""

import os

os.environ["LABKIT_SMOKE"] = "1"
os.environ["LABKIT_OFFLINE"] = "1"  # pretrained weights: local files only (smoke runs write random ones)
os.environ.setdefault("MPLBACKEND", "Agg")
# the course's real samples (../shared/data/real next to the checkout), when present: the
# notebooks read them through $LABKIT_REAL_DATA and carry no development path themselves
_REAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                     "real")
if os.path.isdir(_REAL):
    os.environ.setdefault("LABKIT_REAL_DATA", os.path.normpath(_REAL))
