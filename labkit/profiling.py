"""Model cost: parameters, forward FLOPs and activation memory, and a table comparing models.

Activation memory here is the size of what the modules of a network output during one forward
pass: every tensor returned by any module (found with forward hooks), each storage counted once
(an in-place ReLU or a container returning its last child's output adds nothing). Intermediate
results computed inside a module's ``forward`` with plain tensor functions are not seen unless the
module returns them (the attention weights of a block that returns them are). It is a model-level
estimate of what training keeps for the backward pass, good for comparing architectures; the
exact figure depends on which tensors autograd saves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from labkit.utils import count_flops, count_params

__all__ = ["activation_memory", "model_stats", "model_table"]


def _tensors(obj: Any):
    """Every tensor in a module output (tensors, tuples/lists/dicts of them, HF-style objects)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def activation_memory(
    model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor]
) -> int:
    """Bytes of all module outputs of one forward pass ``model(*inputs)``, each storage once.

    The inputs themselves are not counted. Runs in eval mode without gradients (the model's mode
    is restored).
    """
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    excluded = {t.untyped_storage().data_ptr() for t in args}
    seen: dict[int, int] = {}  # storage pointer -> bytes
    kept: list[torch.Tensor] = []  # outputs stay alive, so no storage is reused during the pass

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        for t in _tensors(output):
            key = t.untyped_storage().data_ptr()
            if key in excluded:
                continue
            kept.append(t)
            seen[key] = max(seen.get(key, 0), t.numel() * t.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        kept.clear()
    return int(sum(seen.values()))


def model_stats(model: nn.Module, input_shape: Sequence[int]) -> dict[str, float]:
    """{"params", "flops", "activation_bytes"} of ``model`` on a zero input of ``input_shape``.

    ``input_shape`` includes the batch dimension, e.g. (1, 3, 32, 32) for per-image figures. The
    model is run on the device of its first parameter (CPU if it has none).
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros(tuple(input_shape), device=device)
    return {
        "params": float(count_params(model)),
        "flops": float(count_flops(model, x)),
        "activation_bytes": float(activation_memory(model, x)),
    }


def model_table(
    models: Mapping[str, nn.Module],
    input_shape: Sequence[int] | Mapping[str, Sequence[int]] = (1, 3, 32, 32),
    *,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "",
):
    """A :class:`labkit.report.Table`: params (M), GFLOPs, activation MB and metrics per model.

    ``input_shape`` is one shape for all models or a mapping model name -> shape (batch
    dimension included; (1, C, H, W) gives per-image costs). ``metrics`` maps model name ->
    {column: value} (e.g. {"top-1": 0.41, "top-5": 0.72}); missing values show as n/a.
    """
    from labkit.report import Table

    metric_names = list(dict.fromkeys(k for m in (metrics or {}).values() for k in m))
    table = Table(
        ["model", "params (M)", "forward GFLOPs", "activations (MB)", *metric_names],
        title=title,
        digits=3,
    )
    for name, model in models.items():
        shape = input_shape[name] if isinstance(input_shape, Mapping) else input_shape
        stats = model_stats(model, shape)
        values = (metrics or {}).get(name, {})
        table.rows.append(
            [
                name,
                stats["params"] / 1e6,
                stats["flops"] / 1e9,
                stats["activation_bytes"] / 2**20,
                *(float(values.get(k, float("nan"))) for k in metric_names),
            ]
        )
    return table
