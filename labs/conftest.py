"""Master notebooks run top to bottom under nbval (lax mode) in smoke mode: tiny data, one epoch."""

import os

os.environ["LABKIT_SMOKE"] = "1"
os.environ["LABKIT_OFFLINE"] = "1"  # pretrained weights: local files only (smoke runs write random ones)
os.environ.setdefault("MPLBACKEND", "Agg")
