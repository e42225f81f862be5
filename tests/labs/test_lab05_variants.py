"""Lab 05 style variants: correct code in other styles earns full marks; a typical mistake costs
only its own exercise's points (every other exercise is graded with the reference there).

Three correct variants of every exercise (one notebook each, all three exercises replaced) and
three wrong variants of every exercise, each with its exact per-exercise score: wrong variants 1
and 2 in one notebook per half of the exercises (the other half as in the solution), wrong
variant 3 of every exercise together in one notebook. Eight notebooks graded in all, plus one
for an exercise under a decorator.
"""

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py (the lead's helper) "
                                                  "has not landed yet")

LAB = "lab05"

# ----------------------------------------------------------------------------- to_modality

TO_MODALITY = [
    # einsum with a module-level tensor built by a call; a set comprehension of the names
    '''
LUMA = torch.tensor([0.299, 0.587, 0.114])
KNOWN_MODALITIES = {m.lower() for m in ("RGB", "Grayscale", "Inverted_Grayscale")}


def to_modality(images, modality):
    if modality not in KNOWN_MODALITIES:
        raise ValueError(f"unknown modality {modality}")
    if images.dim() not in (3, 4) or images.size(-3) != 3:
        raise ValueError("expected 3 channels at dim -3")
    if modality == "rgb":
        return images.clone()
    y = torch.einsum("...chw,c->...hw", images, LUMA.to(images.dtype))
    if modality.startswith("inverted"):
        y = 1 - y
    return torch.stack([y, y, y], dim=-3)
''',
    # a dict of lambdas around a helper defined in another cell; unbind the channels
    '''
MODALITY_FNS = {
    "rgb": lambda x: x,
    "grayscale": lambda x: luma_of(x),
    "inverted_grayscale": lambda x: 1.0 - luma_of(x),
}


def to_modality(images, modality):
    try:
        fn = MODALITY_FNS[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}") from None
    if images.shape[-3] != 3:
        raise ValueError(f"expected 3 channels, got {images.shape[-3]}")
    out = fn(images)
    if modality == "rgb":
        return out
    return out.unsqueeze(-3).repeat_interleave(3, dim=-3)
''',
    # NumPy weights as a constant, a matrix product over the moved channel axis, a loop to fill
    '''
WEIGHTS = np.array([0.299, 0.587, 0.114])
VALID = ("rgb", "grayscale", "inverted_grayscale")


def to_modality(images, modality):
    if modality not in VALID:
        raise ValueError(modality)
    if images.ndim < 3 or images.shape[-3] != 3:
        raise ValueError(tuple(images.shape))
    if modality == "rgb":
        return images
    gray = images.movedim(-3, -1) @ images.new_tensor(WEIGHTS)  # (..., H, W)
    if modality == "inverted_grayscale":
        gray = 1 - gray
    out = torch.empty_like(images)
    for c in range(3):
        out[..., c, :, :] = gray
    return out
''',
]
TO_MODALITY_BEFORE = {1: ['''
def luma_of(images):
    r, g, b = images.unbind(dim=-3)
    return 0.299 * r + 0.587 * g + 0.114 * b
''']}

_TO_MODALITY_HEAD = '''
def to_modality(images, modality):
    if modality not in ("rgb", "grayscale", "inverted_grayscale"):
        raise ValueError(modality)
    if images.shape[-3] != 3:
        raise ValueError("3 channels expected")
    if modality == "rgb":
        return images
    w = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)
'''
TO_MODALITY_WRONG = [
    # wrong axis: dim=1 is the channel axis of a batch only (a single (3,H,W) image is wrong)
    _TO_MODALITY_HEAD + '''
    luma = (images * w.view(3, 1, 1)).sum(dim=1, keepdim=True)
    if modality == "inverted_grayscale":
        luma = 1 - luma
    return luma.expand_as(images).clone()
''',
    # the plain channel mean instead of the luma weights
    _TO_MODALITY_HEAD + '''
    luma = images.mean(dim=-3, keepdim=True)
    if modality == "inverted_grayscale":
        luma = 1 - luma
    return luma.expand_as(images).clone()
''',
    # the input overwritten in place (the caller's images change)
    _TO_MODALITY_HEAD + '''
    luma = (images * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)
    if modality == "inverted_grayscale":
        luma = 1 - luma
    images[...] = luma
    return images
''',
]

# ----------------------------------------------------------------------------- evaluate_modalities

EVALUATE = [
    # own confusion matrix (bincount, a helper in another cell), inference_mode, train(False)
    '''
def evaluate_modalities(model, loader, modalities, num_classes=19, ignore_index=255,
                        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    device = next(model.parameters()).device
    mean_t = torch.as_tensor(mean, device=device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, device=device).reshape(1, -1, 1, 1)
    model.train(False)
    out = {}
    for modality in modalities:
        cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
        with torch.inference_mode():
            for images, masks in loader:
                x = (to_modality(images.to(device), modality) - mean_t) / std_t
                pred = model(x).argmax(1).cpu()
                cm += confusion_counts(pred.flatten(), masks.flatten().long(), num_classes,
                                       ignore_index)
        tp = cm.diag().double()
        union = cm.sum(0).double() + cm.sum(1).double() - tp
        out[modality] = torch.where(union > 0, tp / union.clamp(min=1),
                                    torch.full_like(union, float("nan")))
    return out
''',
    # NumPy confusion matrix (np.add.at), torchvision's normalize, a dict comprehension
    '''
import torchvision.transforms.functional as TF


def _iou_from_counts(conf):
    tp = np.diag(conf).astype(float)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def _one_modality(model, loader, modality, k, ignore_index, mean, std):
    conf = np.zeros((k, k), dtype=np.int64)
    dev = next(model.parameters()).device
    for images, masks in loader:
        x = TF.normalize(to_modality(images.float(), modality), list(mean), list(std))
        with torch.no_grad():
            pred = model(x.to(dev)).argmax(dim=1).cpu().numpy().ravel()
        t = masks.numpy().ravel()
        ok = t != ignore_index
        np.add.at(conf, (t[ok], pred[ok]), 1)
    return torch.from_numpy(_iou_from_counts(conf))


def evaluate_modalities(model, loader, modalities, num_classes=19, ignore_index=255,
                        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    model.eval()
    return {m: _one_modality(model, loader, m, num_classes, ignore_index, mean, std)
            for m in modalities}
''',
    # labkit's confusion_matrix summed over a generator, set_grad_enabled, a normalising lambda
    '''
NORMALISE = lambda x, m, s: (x - m[None, :, None, None]) / s[None, :, None, None]


def evaluate_modalities(model, loader, modalities, num_classes=19, ignore_index=255,
                        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    model.eval()
    dev = next(iter(model.parameters())).device
    m, s = torch.tensor(mean, device=dev), torch.tensor(std, device=dev)
    results = {}
    with torch.set_grad_enabled(False):
        for modality in modalities:
            confmat = sum(
                lk.metrics.confusion_matrix(
                    model(NORMALISE(to_modality(images.to(dev), modality), m, s)).argmax(1).cpu(),
                    masks, num_classes, ignore_index=ignore_index)
                for images, masks in loader)
            results[modality] = lk.metrics.iou_from_confmat(confmat)[0]
    return results
''',
]
EVALUATE_BEFORE = {0: ['''
def confusion_counts(pred, target, k, ignore_index):
    keep = target != ignore_index
    return torch.bincount(target[keep] * k + pred[keep], minlength=k * k).reshape(k, k)
''']}

_EVALUATE_HEAD = '''
def evaluate_modalities(model, loader, modalities, num_classes=19, ignore_index=255,
                        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
'''
EVALUATE_WRONG = [
    # ignore_index forgotten: 255 hard-coded
    _EVALUATE_HEAD + '''
    model.eval()
    results = {}
    for modality in modalities:
        metric = lk.metrics.SegmentationMetric(num_classes, ignore_index=255)
        with torch.no_grad():
            for images, masks in loader:
                metric.update(model((to_modality(images, modality) - m) / s).argmax(1), masks)
        results[modality] = metric.compute().per_class_iou
    return results
''',
    # normalised before the modality transform
    _EVALUATE_HEAD + '''
    model.eval()
    results = {}
    for modality in modalities:
        metric = lk.metrics.SegmentationMetric(num_classes, ignore_index=ignore_index)
        with torch.no_grad():
            for images, masks in loader:
                metric.update(model(to_modality((images - m) / s, modality)).argmax(1), masks)
        results[modality] = metric.compute().per_class_iou
    return results
''',
    # evaluated with gradients enabled (no torch.no_grad())
    _EVALUATE_HEAD + '''
    model.eval()
    results = {}
    for modality in modalities:
        metric = lk.metrics.SegmentationMetric(num_classes, ignore_index=ignore_index)
        for images, masks in loader:
            logits = model((to_modality(images, modality) - m) / s)
            metric.update(logits.detach().argmax(1), masks)
        results[modality] = metric.compute().per_class_iou
    return results
''',
]

# ----------------------------------------------------------------------------- relative_degradation

DEGRADATION = [
    # np.nanmean with its warning silenced, dict comprehensions, KeyError from the lookup itself
    '''
import warnings


def _miou_np(values):
    arr = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(arr))


def relative_degradation(per_class_iou, base="rgb"):
    ref = _miou_np(per_class_iou[base])
    if not ref > 0:
        return {m: float("nan") for m in per_class_iou}
    return {m: (ref - _miou_np(v)) / ref for m, v in per_class_iou.items()}
''',
    # torch.nanmean in a module-level lambda, math.nan, 1 - ratio
    '''
import math

MEAN_IOU = lambda v: torch.nanmean(torch.as_tensor(v, dtype=torch.float64)).item()


def relative_degradation(per_class_iou, base="rgb"):
    if base not in per_class_iou:
        raise KeyError(base)
    base_miou = MEAN_IOU(per_class_iou[base])
    out = {}
    for name, table in per_class_iou.items():
        if math.isnan(base_miou) or base_miou == 0:
            out[name] = math.nan
        else:
            out[name] = 1.0 - MEAN_IOU(table) / base_miou
    return out
''',
    # plain Python loops over the values, a helper in another cell
    '''
def relative_degradation(per_class_iou, base="rgb"):
    if base not in per_class_iou.keys():
        raise KeyError(f"no {base!r} in the table")
    b = defined_mean(per_class_iou[base])
    result = {}
    for key in per_class_iou:
        m = defined_mean(per_class_iou[key])
        result[key] = (b - m) / b if b > 0 else float("nan")
    return result
''',
]
DEGRADATION_BEFORE = {2: ['''
def defined_mean(values):
    vals = [float(x) for x in values if float(x) == float(x)]  # NaN != NaN
    return sum(vals) / len(vals) if vals else float("nan")
''']}

_DEGRADATION_HEAD = '''
def relative_degradation(per_class_iou, base="rgb"):
    if base not in per_class_iou:
        raise KeyError(base)
'''
DEGRADATION_WRONG = [
    # the absolute difference, not relative to the base
    _DEGRADATION_HEAD + '''
    miou = {k: float(np.nanmean(np.asarray(v, dtype=float))) for k, v in per_class_iou.items()}
    ref = miou[base]
    return {k: (ref - v) if ref > 0 else float("nan") for k, v in miou.items()}
''',
    # absent classes (NaN) counted as IoU 0
    _DEGRADATION_HEAD + '''
    miou = {k: float(np.nan_to_num(np.asarray(v, dtype=float)).mean())
            for k, v in per_class_iou.items()}
    ref = miou[base]
    return {k: (ref - v) / ref if ref > 0 else float("nan") for k, v in miou.items()}
''',
    # a base mIoU of 0 not handled (ZeroDivisionError)
    _DEGRADATION_HEAD + '''
    miou = {k: float(torch.as_tensor(v, dtype=torch.float64).nanmean())
            for k, v in per_class_iou.items()}
    ref = miou[base]
    return {k: (ref - v) / ref for k, v in miou.items()}
''',
]

# ----------------------------------------------------------------------------- the suite

FULL = {"to_modality": 8, "evaluate_modalities": 6, "relative_degradation": 6}
CORRECT = {"to_modality": TO_MODALITY, "evaluate_modalities": EVALUATE,
           "relative_degradation": DEGRADATION}
BEFORE = {"to_modality": TO_MODALITY_BEFORE, "evaluate_modalities": EVALUATE_BEFORE,
          "relative_degradation": DEGRADATION_BEFORE}
WRONG = {"to_modality": TO_MODALITY_WRONG, "evaluate_modalities": EVALUATE_WRONG,
         "relative_degradation": DEGRADATION_WRONG}
# the exact score of each wrong variant (the exercise's other points are those it still earns)
WRONG_SCORES = {
    # [0]: a single image (1.4) only; [1], [2]: "rgb" (1.3) only, the ValueError check (1.6)
    # does not count while 1.1 fails
    "to_modality": [7, 1, 1],
    # [0]: ignore_index=0 (2.3) only; [1]: every modality but "rgb" differs; [2]: none counts
    "evaluate_modalities": [5, 0, 0],
    # [0]: the zero base (3.3) only, the KeyError check (3.5) does not count while 3.1 fails;
    # [1]: NaN classes (3.2) only; [2]: the zero base (3.3) only
    "relative_degradation": [1, 5, 5],
}
ODD = ("to_modality", "relative_degradation")
EVEN = ("evaluate_modalities",)


# float64 images come back as float32 (computed in float32): wrong, yet invisible to the float32
# batches evaluate_modalities passes it, so it may sit next to a correct evaluate_modalities
TO_MODALITY_FLOAT32 = _TO_MODALITY_HEAD + '''
    luma = (images.float() * w.float().view(3, 1, 1)).sum(dim=-3, keepdim=True)
    if modality == "inverted_grayscale":
        luma = 1.0 - luma
    return luma.expand_as(images).clone()
'''


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Solution copies with wrong variants swapped in, each with the exercises wrong in it: every
    exercise wrong in two notebooks (two different variants). evaluate_modalities calls
    to_modality, and in the notebook's kernel that is the student's own (the grader binds the
    reference): a wrong to_modality here is one that gives the right result on the float32
    batches evaluate_modalities passes it (wrong only for a single image, or for float64)."""
    wrong = [{"to_modality": TO_MODALITY_WRONG[0], "relative_degradation": DEGRADATION_WRONG[0]},
             {"to_modality": TO_MODALITY_FLOAT32, "relative_degradation": DEGRADATION_WRONG[1]},
             {"evaluate_modalities": EVALUATE_WRONG[1]}, {"evaluate_modalities": EVALUATE_WRONG[2]}]
    return [(variants.variant_notebook(LAB, replace=w), set(w)) for w in wrong]


def _grade(tmp_path, replace, before):
    nb = variants.variant_notebook(LAB, replace=replace, before=before)
    results = variants.grade_variant(LAB, nb, tmp_path)
    return variants.exercise_scores(LAB, results), results


def test_variant_tables_are_complete():
    notebooks = wrong_notebooks()
    assert all(sum(ex in wrong for _, wrong in notebooks) >= 2 for ex in FULL)
    for table in (CORRECT, WRONG):
        assert set(table) == set(FULL) and all(len(v) >= 3 for v in table.values())
    assert set(ODD) | set(EVEN) == set(FULL) and not set(ODD) & set(EVEN)
    assert all(all(s < FULL[ex] for s in WRONG_SCORES[ex]) for ex in FULL)


@pytest.mark.parametrize("k", range(3))
def test_correct_variants_earn_full_marks(k, tmp_path):
    scores, results = _grade(tmp_path, {ex: src[k] for ex, src in CORRECT.items()},
                             {ex: b[k] for ex, b in BEFORE.items() if k in b})
    assert scores == {ex: (m, m) for ex, m in FULL.items()}, variants.failing_detail(results)


@pytest.mark.parametrize("k", range(2))
@pytest.mark.parametrize("half", ["odd", "even"])
def test_wrong_variants_lose_only_their_exercise(k, half, tmp_path):
    wrong = ODD if half == "odd" else EVEN
    scores, results = _grade(tmp_path, {ex: WRONG[ex][k] for ex in wrong}, {})
    expected = {ex: ((WRONG_SCORES[ex][k] if ex in wrong else m), m) for ex, m in FULL.items()}
    assert scores == expected, variants.failing_detail(results)


def test_third_wrong_variants_each_cost_their_own_points(tmp_path):
    """Every exercise wrong at once: each is still graded against the reference of the others."""
    scores, results = _grade(tmp_path, {ex: WRONG[ex][2] for ex in FULL}, {})
    assert scores == {ex: (WRONG_SCORES[ex][2], m) for ex, m in FULL.items()}, \
        variants.failing_detail(results)


def test_decorated_exercise_earns_full_marks(tmp_path):
    """@torch.no_grad() on the exercise itself: the decorator runs too."""
    source = '''
@torch.no_grad()
def evaluate_modalities(model, loader, modalities, num_classes=19, ignore_index=255,
                        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    model.eval()
    results = {}
    for modality in modalities:
        metric = lk.metrics.SegmentationMetric(num_classes, ignore_index=ignore_index)
        for images, masks in loader:
            metric.update(model((to_modality(images, modality) - m) / s).argmax(1), masks)
        results[modality] = metric.compute().per_class_iou
    return results
'''
    scores, results = _grade(tmp_path, {"evaluate_modalities": source}, {})
    assert scores == {ex: (m, m) for ex, m in FULL.items()}, variants.failing_detail(results)
