"""Tests for labkit/checkpoints.py: save/load with provenance and the best-checkpoint helper."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import labkit
from labkit.checkpoints import BestCheckpoint, load_checkpoint, monitored, save_checkpoint
from labkit.train import TrainConfig


def test_save_load_roundtrip(tmp_path):
    model = nn.Linear(2, 1)
    cfg = TrainConfig(epochs=3)
    save_checkpoint(tmp_path / "a" / "m.pt", model, config=cfg, epoch=2, metrics={"x": torch.ones(2)})
    fresh = nn.Linear(2, 1)
    meta = load_checkpoint(tmp_path / "a" / "m.pt", fresh)
    assert torch.equal(fresh.weight, model.weight)
    assert meta["config"]["epochs"] == 3 and meta["epoch"] == 2 and meta["metrics"] == {"x": [1.0, 1.0]}
    assert meta["labkit_version"] == labkit.__version__


def test_monitored_prefers_val():
    assert monitored({"train_miou": 1, "val_miou": 2}, "miou") == ("val_miou", 2)
    assert monitored({"train_miou": 1}, "miou") == ("train_miou", 1)
    assert monitored({"loss": 3}, "miou") == (None, None)


def test_best_checkpoint_min_mode_skips_nan(tmp_path):
    best = BestCheckpoint(tmp_path, monitor="loss", mode="min")
    model = nn.Linear(1, 1)
    saved = [best.update(model, {"epoch": e, "val_loss": v})
             for e, v in enumerate([2.0, 1.0, math.nan, 1.5, 0.5], start=1)]
    assert saved == [True, True, False, False, True]
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 5
    with pytest.raises(ValueError, match="mode"):
        BestCheckpoint(tmp_path, mode="best")


def test_best_checkpoint_missing_monitor_warns_once(tmp_path):
    best = BestCheckpoint(tmp_path, monitor="nope")
    with pytest.warns(UserWarning, match="monitor 'nope'") as caught:
        assert best.update(nn.Linear(1, 1), {"epoch": 1}) and best.update(nn.Linear(1, 1), {"epoch": 2})
    assert len(caught) == 1
