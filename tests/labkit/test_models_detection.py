"""labkit.models.detection: builders match torchvision's keys, the tiny detector learns, loss curves."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision.models.detection import (  # noqa: E402
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn,
)
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

from labkit import weights as W  # noqa: E402
from labkit.data import ShapesDetection, detection_collate  # noqa: E402
from labkit.models import detection as det  # noqa: E402
from labkit.train import History  # noqa: E402

_NBT = "num_batches_tracked"


def _keys(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_resnet50_fpn_has_torchvisions_keys():
    ours = _keys(det.fasterrcnn(num_classes=21))
    theirs = _keys(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=21))
    assert ours == theirs
    frozen = det.fasterrcnn(num_classes=21, frozen_bn=True)
    assert _keys(frozen) == {k: v for k, v in theirs.items() if not k.endswith(_NBT)}
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.backbone.body.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.modules())
    assert all(p.requires_grad for p in frozen.parameters())  # every layer trainable


def test_mobilenet_fpn_has_torchvisions_keys_and_sizes():
    model = det.fasterrcnn(arch="mobilenet_v3_fpn", num_classes=5, min_size=64, max_size=96)
    theirs = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=5)
    assert _keys(model) == _keys(theirs)
    assert model.transform.min_size == (64,) and model.transform.max_size == 96
    assert model.rpn.score_thresh == theirs.rpn.score_thresh
    assert model.roi_heads.box_predictor.cls_score.out_features == 5


def test_coco_checkpoints_cover_the_whole_backbone():
    """"coco" transfer: every backbone (+FPN) tensor of the detector exists in the checkpoint."""
    for arch in det.ARCHS:
        model = _keys(det.fasterrcnn(arch=arch, num_classes=21, frozen_bn=True))
        ckpt = _keys(W.build_random(det.PRETRAINED[arch]["coco"]))
        backbone = {k: v for k, v in model.items() if k.startswith("backbone.")}
        assert backbone and all(ckpt.get(k) == v for k, v in backbone.items()), arch
        assert {k for k in ckpt if k.startswith("backbone.") and not k.endswith(_NBT)} == \
            set(backbone)


@pytest.mark.parametrize("arch, prefix", [("resnet50_fpn", ""),
                                          ("mobilenet_v3_fpn", "features.")])
def test_imagenet_checkpoints_cover_the_body(arch, prefix):
    model = _keys(det.fasterrcnn(arch=arch, num_classes=21, frozen_bn=True))
    ckpt = _keys(W.build_random(det.PRETRAINED[arch]["imagenet"]))
    body = {k[len("backbone.body."):]: v for k, v in model.items()
            if k.startswith("backbone.body.")}
    assert all(ckpt.get(prefix + k) == v for k, v in body.items())


def test_pretrained_names_are_catalogued():
    for arch in det.ARCHS:
        assert set(det.PRETRAINED[arch]) == {"imagenet", "coco"}
        assert all(name in W.CATALOG for name in det.PRETRAINED[arch].values())


def test_bad_arguments():
    with pytest.raises(ValueError, match="arch must be one of"):
        det.fasterrcnn(arch="vgg16", num_classes=21)
    with pytest.raises(ValueError, match="background"):
        det.fasterrcnn(num_classes=1)
    with pytest.raises(ValueError, match="background"):
        det.tiny_fasterrcnn(num_classes=1)


def test_tiny_detector_structure_and_outputs():
    torch.manual_seed(0)
    model = det.tiny_fasterrcnn(num_classes=4, image_size=64)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert hasattr(model.backbone, "body") and hasattr(model.backbone, "fpn")
    images, targets = detection_collate([ShapesDetection(2, size=64, seed=0)[i] for i in range(2)])
    model.train()
    losses = model(images, targets)
    assert set(losses) == set(det.RPN_LOSSES + det.ROI_LOSSES)
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}
    assert len(out[0]["boxes"]) <= 20


def test_tiny_detector_learns_shapes():
    """A dozen Adam steps on 16 scenes cut the training loss clearly."""
    torch.manual_seed(0)
    model = det.tiny_fasterrcnn(num_classes=4, image_size=64)
    loader = DataLoader(ShapesDetection(16, size=64, seed=0), batch_size=8, shuffle=True,
                        collate_fn=detection_collate, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    per_epoch = []
    for _ in range(6):
        total = 0.0
        for images, targets in loader:
            loss = sum(model(images, targets).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        per_epoch.append(total / len(loader))
    assert per_epoch[-1] < 0.7 * per_epoch[0], per_epoch


def test_collect_predictions_limit_and_cpu():
    model = det.tiny_fasterrcnn(num_classes=4, image_size=64)
    loader = DataLoader(ShapesDetection(5, size=64, seed=1), batch_size=2,
                        collate_fn=detection_collate)
    preds, targets, images = det.collect_predictions(model, loader, limit=3)
    assert len(preds) == len(targets) == len(images) == 3
    assert preds[0]["boxes"].device.type == "cpu" and images[0].shape == (3, 64, 64)
    assert not model.training


def test_loss_curves_and_plot():
    h = History([{"epoch": e, "train_loss_objectness": 1.0 / e, "train_loss_rpn_box_reg": 0.5,
                  "train_loss_classifier": 2.0 / e, "train_loss_box_reg": 0.25}
                 for e in (1, 2)])
    curves = det.loss_curves(h)
    assert curves["rpn"] == [1.5, 1.0] and curves["roi"] == [2.25, 1.25]
    assert curves["loss_objectness"] == [1.0, 0.5]
    fig = det.plot_loss_curves({"a": h, "b": h})
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    with pytest.raises(KeyError, match="task='detection'"):
        det.loss_curves(History([{"epoch": 1, "train_loss": 1.0}]))
