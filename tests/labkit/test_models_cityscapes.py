"""labkit.models.cityscapes: the zoo builders against the Hugging Face models they wrap."""

import pytest
import torch
import torch.nn.functional as F

from labkit import weights as lkw
from labkit.models import cityscapes as cs

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    for name in cs.SEGMENTERS:
        cs.save_random_segmenter(name, folder, tiny=True, seed=1)
    return folder


def _images(b=2, h=64, w=96, seed=0):
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["segformer_b0", "segformer_b5"])
def test_segformer_logits_match_hugging_face(root, name):
    from transformers import SegformerForSemanticSegmentation

    model = cs.cityscapes_segmenter(name, root=root)
    hf = SegformerForSemanticSegmentation.from_pretrained(
        str(lkw.local_path(cs.SEGMENTERS[name].checkpoint, root))).eval()
    x = _images(h=64, w=96)
    with torch.no_grad():
        ours = model(x)
        ref = F.interpolate(hf(pixel_values=x).logits, size=(64, 96), mode="bilinear",
                            align_corners=False)
    assert ours.shape == (2, 19, 64, 96)
    torch.testing.assert_close(ours, ref)
    assert not model.training


def test_maskformer_argmax_matches_hf_semantic_post_processing(root):
    from transformers import MaskFormerForInstanceSegmentation, MaskFormerImageProcessor

    model = cs.cityscapes_segmenter("maskformer_r101", root=root)
    hf = MaskFormerForInstanceSegmentation.from_pretrained(
        str(lkw.local_path("maskformer_r101_cityscapes", root))).eval()
    x = _images(h=64, w=96, seed=3)
    with torch.no_grad():
        ours = model(x)
        out = hf(pixel_values=x)
    ref = MaskFormerImageProcessor().post_process_semantic_segmentation(
        out, target_sizes=[(64, 96)] * 2)
    assert ours.shape == (2, 19, 64, 96) and torch.isfinite(ours).all()
    agree = (ours.argmax(1) == torch.stack(ref)).float().mean()
    assert agree > 0.99, f"argmax agrees with HF on {agree:.3f} of the pixels"


def test_random_weights_differ_from_the_checkpoint(root):
    loaded = cs.cityscapes_segmenter("segformer_b0", root=root)
    other_seed = root / "other"
    cs.save_random_segmenter("segformer_b0", other_seed, tiny=True, seed=2)
    other = cs.cityscapes_segmenter("segformer_b0", root=other_seed)
    x = _images()
    with torch.no_grad():
        assert not torch.allclose(loaded(x), other(x))


def test_full_size_architectures_follow_the_papers():
    b0 = lkw.hf_config("segformer_b0_cityscapes")
    assert list(b0.depths) == [2, 2, 2, 2] and list(b0.hidden_sizes) == [32, 64, 160, 256]
    b5 = lkw.hf_config("segformer_b5_cityscapes")
    assert list(b5.depths) == [3, 6, 40, 3] and list(b5.hidden_sizes) == [64, 128, 320, 512]
    mf = cs._maskformer_config_r101_cityscapes()
    assert list(mf.backbone_config.depths) == [3, 4, 23, 3]  # ResNet-101
    assert mf.num_labels == 19 and mf.id2label[9] == "terrain"
    entry = lkw.CATALOG["maskformer_r101_cityscapes"]
    assert entry.ref == "facebook/maskformer-resnet101-cityscapes" and entry.source == "hf"


def test_pretrained_false_builds_random_full_model():
    model = cs.segformer_b0_cityscapes(pretrained=False)
    n = sum(p.numel() for p in model.parameters())
    assert 3.5e6 < n < 4.0e6, n  # SegFormer-B0 has 3.7 M parameters
    with torch.no_grad():
        assert model(_images(1, 33, 47)).shape == (1, 19, 33, 47)


def test_missing_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(lkw.WeightsNotFoundError, match="maskformer_r101_cityscapes"):
        cs.maskformer_r101_cityscapes(root=tmp_path, download=False)


def test_bad_inputs_raise_clear_errors(root):
    with pytest.raises(KeyError, match="known"):
        cs.cityscapes_segmenter("deeplab", root=root)
    model = cs.cityscapes_segmenter("segformer_b0", root=root)
    with pytest.raises(ValueError, match=r"\(B,3,H,W\)"):
        model(torch.randn(1, 1, 32, 32))


def _real_cityscapes():
    import os
    from pathlib import Path

    folder = Path(os.environ.get("LABKIT_REAL_DATA", "/nonexistent"))
    folder = folder / "cityscapes_downscaled_mmseg_fixture"
    if not (folder / "gtFine" / "val").is_dir():
        pytest.skip("the real Cityscapes sample is not available")
    return folder


@pytest.mark.parametrize("fixture", ["real", "fake"])
def test_zoo_runs_on_cityscapes_frames(root, tmp_path, fixture):
    """Every zoo model on the real downscaled val frame (and the fake fixture): logits at the
    input size; labkit's per-class IoU of their predictions matches torchmetrics."""
    from torchmetrics.classification import MulticlassJaccardIndex

    import labkit as lk

    if fixture == "real":
        folder = _real_cityscapes()
    else:
        folder = lk.data.write_fake_cityscapes(tmp_path / "cs", n=2, size=(64, 128))
    tf = lk.data.segmentation_transforms()  # ToTensor + ImageNet Normalize
    data = lk.data.CityscapesSegmentation(folder, split="val", transforms=tf)
    images = torch.stack([data[i][0] for i in range(len(data))])
    masks = torch.stack([data[i][1] for i in range(len(data))])
    for name in cs.SEGMENTERS:
        model = cs.cityscapes_segmenter(name, root=root)
        with torch.no_grad():
            logits = model(images)
        assert logits.shape == (len(data), 19, *images.shape[-2:]) and torch.isfinite(logits).all()
        preds = logits.argmax(1)
        metric = lk.metrics.SegmentationMetric(19)
        metric.update(preds, masks)
        ours = metric.compute().per_class_iou
        ref = MulticlassJaccardIndex(num_classes=19, average="none", ignore_index=255)(preds, masks)
        present = ~torch.isnan(ours)
        torch.testing.assert_close(ours[present].float(), ref[present].float())
