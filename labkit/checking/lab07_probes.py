"""Lab 07's own probes (raw outputs only): build_detector reading stand-in checkpoints (nothing
downloads); set_backbone_trainable on a detector whose parameters start with random flags."""

import os
import tempfile
from unittest import mock

import torch

import labkit.weights as weights
from labkit.checking.probe_utils import flatten, number_out, requires_grad, tensor_out
from labkit.models import detection


def build(ns, inputs, num_classes, backbone_init, losses=False, **kwargs):
    """build_detector(...) on stand-in checkpoints: the i-th tensor read is i + 0.25 everywhere."""
    read, served = [], []

    def stand_in(path):  # replaces weights._read: real keys and shapes, nothing on disk
        read.append(path.name.removesuffix(".pth"))
        with torch.device("meta"):
            state = weights.build_random(read[-1]).state_dict()
        served.extend(state)
        return {k: torch.full(v.shape, len(served) - len(state) + i + 0.25, dtype=v.dtype)
                for i, (k, v) in enumerate(state.items())}

    with tempfile.TemporaryDirectory() as root, mock.patch.object(weights, "_read", stand_in), \
            mock.patch.dict(os.environ, {weights.WEIGHTS_ENV: root, weights.OFFLINE_ENV: "1"}):
        for name in detection.PRETRAINED[kwargs.get("arch", "resnet50_fpn")].values():
            weights.local_path(name).write_bytes(b"")  # placeholders: load_state_dict reads them
        torch.manual_seed(0)
        model, report = ns["build_detector"](num_classes, backbone_init, **kwargs)
    state = {k: tensor_out(v, k) for k, v in model.state_dict().items()}
    fill = {k: float(v.max()) for k, v in state.items() if v.size and v.min() == v.max()}
    box = model.roi_heads.box_predictor
    out = {"read": sorted(set(read)), "report": sorted(map(str, report)),
           "keys": sorted(f"{k}:{list(v.shape)}" for k, v in state.items()),
           "copied": sorted(f"{k} <- {served[int(v)]}" for k, v in fill.items()  # equal to one
                            if v % 1 == 0.25 and 0 < v < len(served)),
           "sizes": [box.cls_score.out_features, box.bbox_pred.out_features,
                     list(model.transform.min_size), model.transform.max_size],
           **{k: sorted(map(str, report.get(k, []))) for k in ("matched", "skipped")}}
    if losses:  # one training step's losses, one eval forward's keys
        images = list(torch.rand(1, 3, 48, 64))
        step = model.train()(images, [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]),
                                       "labels": torch.tensor([1])}])
        flatten(torch.stack(list(step.values())), "losses", out)
        with torch.no_grad():
            out.update(loss_keys=sorted(step), detection=sorted(model.eval()(images)[0]))
    return out


def freeze(ns, inputs, model, trainable, **kwargs):
    """set_backbone_trainable(net, ...), net's flags random: its count, the flags after it."""
    torch.manual_seed(0)
    net = detection.tiny_fasterrcnn(num_classes=4) if model == "tiny" else \
        detection.fasterrcnn(arch=model, num_classes=5)
    for p in net.parameters():
        p.requires_grad_(bool(torch.rand(()) < 0.5))
    count = number_out(ns["set_backbone_trainable"](net, trainable, **kwargs), "its count")
    return {"count": count, "trainable": [n for n, p in net.named_parameters() if requires_grad(p)]}
