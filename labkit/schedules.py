"""Learning-rate schedules stepped after every optimizer step (``scheduler_step="batch"``)."""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_cosine", "warmup_cosine_factor"]


def warmup_cosine_factor(
    step: int, *, warmup_steps: int, total_steps: int, min_factor: float = 0.0
) -> float:
    """Multiplier of the base learning rate after ``step`` scheduler steps.

    Linear warm-up from 0 to 1 over ``warmup_steps`` (``step / warmup_steps``), then a half cosine
    from 1 down to ``min_factor`` at ``total_steps``; constant ``min_factor`` after that. The same
    shape as Hugging Face's ``get_cosine_schedule_with_warmup`` (with ``min_factor=0``).
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_factor: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR: linear warm-up for ``warmup_steps`` steps, cosine decay to ``min_factor`` x lr.

    Call ``scheduler.step()`` after every optimizer step; ``total_steps`` is usually
    ``epochs * len(train_loader)``. See :func:`warmup_cosine_factor` for the exact values.
    """
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(
            f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}"
        )
    if not 0.0 <= min_factor <= 1.0:
        raise ValueError(f"min_factor must be in [0, 1], got {min_factor}")

    def factor(step: int) -> float:
        return warmup_cosine_factor(
            step, warmup_steps=warmup_steps, total_steps=total_steps, min_factor=min_factor
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
