"""Training loop for the labs: ``TrainConfig``, ``History``, ``train_one_epoch``, ``evaluate``, ``fit``.

Plain loops in the style of torchvision ``references``: a task object (:mod:`labkit.tasks`) gives
the loss and the metric, so the loop knows neither the task nor the model; checkpoints come from
:mod:`labkit.checkpoints`. AMP runs on CUDA only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from labkit.checkpoints import (
    BestCheckpoint,
    _is_number,
    _jsonable,
    load_checkpoint,
    monitored,
    save_checkpoint,
)
from labkit.tasks import Task, TaskName, _logits, _match_size, make_task  # noqa: F401
from labkit.utils import get_device, seed_everything

__all__ = [
    "BestCheckpoint",
    "History",
    "Task",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "make_task",
    "save_checkpoint",
    "train_one_epoch",
]

_OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of ``fit``; override by keyword: ``dataclasses.replace(cfg, lr=1e-4)`` or ``cfg.replace(...)``."""

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"  # "adamw" | "adam" | "sgd" (used when fit gets no optimizer)
    momentum: float = 0.9  # SGD only
    amp: bool = True  # mixed precision, on CUDA only
    grad_clip: float | None = None  # max gradient norm
    device: str | None = None  # None: labkit.get_device()
    log_every: int = 10  # steps between progress-bar updates and History.steps entries
    checkpoint_dir: str | None = None  # best.pt goes here when set
    monitor: str = "miou"  # metric for the best checkpoint: "val_<monitor>", else "train_<monitor>"
    mode: str = "max"  # "max" | "min"
    seed: int = 0
    ignore_index: int = 255  # segmentation: label not counted in loss nor metrics
    progress: bool = True  # tqdm progress bars

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


class History:
    """Per-epoch metrics: ``records`` is a list of dicts such as {"epoch", "train_loss", "val_miou", ...}."""

    def __init__(
        self, records: Iterable[Mapping[str, Any]] = (), steps: Iterable[Mapping[str, Any]] = ()
    ):
        self.records: list[dict[str, Any]] = [dict(r) for r in records]
        # one entry every log_every training steps
        self.steps: list[dict[str, Any]] = [dict(s) for s in steps]

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one epoch's record."""
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        """Values of ``key`` per epoch (NaN where an epoch lacks it)."""
        if not any(key in r for r in self.records):
            raise KeyError(f"{key!r} not in history; keys: {self.keys()}")
        return [r.get(key, math.nan) for r in self.records]

    def __contains__(self, key: object) -> bool:
        return any(key in r for r in self.records)

    def keys(self) -> list[str]:
        """All metric names, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    def best(self, key: str, mode: str = "max") -> dict[str, Any]:
        """The record with the largest (``mode="max"``) or smallest ``key``, NaNs skipped."""
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        scored = [r for r in self.records if _is_number(r.get(key))]
        if not scored:
            raise KeyError(f"no finite {key!r} in history; keys: {self.keys()}")
        pick = max if mode == "max" else min
        return dict(pick(scored, key=lambda r: r[key]))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text {"records": [...], "steps": [...]}; also written to ``path`` if given."""
        text = json.dumps(
            {"records": self.records, "steps": self.steps}, indent=1, default=_jsonable
        )
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> History:
        """Inverse of ``to_json`` (JSON text or a file path)."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        data = json.loads(text)
        return cls(data.get("records", ()), data.get("steps", ()))

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History({len(self.records)} epochs, last={last})"


# --------------------------------------------------------------------------- batches


def _to_device(obj: Any, device: torch.device) -> Any:
    """Tensors, and lists / tuples / dicts of them, moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj) if type(obj) in (list, tuple) else obj
    return obj


def _split_batch(batch: Any) -> tuple[Any, Any]:
    """(inputs, targets) from a (images, targets) pair or a dict with images / pixel_values and masks / labels."""
    if isinstance(batch, Mapping):
        inputs = next((batch[k] for k in ("images", "pixel_values", "inputs") if k in batch), None)
        targets = next((batch[k] for k in ("masks", "labels", "targets") if k in batch), None)
        if inputs is None or targets is None:
            raise ValueError(f"cannot find inputs and targets in batch keys {list(batch)}")
        return inputs, targets
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"expected a batch (inputs, targets), got {type(batch).__name__}")


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 1
    return len(inputs)


def _backward(loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer,
              scaler: torch.amp.GradScaler | None, grad_clip: float | None) -> None:
    """zero_grad, backward (scaled under AMP), optional gradient-norm clipping, optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


# --------------------------------------------------------------------------- one epoch


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    task: Task | TaskName,
    device: torch.device | str,
    config: TrainConfig | None = None,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: Any | None = None,
    epoch: int | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean "loss", its terms and the task's training metrics.

    ``config`` gives grad_clip, log_every and progress (defaults: ``TrainConfig()``). AMP (autocast
    float16) is used when an enabled ``scaler`` is given and ``device`` is CUDA. ``scheduler`` is
    stepped after every batch. A non-finite loss raises FloatingPointError. ``steps``, if given,
    receives {"epoch", "step", "loss", ...} every ``config.log_every`` steps.
    """
    config = config if config is not None else TrainConfig()
    task, device = make_task(task, ignore_index=config.ignore_index), torch.device(device)
    use_amp = scaler is not None and scaler.is_enabled() and device.type == "cuda"
    model.train()
    metric = task.metric(model, train=True)
    sums: dict[str, float] = {}
    seen = 0
    where = f"epoch {epoch} " if epoch is not None else ""
    bar = tqdm(loader, desc=f"train {where}".strip(), leave=False, disable=not config.progress)
    for i, batch in enumerate(bar):
        inputs, targets = _to_device(_split_batch(batch), device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            step = task.step(model, inputs, targets, train=True)
        loss = float(step.loss.detach())
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss} at {where}step {i}; lower lr, check inputs, or set grad_clip")
        _backward(step.loss, model, optimizer, scaler, config.grad_clip)
        if scheduler is not None:
            scheduler.step()
        n = _batch_size(inputs)
        seen += n
        values = {"loss": loss, **{k: float(v) for k, v in step.terms.items()}}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v * n
        with torch.no_grad():
            metric = task.update(metric, step.outputs, targets)
        if i % config.log_every == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
            if steps is not None:
                steps.append({"epoch": epoch, "step": i, **values})
    out = {k: v / seen for k, v in sums.items()} if seen else {"loss": math.nan}
    return {**out, **task.summarize(metric, train=True)}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    task: Task | TaskName,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | str,
    ignore_index: int = 255,
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``loader`` in eval mode (``num_classes``, ``loss_fn``, ``ignore_index``
    apply to a task given by name).

    segmentation: loss, miou, pixel_accuracy, mean_accuracy, per_class_iou (list);
    classification: loss, top1, top5; detection: map (VOC AP@0.5), per_class_ap (list).
    """
    task = make_task(task, num_classes=num_classes, ignore_index=ignore_index, loss_fn=loss_fn)
    device = torch.device(device)
    model.eval()
    metric = task.metric(model, train=False)
    loss_sum, seen = 0.0, 0
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        inputs, targets = _to_device(_split_batch(batch), device)
        step = task.step(model, inputs, targets, train=False)
        n = _batch_size(inputs)
        seen += n
        if step.loss is not None:
            loss_sum += float(step.loss) * n
        metric = task.update(metric, step.outputs, targets)
    out: dict[str, Any] = {"loss": loss_sum / seen if seen else math.nan} if task.eval_loss else {}
    return {**out, **task.summarize(metric, train=False)}


# --------------------------------------------------------------------------- fit


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` (adamw / adam / sgd) over the trainable parameters, with its lr and decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _epoch_scheduler_step(scheduler: Any, value: Any) -> None:
    """Step an epoch scheduler; ReduceLROnPlateau gets the monitored value (skipped when not finite)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if _is_number(value):
            scheduler.step(value)
    else:
        scheduler.step()


def _check_scheduler(scheduler: Any, scheduler_step: str) -> None:
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError("ReduceLROnPlateau needs scheduler_step='epoch'")


def _best_checkpoint(config: TrainConfig) -> BestCheckpoint | None:
    if config.checkpoint_dir is None:
        return None
    return BestCheckpoint(config.checkpoint_dir, monitor=config.monitor, mode=config.mode,
                          config=config)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    config: TrainConfig | None = None,
    task: Task | TaskName,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scheduler_step: Literal["epoch", "batch"] = "epoch",
    history: History | None = None,
) -> History:
    """Train for ``config.epochs``; returns the History (records "train_*" and "val_*" per epoch).

    ``task`` is a :class:`labkit.tasks.Task` or its name (then built with ``num_classes``,
    ``loss_fn`` and ``config.ignore_index``). Saves ``best.pt`` in ``config.checkpoint_dir`` when
    ``config.monitor`` improves. A non-finite loss raises FloatingPointError with ``.history``
    attached (and ``history``, if passed, filled); Ctrl-C stops training and returns the history so far.
    """
    config = config if config is not None else TrainConfig()
    task = make_task(task, num_classes=num_classes, ignore_index=config.ignore_index, loss_fn=loss_fn)
    _check_scheduler(scheduler, scheduler_step)
    history = history if history is not None else History()
    seed_everything(config.seed)
    device = get_device(config.device)
    model.to(device)
    optimizer = optimizer if optimizer is not None else make_optimizer(model, config)
    scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
    best = _best_checkpoint(config)
    first = len(history.records) + 1
    try:
        for epoch in tqdm(range(first, first + config.epochs), desc="epochs", disable=not config.progress):
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
            try:
                train = train_one_epoch(
                    model, train_loader, optimizer, task=task, device=device, config=config,
                    scaler=scaler, scheduler=scheduler if scheduler_step == "batch" else None,
                    epoch=epoch, steps=history.steps)
            except FloatingPointError as err:
                err.history = history  # type: ignore[attr-defined]
                raise
            record.update({f"train_{k}": v for k, v in train.items()})
            if val_loader is not None:
                val = evaluate(model, val_loader, task=task, device=device, progress=config.progress)
                record.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, list)})
            record["time"] = time.perf_counter() - t0
            history.append(record)
            if scheduler is not None and scheduler_step == "epoch":
                _epoch_scheduler_step(scheduler, monitored(record, config.monitor)[1])
            if best is not None:
                best.update(model, record)
    except KeyboardInterrupt:
        warnings.warn(
            f"training interrupted; returning the {len(history)} finished epochs", stacklevel=2
        )
    return history
