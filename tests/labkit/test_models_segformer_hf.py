"""labkit.models.segformer_hf: Hugging Face SegFormer with full-size logits, local checkpoints."""

import pytest
import torch
import torch.nn.functional as F
from transformers import SegformerForSemanticSegmentation

from labkit import weights as W
from labkit.models import segformer_hf as sh
from labkit.models.segformer import get_config, to_hf_config

TINY = get_config("b0").replace(name="tiny", hidden_sizes=(8, 16, 24, 32), depths=(1, 1, 1, 1),
                                heads=(1, 1, 2, 2), decoder_dim=16)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    return tmp_path


@pytest.mark.parametrize("variant", ["b0", TINY])
def test_same_weights_same_outputs_as_hugging_face(variant):
    torch.manual_seed(0)
    ours = sh.segformer(variant=variant, num_classes=3).eval()
    ref = SegformerForSemanticSegmentation(to_hf_config(variant, num_labels=3)).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = ours(x)
        low = ref(pixel_values=x).logits  # (B,K,H/4,W/4)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 64, 96)
    torch.testing.assert_close(out, F.interpolate(low, size=(64, 96), mode="bilinear",
                                                  align_corners=False))
    assert ours.encoder is ours.segformer and ours.head is ours.decode_head


def test_cityscapes_checkpoint_loads_like_from_pretrained(offline):
    folder = W.save_random_weights("segformer_b0_cityscapes", seed=7)
    ref = SegformerForSemanticSegmentation.from_pretrained(str(folder))  # HF's own key mapping
    model = sh.segformer(num_classes=19, weights="cityscapes")
    assert model.load_report["matched"] and not model.load_report["missing"]
    for key, value in ref.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    pets = sh.segformer(num_classes=3, weights="cityscapes")
    assert sorted(pets.load_report["missing"]) == ["decode_head.classifier.bias",
                                                   "decode_head.classifier.weight"]
    assert torch.equal(pets.decode_head.linear_fuse.weight, ref.decode_head.linear_fuse.weight)


def test_imagenet_checkpoint_sets_the_encoder_only(offline):
    folder = W.save_random_weights("mit_b0_imagenet", seed=3)
    ref = SegformerForSemanticSegmentation.from_pretrained(str(folder))
    torch.manual_seed(0)
    model = sh.segformer(num_classes=3, weights="imagenet")
    for key, value in ref.segformer.state_dict().items():
        assert torch.equal(model.segformer.state_dict()[key], value), key
    assert all(k.startswith("decode_head.") for k in model.load_report["missing"])
    state = sh.pretrained_state("imagenet")
    assert state and all(k.startswith("segformer.") for k in state)


def test_missing_checkpoint_offline_says_what_to_do(offline):
    with pytest.raises(W.WeightsNotFoundError, match="segformer_b0_cityscapes"):
        sh.segformer(num_classes=3, weights="cityscapes")
    with pytest.raises(ValueError, match="no 'imagenet' checkpoint for SegFormer-b5"):
        sh.segformer(variant="b5", num_classes=3, weights="imagenet")
