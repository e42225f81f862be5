"""Master notebooks run top to bottom under nbval (lax mode) in smoke mode: tiny data, one epoch."""

import os

os.environ["LABKIT_SMOKE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
