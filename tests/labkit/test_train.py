"""Tests for labkit/train.py on tiny synthetic problems (CPU)."""

import dataclasses
import math
import types
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labkit
from labkit.train import (
    History,
    TrainConfig,
    _logits,
    _to_device,
    evaluate,
    fit,
    load_checkpoint,
    train_one_epoch,
)

CFG = TrainConfig(epochs=4, lr=3e-2, progress=False, device="cpu")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # model initialisation happens before fit() seeds


def _seg_loaders(n=48, size=12, seed=0):
    """images (N,3,H,W) in [0,1] of 2x2 blocks; masks = channel 0 > 0.5, a 255 top row to ignore."""
    g = torch.Generator().manual_seed(seed)
    images = (
        torch.rand(n, 3, size // 2, size // 2, generator=g)
        .repeat_interleave(2, 2)
        .repeat_interleave(2, 3)
    )
    masks = (images[:, 0] > 0.5).long()
    masks[:, 0, :] = 255
    train = DataLoader(TensorDataset(images[:32], masks[:32]), batch_size=8, shuffle=True)
    val = DataLoader(TensorDataset(images[32:], masks[32:]), batch_size=8)
    return train, val


def _seg_model(stride=1):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, stride=stride), nn.ReLU(), nn.Conv2d(8, 2, 1)
    )


class DictOut(nn.Module):
    """Like torchvision FCN: returns {"out": logits}."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return {"out": self.net(x), "aux": None}


class HFOut(nn.Module):
    """Like Hugging Face SegFormer: an object with .logits at 1/2 resolution."""

    def __init__(self):
        super().__init__()
        self.net = _seg_model(stride=2)

    def forward(self, x):
        return types.SimpleNamespace(logits=self.net(x), loss=None)


def test_segmentation_fit_learns_and_checkpoints(tmp_path):
    train, val = _seg_loaders()
    model = _seg_model()
    cfg = CFG.replace(epochs=8, checkpoint_dir=str(tmp_path), monitor="miou")
    before = evaluate(model, val, task="segmentation", num_classes=2, device="cpu", progress=False)
    history = fit(model, train, val, config=cfg, task="segmentation", num_classes=2)
    assert len(history) == 8 and history["epoch"] == list(range(1, 9))
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_miou"][-1] > max(0.8, before["miou"] + 0.1)
    best = history.best("val_miou", "max")
    assert best["val_miou"] == max(history["val_miou"])

    fresh = _seg_model()
    meta = load_checkpoint(tmp_path / "best.pt", fresh)
    assert meta["labkit_version"] == labkit.__version__
    assert meta["config"] == dataclasses.asdict(cfg)
    assert meta["epoch"] == best["epoch"]
    assert meta["metrics"]["val_miou"] == pytest.approx(best["val_miou"])
    after = evaluate(fresh, val, task="segmentation", num_classes=2, device="cpu", progress=False)
    assert after["miou"] == pytest.approx(best["val_miou"])
    assert len(after["per_class_iou"]) == 2 and after["loss"] < before["loss"]


@pytest.mark.parametrize(
    "make", [lambda: DictOut(_seg_model()), HFOut], ids=["dict_out", "hf_lowres"]
)
def test_segmentation_output_kinds(make):
    train, val = _seg_loaders(seed=1)
    model = make()
    history = fit(model, train, val, config=CFG, task="segmentation")  # num_classes from the logits
    assert history["val_miou"][-1] > 0.6
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_logits_helper():
    x = torch.randn(1, 2, 3, 3)
    assert _logits(x) is x
    assert _logits({"out": x, "aux": None}) is x
    assert _logits(types.SimpleNamespace(logits=x)) is x
    assert _logits((x, None)) is x
    with pytest.raises(TypeError, match="logits"):
        _logits("nope")


def test_classification_fit_learns():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[3.0, 0], [-3, 0], [0, 3], [0, -3]])
    y = torch.randint(0, 4, (160,), generator=g)
    x = centers[y] + 0.5 * torch.randn(160, 2, generator=g)
    train = DataLoader(TensorDataset(x[:128], y[:128]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[128:], y[128:]), batch_size=16)
    history = fit(
        nn.Linear(2, 4), train, val, config=CFG.replace(monitor="top1"), task="classification"
    )
    assert history["val_top1"][-1] > 0.9  # chance is 0.25
    assert history["val_top5"][-1] == 1.0  # 4 classes: top-5 covers all
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_detection_one_epoch_runs():
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=128, max_size=128
    )
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10, 60, 60]]), "labels": torch.tensor([1])},
        {
            "boxes": torch.tensor([[20.0, 30, 100, 90], [5, 5, 30, 30]]),
            "labels": torch.tensor([2, 1]),
            "difficult": torch.tensor([False, True]),
        },
    ]
    loader = [(tuple(images), tuple(targets))]  # what collate_fn=lambda b: tuple(zip(*b)) yields
    history = fit(
        model,
        loader,
        loader,
        config=CFG.replace(epochs=1, lr=1e-3, monitor="map"),
        task="detection",
    )
    record = history.records[0]
    for key in (
        "train_loss",
        "train_loss_classifier",
        "train_loss_box_reg",
        "train_loss_objectness",
        "train_loss_rpn_box_reg",
        "val_map",
    ):
        assert key in record
    parts = sum(record[k] for k in record if k.startswith("train_loss_"))
    assert record["train_loss"] == pytest.approx(parts, rel=1e-4)
    assert 0.0 <= record["val_map"] <= 1.0
    out = evaluate(
        model, loader, task="detection", device="cpu", progress=False
    )  # num_classes read from model
    assert set(out) == {"map", "per_class_ap"} and len(out["per_class_ap"]) == 3


class NaNAt:
    """Cross-entropy that turns NaN from the given call on."""

    def __init__(self, at_call, exc=None):
        self.calls, self.at_call, self.exc = 0, at_call, exc

    def __call__(self, logits, targets):
        self.calls += 1
        loss = nn.functional.cross_entropy(logits, targets, ignore_index=255)
        if self.calls >= self.at_call:
            if self.exc is not None:
                raise self.exc
            return loss * math.nan
        return loss


def test_nan_loss_raises_and_keeps_history():
    train, _ = _seg_loaders()  # 4 batches per epoch
    history = History()
    with pytest.raises(FloatingPointError, match=r"epoch 2 step 1") as err:
        fit(_seg_model(), train, config=CFG, task="segmentation", loss_fn=NaNAt(6), history=history)
    assert err.value.history is history
    assert len(history) == 1 and history["epoch"] == [1] and math.isfinite(history["train_loss"][0])


def test_keyboard_interrupt_returns_history():
    train, _ = _seg_loaders()
    with pytest.warns(UserWarning, match="interrupted"):
        history = fit(
            _seg_model(),
            train,
            config=CFG,
            task="segmentation",
            loss_fn=NaNAt(9, KeyboardInterrupt()),
        )
    assert history["epoch"] == [1, 2]


def test_schedulers_epoch_and_batch():
    train, _ = _seg_loaders()
    model = _seg_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(
        model,
        train,
        config=CFG.replace(epochs=3),
        task="segmentation",
        optimizer=opt,
        scheduler=sched,
    )
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    fit(
        model,
        train,
        config=CFG.replace(epochs=1),
        task="segmentation",
        optimizer=opt,
        scheduler=sched,
        scheduler_step="batch",
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)  # 4 batches


def test_train_one_epoch_direct_and_grad_clip():
    train, _ = _seg_loaders()
    model = _seg_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: only gradients matter
    steps = []
    out = train_one_epoch(
        model,
        train,
        opt,
        task="segmentation",
        device="cpu",
        config=TrainConfig(grad_clip=1e-3, progress=False, log_every=2),
        steps=steps,
    )
    total = torch.norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert total <= 1e-3 + 1e-6
    assert set(out) == {"loss", "miou", "pixel_accuracy"}
    assert [s["step"] for s in steps] == [0, 2]


def test_monitor_missing_warns_and_saves(tmp_path):
    train, _ = _seg_loaders()
    cfg = CFG.replace(epochs=1, checkpoint_dir=str(tmp_path), monitor="nope")
    with pytest.warns(UserWarning, match="monitor 'nope'"):
        fit(_seg_model(), train, config=cfg, task="segmentation")
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_config_frozen_and_validated():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.lr, cfg.optimizer, cfg.amp, cfg.monitor, cfg.mode) == (
        10,
        1e-3,
        "adamw",
        True,
        "miou",
        "max",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    assert dataclasses.replace(cfg, lr=0.5).lr == 0.5 and cfg.replace(epochs=2).epochs == 2
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="best")
    with pytest.raises(ValueError, match="task"):
        fit(nn.Linear(1, 1), [], config=cfg, task="regression")


def test_history_roundtrip(tmp_path):
    h = History(
        [
            {"epoch": 1, "val_miou": 0.2, "train_loss": 1.0},
            {"epoch": 2, "val_miou": math.nan, "train_loss": 0.5},
            {"epoch": 3, "val_miou": 0.4, "train_loss": 0.7},
        ]
    )
    assert h["train_loss"] == [1.0, 0.5, 0.7]
    assert h.best("val_miou", "max")["epoch"] == 3  # NaN skipped
    assert h.best("train_loss", "min")["epoch"] == 2
    with pytest.raises(KeyError):
        h["nope"]
    h2 = History.from_json(h.to_json(tmp_path / "h.json"))
    assert h2["train_loss"] == h["train_loss"] and math.isnan(h2["val_miou"][1])
    assert History.from_json(tmp_path / "h.json").keys() == ["epoch", "val_miou", "train_loss"]


def test_to_device_nested():
    batch = ([torch.zeros(1)], ({"boxes": torch.zeros(1, 4), "name": "x"},))
    moved = _to_device(batch, torch.device("meta"))
    assert moved[0][0].device.type == "meta" and moved[1][0]["boxes"].device.type == "meta"
    assert moved[1][0]["name"] == "x" and isinstance(moved[1], tuple)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_amp_fit():
    train, val = _seg_loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = fit(
            _seg_model(),
            train,
            val,
            config=CFG.replace(device="cuda", amp=True),
            task="segmentation",
        )
    assert history["val_miou"][-1] > 0.8


def test_detection_with_num_classes_records_no_segmentation_metrics():
    """fit(task="detection", num_classes=K): per-component losses, and no NaN miou columns."""
    from labkit.models.detection import tiny_fasterrcnn

    torch.manual_seed(0)
    model = tiny_fasterrcnn(num_classes=3, image_size=64)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 4, 40, 40]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[10.0, 20, 50, 60]]), "labels": torch.tensor([2])}]
    loader = [(images, targets)]
    history = fit(model, loader, loader, config=CFG.replace(epochs=1, lr=1e-3),
                  task="detection", num_classes=3)
    record = history.records[0]
    assert "train_loss_objectness" in record and "val_map" in record
    assert not any("miou" in k or "pixel_accuracy" in k for k in record), record
