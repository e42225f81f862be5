"""labkit.models.fcn: torchvision's FCN-ResNet50 with logits out, local checkpoints, clear errors."""

import pytest
import torch
from torchvision.models.segmentation import fcn_resnet50 as tv_fcn_resnet50

from labkit import weights as W
from labkit.models import fcn


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    return tmp_path


def test_same_weights_same_outputs_as_torchvision():
    torch.manual_seed(0)
    ours = fcn.fcn_resnet50(num_classes=3).eval()
    ref = tv_fcn_resnet50(weights=None, weights_backbone=None, num_classes=3,
                          aux_loss=False).eval()
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        out = ours(x)
        expected = ref(x)["out"]
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 40, 56)
    torch.testing.assert_close(out, expected)
    assert ours.encoder is ours.backbone and ours.head is ours.classifier
    assert ours.aux_classifier is None and ours.load_report is None


def test_imagenet_backbone_is_the_saved_checkpoint(offline):
    W.save_random_weights("resnet50_imagenet", seed=5)
    saved = torch.load(offline / "resnet50_imagenet.pth", weights_only=True)
    model = fcn.fcn_resnet50(num_classes=3, weights="imagenet")
    own = model.state_dict()
    for key, value in saved.items():
        if not key.startswith("fc."):
            assert torch.equal(own[f"backbone.{key}"], value), key
    report = model.load_report
    assert sorted(report["unexpected"]) == ["backbone.fc.bias", "backbone.fc.weight"]
    assert report["missing"] and all(k.startswith("classifier.") for k in report["missing"])
    assert not report["mismatched"]


def test_coco_checkpoint_keeps_the_head_only_when_classes_match(offline):
    W.save_random_weights("fcn_resnet50_coco", seed=2)
    saved = torch.load(offline / "fcn_resnet50_coco.pth", weights_only=True)
    same = fcn.fcn_resnet50(num_classes=21, weights="coco")
    for key, value in same.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert all(k.startswith("aux_classifier.") for k in same.load_report["unexpected"])
    three = fcn.fcn_resnet50(num_classes=3, weights="coco")
    assert [m.split(":")[0] for m in three.load_report["mismatched"]] == [
        "classifier.4.weight", "classifier.4.bias"]
    assert torch.equal(three.classifier[0].weight, saved["classifier.0.weight"])
    assert three.classifier[4].weight.shape == (3, 512, 1, 1)


def test_missing_checkpoint_offline_says_what_to_do(offline):
    with pytest.raises(W.WeightsNotFoundError, match="resnet50_imagenet.pth"):
        fcn.fcn_resnet50(num_classes=3, weights="imagenet")
    with pytest.raises(ValueError, match="'imagenet' or 'coco'"):
        fcn.fcn_resnet50(num_classes=3, weights="cityscapes")
