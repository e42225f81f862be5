"""Throughput of labkit SegmentationMetric.update vs torchmetrics MulticlassJaccardIndex.update.

Same 19-class 4x512x1024 batches (Cityscapes-sized labels, ~5% pixels = 255) for both; warm-up,
then several timed repeats; prints hardware, Mpixel/s of each, the ratio labkit/torchmetrics and
the mIoU each one computes (they must agree). Target: ratio >= 1.0 on CPU.

    python benchmarks/bench_metrics.py [--batches N] [--repeats R] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchmetrics
from torchmetrics.classification import MulticlassJaccardIndex

import labkit
from labkit.metrics import SegmentationMetric
from labkit.utils import cpu_model

NUM_CLASSES = 19
SHAPE = (4, 512, 1024)


def make_batches(
    n: int, device: torch.device, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        targets = torch.randint(0, NUM_CLASSES, SHAPE, generator=g)
        agree = torch.rand(SHAPE, generator=g) < 0.7
        preds = torch.where(agree, targets, torch.randint(0, NUM_CLASSES, SHAPE, generator=g))
        targets[torch.rand(SHAPE, generator=g) < 0.05] = 255
        batches.append((preds.to(device), targets.to(device)))
    return batches


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_updates(metric, batches, device: torch.device, repeats: int) -> list[float]:
    """Seconds per pass over ``batches`` (one reset + one update per batch), for each repeat."""
    times = []
    for _ in range(repeats):
        metric.reset()
        sync(device)
        t0 = time.perf_counter()
        for preds, targets in batches:
            metric.update(preds, targets)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    device = torch.device(args.device)

    print("# bench_metrics: segmentation confusion-matrix update throughput")
    print(
        f"# cpu: {cpu_model()} | threads: {torch.get_num_threads()} | python {platform.python_version()}"
    )
    print(
        f"# torch {torch.__version__} | torchmetrics {torchmetrics.__version__} | labkit {labkit.__version__}"
    )
    if device.type == "cuda":
        print(f"# gpu: {torch.cuda.get_device_name(device)}")
    print(
        f"# device {device} | {args.batches} batches of {SHAPE} int64 labels, {NUM_CLASSES} classes, "
        f"ignore_index 255 | warm-up 1 batch, {args.repeats} interleaved timed passes (median)"
    )

    batches = make_batches(args.batches, device)
    pixels = args.batches * SHAPE[0] * SHAPE[1] * SHAPE[2]
    contenders = {
        "labkit SegmentationMetric": SegmentationMetric(
            NUM_CLASSES, ignore_index=255, device=device
        ),
        "torchmetrics MulticlassJaccardIndex": MulticlassJaccardIndex(
            NUM_CLASSES, ignore_index=255
        ).to(device),
        "torchmetrics (validate_args=False)": MulticlassJaccardIndex(
            NUM_CLASSES, ignore_index=255, validate_args=False
        ).to(device),
    }
    for metric in contenders.values():
        time_updates(metric, batches[:1], device, 1)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):  # interleaved, so load changes hit every contender alike
        for name, metric in contenders.items():
            times[name] += time_updates(metric, batches, device, 1)
    results = {}
    for name, metric in contenders.items():
        median = statistics.median(times[name])
        miou = (
            metric.compute().miou
            if isinstance(metric, SegmentationMetric)
            else float(metric.compute())
        )
        results[name] = (pixels / median / 1e6, median / args.batches * 1e3, miou)

    print(f"{'metric':38s} {'Mpixel/s':>10s} {'ms/batch':>10s} {'mIoU':>10s}")
    for name, (mpix, ms, miou) in results.items():
        print(f"{name:38s} {mpix:10.1f} {ms:10.2f} {miou:10.6f}")
    ours = results["labkit SegmentationMetric"]
    ref = results["torchmetrics MulticlassJaccardIndex"]
    ref_fast = results["torchmetrics (validate_args=False)"]
    print(
        f"ratio labkit/torchmetrics: {ours[0] / ref[0]:.2f}x (default) | "
        f"{ours[0] / ref_fast[0]:.2f}x (validate_args=False) | target >= 1.0"
    )
    same = abs(ours[2] - ref[2]) < 1e-6 and abs(ours[2] - ref_fast[2]) < 1e-6
    print(f"same mIoU: {same} (labkit {ours[2]:.6f}, torchmetrics {ref[2]:.6f})")
    if not same:
        raise SystemExit("mIoU mismatch between labkit and torchmetrics")


if __name__ == "__main__":
    main()
