"""Checkpoints that record what produced them: ``save_checkpoint``, ``load_checkpoint`` and
``BestCheckpoint``, which keeps ``best.pt`` for the best epoch of a monitored metric."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from labkit.train import TrainConfig

__all__ = ["BestCheckpoint", "load_checkpoint", "monitored", "save_checkpoint"]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (torch.device, torch.dtype, Path)):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    config: TrainConfig | None = None,
    epoch: int | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write {state_dict, config, labkit_version, epoch, metrics} to ``path``."""
    import labkit

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": model.state_dict(),
        "config": None
        if config is None
        else json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "labkit_version": labkit.__version__,
        "epoch": epoch,
        "metrics": json.loads(json.dumps(dict(metrics or {}), default=_jsonable)),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load weights into ``model`` (if given); returns {config, labkit_version, epoch, metrics}."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if model is not None:
        model.load_state_dict(payload["state_dict"])
    return {k: v for k, v in payload.items() if k != "state_dict"}


def monitored(record: Mapping[str, Any], monitor: str) -> tuple[str | None, Any]:
    """(key, value) of ``monitor`` in an epoch record: "val_<monitor>", else "train_<monitor>",
    else ``monitor`` itself; (None, None) when the record has none of them."""
    for key in (f"val_{monitor}", f"train_{monitor}", monitor):
        if key in record:
            return key, record[key]
    return None, None


class BestCheckpoint:
    """Keeps ``<directory>/best.pt`` for the epoch whose ``monitor`` is best (``mode`` "max" or "min").

    ``update(model, record)`` after each epoch saves when the metric improves (a NaN never does);
    a monitor missing from the records warns once and saves every epoch.
    """

    def __init__(self, directory: str | os.PathLike, *, monitor: str = "miou", mode: str = "max",
                 config: TrainConfig | None = None) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.path = Path(directory) / "best.pt"
        self.monitor, self.mode, self.config = monitor, mode, config
        self.best: float | None = None
        self._warned = False

    def _improves(self, record: Mapping[str, Any]) -> bool:
        key, value = monitored(record, self.monitor)
        if key is None:
            if not self._warned:
                warnings.warn(f"monitor {self.monitor!r} not in metrics {list(record)}; "
                              "saving every epoch", stacklevel=4)
                self._warned = True
            return True
        if not _is_number(value):
            return False
        if self.best is not None and not (value > self.best if self.mode == "max"
                                          else value < self.best):
            return False
        self.best = value
        return True

    def update(self, model: nn.Module, record: Mapping[str, Any]) -> bool:
        """Save ``model`` with ``record`` (its "epoch" included) when it is the best so far."""
        if not self._improves(record):
            return False
        save_checkpoint(self.path, model, config=self.config, epoch=record.get("epoch"),
                        metrics=record)
        return True
