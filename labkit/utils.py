"""Small utilities shared by every lab: seeding, device choice, smoke mode, model size and cost."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

SMOKE_ENV = "LABKIT_SMOKE"
PROFILE_ENV = "LABKIT_PROFILE"
PROFILES = ("smoke", "cpu", "full")


def smoke_mode() -> bool:
    """True when ``LABKIT_SMOKE`` is set to a true value ("1", "true", "yes"): tiny subsets, one epoch."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def run_profile() -> str:
    """How big a lab runs: "smoke" (``LABKIT_SMOKE=1``), else ``LABKIT_PROFILE`` "cpu" or "full".

    "full" (default) is sized for a Colab T4; "cpu" is a reduced schedule that trains for real on
    a laptop CPU (used for the CPU-scale reference numbers); "smoke" checks that everything runs.
    """
    if smoke_mode():
        return "smoke"
    profile = os.environ.get(PROFILE_ENV, "full").strip().lower() or "full"
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def seed_everything(seed: int = 0, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer`` if given, else CUDA, then Apple MPS, then CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def describe_hardware() -> str:
    """Where numbers are measured, for result files: the GPU's name, else CPU model, cores, threads."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(
    model: nn.Module | Callable,
    inputs: torch.Tensor | Sequence[torch.Tensor],
) -> int:
    """Forward FLOPs of ``model(*inputs)`` counted by ``torch.utils.flop_counter`` (a multiply-add = 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    was_training = getattr(model, "training", None)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*args)
    finally:
        if isinstance(model, nn.Module) and was_training:
            model.train()
    return int(counter.get_total_flops())
