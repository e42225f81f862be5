"""Lab 05 (robustness to input modalities, video): lab-specific checks.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import numpy as np
import pytest
import torch

from autograder import notebook as nbmod
from autograder.grade import load_references
from autograder.labs import get_lab
from labkit.checking.program import build_program

LAB = get_lab("lab05")
REFERENCE = LAB.master_path.parent / "reference_results.json"


def call_id(number: str, i: int = 0) -> str:
    """The id of the ``i``-th call of check ``number``."""
    return next(c for c in LAB.checks if c.number == number).calls[i].id


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab05")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ("luma.expand_as(images).clone()", "(ref - miou(values)) / ref",
                   "metric.update(logits.argmax(dim=1).cpu(), masks.cpu())"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


def _solution_namespace():
    """The solution's exercises, run as the grader runs them: the statements they need and the
    imports those use (no data loading, no training)."""
    program = build_program(nbmod.make_solution(nbmod.read_notebook(LAB.master_path)))
    ns: dict = {}
    for st in program.with_imports(program.needed([e.name for e in LAB.exercises])):
        exec(compile(st.padded(), "<lab05>", "exec"), ns)
    return ns


def test_references_match_labkit_and_torchmetrics(assigned):
    """The reference outputs the grader compares with are labkit's transform (to_modality) and an
    independent IoU (torchmetrics) of the same predictions (evaluate_modalities)."""
    from torchmetrics.classification import MulticlassJaccardIndex

    from labkit.data import to_modality

    refs = load_references(assigned("lab05")["references"])
    calls = {c.id: c for c in LAB.make_calls()}
    for cid, call in calls.items():
        if call.probe == "modality" and refs[cid].ok:  # (the others raise ValueError)
            want = to_modality(torch.from_numpy(call.arrays["images"]), call.params["modality"])
            np.testing.assert_allclose(refs[cid].arrays["out"], want.numpy(), rtol=1e-6,
                                       atol=1e-7)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for cid in (call_id("2.1"), call_id("2.2")):
        call = calls[cid]
        conv = torch.nn.Conv2d(3, call.params["num_classes"], 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(call.arrays["weight"]))
            conv.bias.copy_(torch.from_numpy(call.arrays["bias"]))
        images = torch.from_numpy(call.arrays["images"])
        targets = torch.from_numpy(call.arrays["masks"])
        for m in call.params["modalities"]:
            with torch.no_grad():
                preds = conv((to_modality(images, m) - mean) / std).argmax(1)
            jac = MulticlassJaccardIndex(num_classes=call.params["num_classes"], average="none",
                                         ignore_index=255)
            want = jac(preds, targets).numpy()
            got = refs[cid].arrays[f"out.{m}"]
            present = ~np.isnan(got)  # torchmetrics gives 0 where ours is NaN (absent class)
            np.testing.assert_allclose(got[present], want[present], rtol=1e-5, atol=1e-6)
            assert (want[~present] == 0).all()


def test_relative_degradation_reference_by_hand(assigned):
    refs = load_references(assigned("lab05")["references"])
    def by_key(number):  # the returned dict's values, by key
        v = refs[call_id(number)].values
        return {key: v[f"out.{key}"] for key in v["out.order"]}

    v = by_key("3.1")
    # mIoU rgb 0.6, grayscale 0.5, inverted 0.2
    assert v["rgb"] == 0.0
    assert v["grayscale"] == pytest.approx(1 / 6)
    assert v["inverted_grayscale"] == pytest.approx(2 / 3)
    nan = by_key("3.2")  # rgb mIoU 0.4 over 3 classes; grayscale 0.8 / 3
    assert nan["grayscale"] == pytest.approx((0.4 - 0.8 / 3) / 0.4)
    assert np.isnan(nan["inverted_grayscale"])
    assert all(np.isnan(x) for x in by_key("3.3").values())


def test_solution_evaluate_modalities_matches_torchmetrics_on_a_zoo_model(tmp_path):
    """The notebook's evaluate_modalities on a (miniature, random-weight) zoo model and the fake
    Cityscapes fixture against torchmetrics on the same predictions."""
    from torchmetrics.classification import MulticlassJaccardIndex

    import labkit as lk
    from labkit.models.cityscapes import cityscapes_segmenter, save_random_segmenter

    ns = _solution_namespace()
    save_random_segmenter("segformer_b0", tmp_path / "w", tiny=True)
    model = cityscapes_segmenter("segformer_b0", root=tmp_path / "w")
    lk.data.write_fake_cityscapes(tmp_path / "cs", n=2, size=(32, 64))
    data = lk.data.CityscapesSegmentation(tmp_path / "cs")
    loader = [(torch.stack([data[i][0] for i in range(2)]),
               torch.stack([data[i][1] for i in range(2)]))]
    table = ns["evaluate_modalities"](model, loader, ["rgb", "inverted_grayscale"])
    mean = torch.tensor(lk.data.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(lk.data.IMAGENET_STD).view(1, 3, 1, 1)
    for m, iou in table.items():
        with torch.no_grad():
            preds = model((lk.data.to_modality(loader[0][0], m) - mean) / std).argmax(1)
        want = MulticlassJaccardIndex(num_classes=19, average="none", ignore_index=255)(
            preds, loader[0][1]).numpy()
        got = np.asarray(iou, dtype=np.float64)
        present = ~np.isnan(got)
        np.testing.assert_allclose(got[present], want[present], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("old, new, section", [
    # luma weights of another standard (BT.709) in to_modality
    ("torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype",
     "torch.tensor([0.2126, 0.7152, 0.0722], dtype=images.dtype", "1"),
    # normalising before the modality transform
    ("x = (to_modality(images.to(dev).float(), modality) - m) / s",
     "x = to_modality((images.to(dev).float() - m) / s, modality)", "2"),
    # degradation as an absolute difference
    ("out[modality] = (ref - miou(values)) / ref", "out[modality] = ref - miou(values)", "3"),
])
def test_a_wrong_exercise_loses_only_its_checks(grade_mutant, old, new, section):
    results, lost = grade_mutant("lab05", old, new)
    assert lost == {section}, [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_notebook_uses_labkit_for_the_infrastructure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    text = "\n".join(c.source for c in master.cells)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "cityscapes_segmenter", "save_random_segmenter", "lk.video.segment_frames",
                   "lk.video.write_segmentation_video", "lk.video.label_flicker",
                   "lk.video.frame_slider", "lk.video.show_frames", "plot_per_class_iou",
                   "alpha=0.7", 'mode="mask"', "lk.fit"):
        assert needed in text, needed


def test_reference_results_name_their_data():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    for key in ("mIoU: segformer_b0: rgb", "mIoU: maskformer_r101: inverted_grayscale",
                "relative degradation: segformer_b5: grayscale", "video flicker: segformer_b0",
                "mIoU after inverted fine-tune: inverted_grayscale"):
        assert key in results, key
    for entry in results.values():
        setting = entry["setting"]
        assert "frankfurt_000000_000294" in setting and "RANDOM weights" in setting, setting
