"""labkit: helper library for the computer-vision deep-learning course labs.

Infrastructure only (datasets, metrics, training loop, plots, scaffolds); the exercise
solutions live in the master notebooks under ``labs/``.

Typical use in a notebook::

    import labkit as lk
    lk.seed_everything(0)
    device = lk.get_device()
"""

__version__ = "0.1.0"

from labkit.utils import (  # noqa: E402
    count_flops,
    count_params,
    get_device,
    seed_everything,
    smoke_mode,
)

__all__ = [
    "__version__",
    "count_flops",
    "count_params",
    "get_device",
    "seed_everything",
    "smoke_mode",
]
