"""Lab 07 (Faster R-CNN backbone transfer on VOC; tiny detector on shapes): lab-specific checks.

What every lab must satisfy is in tests/autograder/test_every_lab.py; the master notebook itself
runs under nbval (``labs/`` is a pytest test path).
"""

import json

import nbformat
import pytest

from autograder import notebook as nbmod
from autograder.labs import get_lab
from labkit.checking.program import build_program

LAB = get_lab("lab07")
REFERENCE = LAB.master_path.parent / "reference_results.json"


def test_student_copy_has_no_solution_lines(assigned):
    student = nbformat.read(assigned("lab07")["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for leaked in ('target = key if key.startswith("backbone.") else None',
                   "p.requires_grad_(trainable)", "lr * factor * gamma**e"):
        assert leaked not in text, f"solution text {leaked!r} leaked into the student copy"


@pytest.mark.parametrize("old, new, section", [
    # "coco" copies every tensor of matching name and shape, RPN and RoI heads included
    ('target = key if key.startswith("backbone.") else None', "target = key", "1"),
    # the FPN flag ignored: the whole backbone always flips
    ("parts = [model.backbone.body] + ([model.backbone.fpn] if fpn else [])",
     "parts = [model.backbone]", "2"),
    # the decay restarts at unfreezing instead of running from the first epoch
    ("plan.append((float(lr * factor * gamma**e), not frozen))",
     "plan.append((float(lr * factor * gamma**(e if frozen else e - frozen_epochs)), not frozen))",
     "3"),
])
def test_a_wrong_exercise_loses_only_its_checks(grade_mutant, old, new, section):
    results, lost = grade_mutant("lab07", old, new)
    assert lost == {section}, [(t["number"], t["output"]) for t in results["tests"]
                               if t["score"] < t["max_score"]]


def test_notebook_uses_labkit_for_the_infrastructure():
    master = nbmod.read_notebook(LAB.master_path)
    assert "Learning goals" in master.cells[0].source
    text = "\n".join(c.source for c in master.cells)
    for needed in ("lk.report.compare_with_reference", "lk.report.save_results",
                   "lk.data.VOCDetection", "lk.data.write_fake_voc",
                   "lk.weights.save_random_weights", "lk.weights.load_state_dict",
                   "det.fasterrcnn", "det.tiny_fasterrcnn", "det.plot_loss_curves",
                   "lk.metrics.DetectionAP", "lk.metrics.DetectionMatchMetric",
                   "lk.viz.draw_detections", "lk.viz.plot_grouped_bars", 'task="detection"'):
        assert needed in text, needed


def test_reference_results_name_their_data():
    if not REFERENCE.exists():
        pytest.skip("reference_results.json not measured yet")
    results = json.loads(REFERENCE.read_text())["results"]
    for key in ("shapes AP@0.5 (tiny Faster R-CNN)", "shapes accuracy", "shapes mIoU",
                "VOC test mAP: coco", "VOC test mAP: imagenet", "VOC test mAP: random"):
        assert key in results, key
    assert results["shapes AP@0.5 (tiny Faster R-CNN)"]["value"] > 0.5  # it really learns
    for entry in results.values():
        setting = entry["setting"]
        assert "synthetic scenes" in setting, setting
        assert "stand-in" in setting or "pretrained checkpoints" in setting, setting


# ----------------------------------------------------------------------------- the solution itself,
# on checkpoint files written in the real format (the grader serves them from memory instead)


@pytest.fixture(scope="module")
def solution():
    """The solution's exercises, run as the grader runs them: the statements they need and the
    imports those use (no data loading, no training)."""
    program = build_program(nbmod.make_solution(nbmod.read_notebook(LAB.master_path)))
    ns: dict = {}
    for st in program.with_imports(program.needed([e.name for e in LAB.exercises])):
        exec(compile(st.padded(), "<lab07>", "exec"), ns)
    return ns


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    return tmp_path


def test_coco_init_copies_exactly_backbone_and_fpn(solution, weights_dir):
    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from labkit import weights
    from labkit.models import detection as det

    weights.save_random_weights("maskrcnn_resnet50_fpn_coco", weights_dir, seed=1)
    ckpt = weights.load_state_dict("maskrcnn_resnet50_fpn_coco")
    torch.manual_seed(0)
    model, report = solution["build_detector"](21, "coco")
    torch.manual_seed(0)
    fresh = det.fasterrcnn(num_classes=21, frozen_bn=True).state_dict()
    own = model.state_dict()
    tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=21)
    assert set(own) == {k for k in tv.state_dict() if not k.endswith("num_batches_tracked")}
    backbone = sorted(k for k in own if k.startswith("backbone."))
    assert any(".fpn." in k for k in backbone) and any(".body." in k for k in backbone)
    for key, value in own.items():
        source = ckpt if key.startswith("backbone.") else fresh  # heads: as initialised
        assert torch.equal(value, source[key]), key
    assert report["matched"] == backbone
    assert report["skipped"] == sorted(set(ckpt) - set(backbone))
    assert any(k.startswith("roi_heads.mask_head.") for k in report["skipped"])
    assert any(k.startswith("rpn.") for k in report["skipped"])


def test_imagenet_init_fills_the_body_only(solution, weights_dir):
    import torch

    from labkit import weights

    weights.save_random_weights("mobilenet_v3_large_imagenet", weights_dir, seed=2)
    ckpt = weights.load_state_dict("mobilenet_v3_large_imagenet")
    model, report = solution["build_detector"](5, "imagenet", arch="mobilenet_v3_fpn",
                                               min_size=64, max_size=96)
    own = model.state_dict()
    body = sorted(k for k in own if k.startswith("backbone.body."))
    assert report["matched"] == body
    for key in body:
        assert torch.equal(own[key], ckpt["features." + key[len("backbone.body."):]]), key
    assert all(k.startswith("classifier.") or k.endswith("num_batches_tracked")
               for k in report["skipped"])


def test_set_backbone_trainable_flips_exactly_the_backbone(solution):
    from labkit.models import detection as det

    model = det.fasterrcnn(arch="mobilenet_v3_fpn", num_classes=5)
    n = solution["set_backbone_trainable"](model, False)
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    assert {k for k, f in flags.items() if not f} == \
        {k for k in flags if k.startswith("backbone.body.")}
    assert n == sum(p.numel() for p in model.backbone.body.parameters())
    solution["set_backbone_trainable"](model, False, fpn=True)
    assert {k for k, p in model.named_parameters() if not p.requires_grad} == \
        {k for k in flags if k.startswith("backbone.")}


def test_schedule_learning_rates_by_hand(solution):
    plan = solution["freeze_unfreeze_schedule"](5, 2, 1e-3)
    assert [t for _, t in plan] == [False, False, True, True, True]
    want = [1e-3, 9.6e-4, 1e-4 * 0.9216, 1e-4 * 0.884736, 1e-4 * 0.84934656]
    assert [lr for lr, _ in plan] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError):
        solution["freeze_unfreeze_schedule"](2, 3, 1e-3)
