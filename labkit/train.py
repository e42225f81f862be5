"""Training loop for the labs: ``train_one_epoch``, ``evaluate``, ``fit`` and best-checkpoint saving.

Plain loops in the style of torchvision ``references``: the loop knows the task
("segmentation", "classification", "detection") but nothing about the model. AMP runs on CUDA only.
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
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from labkit.metrics import DetectionAP, SegmentationMetric, TopKAccuracy
from labkit.utils import get_device, seed_everything

__all__ = [
    "History",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "train_one_epoch",
]

Task = Literal["segmentation", "classification", "detection"]
_TASKS = ("segmentation", "classification", "detection")
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


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (torch.device, torch.dtype, Path)):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# --------------------------------------------------------------------------- batches and outputs


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


def _logits(output: Any) -> torch.Tensor:
    """Logits from a model output: a tensor, a dict with "out" (torchvision), an object with ``.logits`` (HF)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("out", "logits"):
            if key in output:
                return output[key]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in model output of type {type(output).__name__}")


def _match_size(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Logits (B,K,h,w) upsampled bilinearly to the mask size (B,H,W) when they differ."""
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def _default_loss(task: str, ignore_index: int) -> Callable | None:
    if task == "segmentation":
        return nn.CrossEntropyLoss(ignore_index=ignore_index)
    if task == "classification":
        return nn.CrossEntropyLoss()
    return None  # detection models compute their own losses


def _check_task(task: str) -> None:
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}, got {task!r}")


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 1
    return len(inputs)


def _infer_num_detection_classes(model: nn.Module) -> int:
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    cls_score = getattr(predictor, "cls_score", None)
    if isinstance(cls_score, nn.Linear):
        return cls_score.out_features
    raise ValueError("num_classes is required for detection (could not read model.roi_heads)")


# --------------------------------------------------------------------------- one epoch


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    task: Task,
    loss_fn: Callable | None = None,
    device: torch.device | str,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: Any | None = None,
    grad_clip: float | None = None,
    ignore_index: int = 255,
    num_classes: int | None = None,
    epoch: int | None = None,
    log_every: int = 10,
    progress: bool = True,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean "loss" (and task metrics: miou / top1, top5 / loss terms).

    AMP (autocast float16) is used when an enabled ``scaler`` is given and ``device`` is CUDA.
    ``scheduler`` is stepped after every batch. A non-finite loss raises FloatingPointError.
    ``steps``, if given, receives {"epoch", "step", "loss", ...} every ``log_every`` steps.
    """
    _check_task(task)
    device = torch.device(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss(task, ignore_index)
    use_amp = scaler is not None and scaler.is_enabled() and device.type == "cuda"
    model.train()
    seg_metric = (SegmentationMetric(num_classes, ignore_index=ignore_index)
                  if num_classes and task == "segmentation" else None)
    topk = TopKAccuracy((1, 5)) if task == "classification" else None
    sums: dict[str, float] = {}
    seen = 0
    where = f"epoch {epoch} " if epoch is not None else ""
    bar = tqdm(loader, desc=f"train {where}".strip(), leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        inputs, targets = _to_device(_split_batch(batch), device)
        n = _batch_size(inputs)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            if task == "detection":
                loss_dict = model(list(inputs), list(targets))
                loss = sum(loss_dict.values())
                terms = {k: v.detach() for k, v in loss_dict.items()}
            else:
                logits = _logits(model(inputs))
                if task == "segmentation":
                    logits = _match_size(logits, targets)
                loss = loss_fn(logits, targets)
                terms = {}
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"loss is {loss_value} at {where}step {step}; lower lr, check inputs, or set grad_clip"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()

        seen += n
        sums["loss"] = sums.get("loss", 0.0) + loss_value * n
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        with torch.no_grad():
            if task == "segmentation":
                if seg_metric is None:
                    seg_metric = SegmentationMetric(logits.shape[1], ignore_index=ignore_index)
                seg_metric.update(logits.detach(), targets)
            elif task == "classification":
                topk.update(logits.detach().float(), targets)
        if step % log_every == 0:
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if steps is not None:
                steps.append(
                    {
                        "epoch": epoch,
                        "step": step,
                        "loss": loss_value,
                        **{k: float(v) for k, v in terms.items()},
                    }
                )
    out = {k: v / seen for k, v in sums.items()} if seen else {"loss": math.nan}
    if seg_metric is not None:
        result = seg_metric.compute()
        out.update(miou=result.miou, pixel_accuracy=result.pixel_accuracy)
    if topk is not None:
        out.update({f"top{k}": v for k, v in topk.compute().items()})
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    task: Task,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | str,
    ignore_index: int = 255,
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``loader`` in eval mode.

    segmentation: loss, miou, pixel_accuracy, mean_accuracy, per_class_iou (list);
    classification: loss, top1, top5; detection: map (VOC AP@0.5), per_class_ap (list).
    """
    _check_task(task)
    device = torch.device(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss(task, ignore_index)
    model.eval()
    if task == "detection":
        metric: Any = DetectionAP(num_classes or _infer_num_detection_classes(model))
    elif task == "classification":
        metric = TopKAccuracy((1, 5))
    else:
        metric = SegmentationMetric(num_classes, ignore_index=ignore_index) if num_classes else None
    loss_sum, seen = 0.0, 0
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress):
        inputs, targets = _to_device(_split_batch(batch), device)
        n = _batch_size(inputs)
        seen += n
        if task == "detection":
            metric.update(model(list(inputs)), list(targets))
            continue
        logits = _logits(model(inputs))
        if task == "segmentation":
            logits = _match_size(logits, targets)
            if metric is None:
                metric = SegmentationMetric(logits.shape[1], ignore_index=ignore_index)
        loss_sum += float(loss_fn(logits, targets)) * n
        metric.update(logits.float(), targets)
    if task == "detection":
        result = metric.compute()
        return {"map": result.map, "per_class_ap": result.per_class_ap.tolist()}
    out: dict[str, Any] = {"loss": loss_sum / seen if seen else math.nan}
    if task == "classification":
        out.update({f"top{k}": v for k, v in metric.compute().items()})
    elif metric is not None:
        out.update(metric.compute().as_dict())
    else:
        out.update(miou=math.nan, pixel_accuracy=math.nan, mean_accuracy=math.nan, per_class_iou=[])
    return out


# --------------------------------------------------------------------------- checkpoints


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


# --------------------------------------------------------------------------- fit


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    config: TrainConfig | None = None,
    task: Task,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scheduler_step: Literal["epoch", "batch"] = "epoch",
    history: History | None = None,
) -> History:
    """Train for ``config.epochs``; returns the History (records "train_*" and "val_*" per epoch).

    Saves ``best.pt`` in ``config.checkpoint_dir`` when ``config.monitor`` improves. A non-finite
    loss raises FloatingPointError with ``.history`` attached (and ``history``, if passed, filled);
    Ctrl-C stops training and returns the history so far.
    """
    _check_task(task)
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    config = config if config is not None else TrainConfig()
    history = history if history is not None else History()
    seed_everything(config.seed)
    device = get_device(config.device)
    model.to(device)
    optimizer = optimizer if optimizer is not None else _make_optimizer(model, config)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError("ReduceLROnPlateau needs scheduler_step='epoch'")
    best_value: float | None = None
    warned_monitor = False
    start_epoch = len(history.records)
    epochs = range(start_epoch + 1, start_epoch + config.epochs + 1)
    try:
        for epoch in tqdm(epochs, desc="epochs", disable=not config.progress):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            try:
                train = train_one_epoch(
                    model,
                    train_loader,
                    optimizer,
                    task=task,
                    loss_fn=loss_fn,
                    device=device,
                    scaler=scaler,
                    scheduler=scheduler if scheduler_step == "batch" else None,
                    grad_clip=config.grad_clip,
                    ignore_index=config.ignore_index,
                    num_classes=num_classes,
                    epoch=epoch,
                    log_every=config.log_every,
                    progress=config.progress,
                    steps=history.steps,
                )
            except FloatingPointError as err:
                err.history = history  # type: ignore[attr-defined]
                raise
            record: dict[str, Any] = {"epoch": epoch, "lr": lr}
            record.update({f"train_{k}": v for k, v in train.items()})
            if val_loader is not None:
                val = evaluate(
                    model,
                    val_loader,
                    task=task,
                    num_classes=num_classes,
                    loss_fn=loss_fn,
                    device=device,
                    ignore_index=config.ignore_index,
                    progress=config.progress,
                )
                record.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, list)})
            record["time"] = time.perf_counter() - t0
            history.append(record)

            key = next(
                (
                    k
                    for k in (f"val_{config.monitor}", f"train_{config.monitor}", config.monitor)
                    if k in record
                ),
                None,
            )
            value = record.get(key) if key else None
            if scheduler is not None and scheduler_step == "epoch":
                if plateau:
                    if _is_number(value):
                        scheduler.step(value)
                else:
                    scheduler.step()
            if config.checkpoint_dir is None:
                continue
            if key is None:
                if not warned_monitor:
                    warnings.warn(
                        f"monitor {config.monitor!r} not in metrics {list(record)}; saving every epoch",
                        stacklevel=2,
                    )
                    warned_monitor = True
                improved = True
            elif not _is_number(value):
                improved = False
            else:
                improved = best_value is None or (
                    value > best_value if config.mode == "max" else value < best_value
                )
            if improved:
                best_value = value if _is_number(value) else best_value
                save_checkpoint(
                    Path(config.checkpoint_dir) / "best.pt",
                    model,
                    config=config,
                    epoch=epoch,
                    metrics=record,
                )
    except KeyboardInterrupt:
        warnings.warn(
            f"training interrupted; returning the {len(history)} finished epochs", stacklevel=2
        )
    return history
