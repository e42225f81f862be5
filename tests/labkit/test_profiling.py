"""labkit.profiling: activation memory by forward hooks, per-model statistics and table."""

import math

import torch
from torch import nn

from labkit.profiling import activation_memory, model_stats, model_table


def test_activation_memory_hand_checked():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    # float32 outputs: Linear (3,8), ReLU (3,8), Linear (3,2); the Sequential's output is the
    # last Linear's tensor, counted once; the input is not counted
    assert activation_memory(model, torch.rand(3, 4)) == 4 * (3 * 8 + 3 * 8 + 3 * 2)


def test_inplace_relu_adds_nothing_and_mode_is_restored():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2)).train()
    assert activation_memory(model, torch.rand(3, 4)) == 4 * (3 * 8 + 3 * 2)
    assert model.training


class _TupleOut(nn.Module):
    def forward(self, x):
        attn = torch.softmax(x @ x.transpose(-1, -2), dim=-1)  # (B, N, N)
        return x * 2, attn


def test_tuple_outputs_are_all_counted_double_precision():
    x = torch.rand(2, 5, 3, dtype=torch.float64)
    assert activation_memory(_TupleOut(), x) == 8 * (2 * 5 * 3 + 2 * 5 * 5)


def test_model_stats_of_a_linear():
    stats = model_stats(nn.Linear(10, 4), (3, 10))
    assert stats["params"] == 44
    assert stats["flops"] == 2 * 3 * 10 * 4
    assert stats["activation_bytes"] == 4 * 3 * 4


def test_model_table_with_metrics_and_shapes():
    models = {"a": nn.Linear(10, 4), "b": nn.Sequential(nn.Flatten(), nn.Linear(12, 4))}
    table = model_table(models, {"a": (1, 10), "b": (1, 3, 2, 2)},
                        metrics={"a": {"top-1": 0.5, "top-5": 0.9}})
    assert table.columns == ["model", "params (M)", "forward GFLOPs", "activations (MB)",
                             "top-1", "top-5"]
    assert table.column("params (M)") == [44 / 1e6, 52 / 1e6]
    assert table.column("top-1")[0] == 0.5 and math.isnan(table.column("top-5")[1])
    assert "n/a" in table.to_markdown()
