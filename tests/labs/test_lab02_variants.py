"""Lab 02 style variants: correct code in other student styles earns full marks; a typical mistake
costs only its own exercise's points (every other exercise keeps full marks).

Three correct variants per exercise (module-level constants built by calls, comprehensions and
lambdas, e.g. ``EPS = np.finfo(float).eps``, ``ACTIVATIONS = {k: v for ...}``,
``FUSE = {"concat": lambda ...}``; helpers in another cell; functional vs module pooling, one pool
per level, a recursive U-Net; loops vs vectorised; einsum vs matmul; numpy vs torch) and two wrong
ones. Few notebooks are graded: one correct variant of every exercise per notebook
(3 notebooks), and the wrong variants of half the exercises with the other half correct
(4 notebooks), with exact per-exercise scores.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py has not landed yet")

LAB = "lab02"
EXERCISES = ("confusion_matrix", "mean_iou", "build_fcn", "UNet", "dice_loss")


class V(NamedTuple):
    cell: str  # source of the cell that replaces the exercise's cell
    before: tuple[str, ...] = ()  # cells inserted before it (helpers "in another cell")


def _edit(v: V, old: str, new: str) -> V:
    assert v.cell.count(old) == 1, old
    return v._replace(cell=v.cell.replace(old, new))


# ----------------------------------------------------------------------------- confusion_matrix

CM_MATMUL = V('''
COUNT_DTYPE = torch.zeros((), dtype=torch.int64).dtype


def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    valid = targets != ignore_index
    t = F.one_hot(targets[valid].long(), num_classes).double()
    p = F.one_hot(preds[valid].long(), num_classes).double()
    return (t.T @ p).round().to(COUNT_DTYPE)
''')

CM_LOOPS = V('''
def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    p, t = flat_valid(preds, targets, ignore_index)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for i in range(num_classes):
        for j in range(num_classes):
            cm[i, j] = ((t == i) & (p == j)).sum()
    return cm
''', before=('''
def flat_valid(preds, targets, ignore_index):
    keep = targets.reshape(-1) != ignore_index
    return preds.reshape(-1)[keep], targets.reshape(-1)[keep]
''',))

CM_NUMPY = V('''
import numpy as np


def confusion_matrix(preds, targets, num_classes, ignore_index=255):
    t = targets.cpu().numpy().ravel()
    p = preds.cpu().numpy().ravel()
    keep = t != ignore_index
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t[keep], p[keep]), 1)
    return torch.from_numpy(cm)
''')

# rows = predictions, columns = targets (transposed)
CM_TRANSPOSED = _edit(CM_MATMUL, "(t.T @ p)", "(p.T @ t)")
# the ignore_index argument is not used (255 hard-coded)
CM_IGNORES_ARGUMENT = _edit(CM_MATMUL, "valid = targets != ignore_index", "valid = targets != 255")

# ----------------------------------------------------------------------------- mean_iou

IOU_NUMPY = V('''
import numpy as np

EPS = np.finfo(float).eps


def mean_iou(confmat):
    cm = confmat.cpu().numpy().astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, EPS), np.nan)
    miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    return torch.from_numpy(iou).float(), miou
''')

IOU_LOOP = V('''
NAN = float("nan")


def mean_iou(confmat):
    k = confmat.shape[0]
    ious = []
    for c in range(k):
        tp = confmat[c, c].item()
        union = confmat[c, :].sum().item() + confmat[:, c].sum().item() - tp
        ious.append(tp / union if union else NAN)
    present = [v for v in ious if v == v]
    miou = sum(present) / len(present) if present else NAN
    return torch.tensor(ious, dtype=torch.float32), miou
''')

IOU_LAMBDA = V('''
SAFE_DIV = lambda a, b: torch.where(b > 0, a / b.clamp(min=1), torch.full_like(a, float("nan")))  # noqa: E731


def mean_iou(confmat):
    cm = confmat.to(torch.float64)
    inter = torch.diagonal(cm)
    union = cm.sum(dim=1) + cm.sum(dim=0) - inter
    per_class = SAFE_DIV(inter, union)
    return per_class.to(torch.float32), torch.nanmean(per_class).item()
''')

# an absent class counts as IoU 0 instead of NaN (and in the mean)
IOU_ABSENT_ZERO = _edit(IOU_LAMBDA, 'torch.where(b > 0, a / b.clamp(min=1), torch.full_like(a, '
                        'float("nan")))', "a / b.clamp(min=1)")
# the union sums one axis twice
IOU_WRONG_AXIS = _edit(IOU_LAMBDA, "cm.sum(dim=1) + cm.sum(dim=0)", "cm.sum(dim=1) + cm.sum(dim=1)")

# ----------------------------------------------------------------------------- build_fcn

FCN_NUM_CLASSES = V('''
BACKBONE_WEIGHTS = {True: ResNet50_Weights.IMAGENET1K_V1, False: None}


def build_fcn(num_classes, pretrained_backbone=False):
    return fcn_resnet50(weights=None, weights_backbone=BACKBONE_WEIGHTS[bool(pretrained_backbone)],
                        num_classes=num_classes, aux_loss=True)
''')

FCN_LOOP = V('''
HEADS = tuple(name for name in ("classifier", "aux_classifier"))


def build_fcn(num_classes, pretrained_backbone=False):
    net = fcn_resnet50(weights=None, aux_loss=True,
                       weights_backbone=ResNet50_Weights.IMAGENET1K_V1 if pretrained_backbone
                       else None)
    for name in HEADS:
        head = getattr(net, name)
        head[-1] = nn.Conv2d(head[-1].in_channels, num_classes, kernel_size=1, bias=True)
    return net
''')

FCN_HELPER_CELL = V('''
def build_fcn(num_classes, pretrained_backbone=False):
    backbone_weights = None
    if pretrained_backbone:
        backbone_weights = ResNet50_Weights.IMAGENET1K_V1
    model = fcn_resnet50(weights=None, weights_backbone=backbone_weights, aux_loss=True)
    model.classifier[4] = new_head(512, num_classes)
    model.aux_classifier[4] = new_head(256, num_classes)
    return model
''', before=('''
def new_head(in_channels, num_classes):
    return nn.Conv2d(in_channels, num_classes, 1)
''',))

# the auxiliary head still predicts the 21 VOC classes
FCN_FORGETS_AUX = _edit(FCN_HELPER_CELL, "    model.aux_classifier[4] = new_head(256, num_classes)\n",
                        "")
# aux_loss left at its default: no auxiliary head at all
FCN_NO_AUX_LOSS = V('''
def build_fcn(num_classes, pretrained_backbone=False):
    weights_backbone = ResNet50_Weights.IMAGENET1K_V1 if pretrained_backbone else None
    net = fcn_resnet50(weights=None, weights_backbone=weights_backbone)
    net.classifier[4] = nn.Conv2d(net.classifier[4].in_channels, num_classes, 1)
    return net
''')

# ----------------------------------------------------------------------------- UNet

UNET_FUNCTIONAL_POOL = V('''
import math


class UNet(nn.Module):
    def __init__(self, *, in_channels, num_classes, width=32, depth=4, skip="concat", norm=True,
                 act="relu"):
        super().__init__()
        if skip not in ("concat", "sum", None) or (act is not None and act not in ACTIVATIONS):
            raise ValueError(f"bad skip={skip!r} or act={act!r}")
        self.depth, self.skip = depth, skip
        chans = [width * 2 ** i for i in range(depth + 1)]
        self.downs = nn.ModuleList()
        cin = in_channels
        for c in chans[:-1]:
            self.downs.append(conv_block(cin, c, norm, act))
            cin = c
        self.bottom = conv_block(cin, chans[-1], norm, act)
        self.ups = nn.ModuleList()
        self.decs = nn.ModuleList()
        for c in reversed(chans[:-1]):
            self.ups.append(nn.ConvTranspose2d(2 * c, c, kernel_size=2, stride=2))
            self.decs.append(conv_block(2 * c if skip == "concat" else c, c, norm, act))
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, images):
        h, w = images.shape[-2:]
        m = 2 ** self.depth
        x = F.pad(images, (0, math.ceil(w / m) * m - w, 0, math.ceil(h / m) * m - h))
        feats = []
        for down in self.downs:
            x = down(x)
            feats.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec in zip(self.ups, self.decs):
            x = up(x)
            s = feats.pop()
            if self.skip == "concat":
                x = torch.cat((x, s), dim=1)
            elif self.skip == "sum":
                x = x + s
            x = dec(x)
        return self.classifier(x)[:, :, :h, :w]
''', before=('''
ACTIVATIONS = {name: cls for name, cls in (("relu", nn.ReLU), ("gelu", nn.GELU))}


def conv_block(cin, cout, norm, act):
    layers = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, kernel_size=3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        if act is not None:
            layers.append(ACTIVATIONS[act]())
    return nn.Sequential(*layers)
''',))

UNET_POOL_PER_LEVEL = V('''
FUSE = {"concat": lambda up, skip: torch.cat([up, skip], 1),
        "sum": lambda up, skip: up + skip,
        None: lambda up, skip: up}


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, norm, act):
        mods = []
        for i in range(2):
            mods.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
            if norm:
                mods.append(nn.BatchNorm2d(cout))
            if act == "relu":
                mods.append(nn.ReLU(inplace=True))
            elif act == "gelu":
                mods.append(nn.GELU())
        super().__init__(*mods)


class UNet(nn.Module):
    def __init__(self, *, in_channels, num_classes, width=32, depth=4, skip="concat", norm=True,
                 act="relu"):
        super().__init__()
        if skip not in FUSE:
            raise ValueError("skip must be 'concat', 'sum' or None")
        if act not in ("relu", "gelu", None):
            raise ValueError("act must be 'relu', 'gelu' or None")
        self.fuse = FUSE[skip]
        self.size_multiple = 2 ** depth
        chans = [width * 2 ** lvl for lvl in range(depth + 1)]
        self.enc = nn.ModuleList([DoubleConv(in_channels if lvl == 0 else chans[lvl - 1],
                                             chans[lvl], norm, act) for lvl in range(depth)])
        self.pools = nn.ModuleList([nn.MaxPool2d(2) for _ in range(depth)])
        self.mid = DoubleConv(chans[depth - 1] if depth else in_channels, chans[depth], norm, act)
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[lvl + 1], chans[lvl], 2, stride=2)
                                 for lvl in reversed(range(depth))])
        k = 2 if skip == "concat" else 1
        self.dec = nn.ModuleList([DoubleConv(k * chans[lvl], chans[lvl], norm, act)
                                  for lvl in reversed(range(depth))])
        self.out = nn.Conv2d(width, num_classes, 1)

    def forward(self, images):
        H, W = images.shape[2], images.shape[3]
        m = self.size_multiple
        x = F.pad(images, [0, -W % m, 0, -H % m])
        skips = []
        for enc, pool in zip(self.enc, self.pools):
            x = enc(x)
            skips.append(x)
            x = pool(x)
        x = self.mid(x)
        for up, dec, s in zip(self.up, self.dec, skips[::-1]):
            x = dec(self.fuse(up(x), s))
        return self.out(x)[..., :H, :W]
''')

UNET_RECURSIVE = V('''
def _block(cin, cout, norm, act):
    layers = []
    for c in (cin, cout):
        layers += [nn.Conv2d(c, cout, 3, padding=1, bias=not norm)]
        layers += [nn.BatchNorm2d(cout)] if norm else []
        layers += {"relu": [nn.ReLU()], "gelu": [nn.GELU()], None: []}[act]
    return nn.Sequential(*layers)


class Level(nn.Module):
    """One resolution: encoder block, pool, the levels below, up-convolution, decoder block."""

    def __init__(self, cin, c, levels, skip, norm, act):
        super().__init__()
        self.skip = skip
        self.enc = _block(cin, c, norm, act)
        self.inner = (Level(c, 2 * c, levels - 1, skip, norm, act) if levels > 1
                      else _block(c, 2 * c, norm, act))
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec = _block(2 * c if skip == "concat" else c, c, norm, act)

    def forward(self, x):
        e = self.enc(x)
        u = self.up(self.inner(F.max_pool2d(e, 2)))
        if self.skip == "concat":
            u = torch.cat([u, e], 1)
        elif self.skip == "sum":
            u = u + e
        return self.dec(u)


class UNet(nn.Module):
    def __init__(self, *, in_channels, num_classes, width=32, depth=4, skip="concat", norm=True,
                 act="relu"):
        super().__init__()
        if skip not in ["concat", "sum", None]:
            raise ValueError(skip)
        if act not in ["relu", "gelu", None]:
            raise ValueError(act)
        self.multiple = 2 ** depth
        self.body = Level(in_channels, width, depth, skip, norm, act)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, images):
        h, w = images.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        return self.head(self.body(F.pad(images, (0, pw, 0, ph))))[:, :, :h, :w]
''')

# every convolution with a bias (bias=not norm forgotten)
UNET_ALWAYS_BIAS = _edit(UNET_POOL_PER_LEVEL, "padding=1, bias=not norm)", "padding=1, bias=True)")
# no padding to a multiple of 2**depth (and no crop): odd sizes fail
UNET_NO_PADDING = _edit(_edit(UNET_POOL_PER_LEVEL, "x = F.pad(images, [0, -W % m, 0, -H % m])",
                              "x = images"),
                        "return self.out(x)[..., :H, :W]", "return self.out(x)")

# ----------------------------------------------------------------------------- dice_loss

DICE_LOOP = V('''
SMOOTH = float(torch.ones(()).item())


def dice_loss(logits, targets, ignore_index=255):
    k = logits.shape[1]
    valid = (targets != ignore_index).unsqueeze(1).to(logits.dtype)  # (B,1,H,W)
    probs = torch.softmax(logits, dim=1) * valid
    total = 0.0
    for c in range(k):
        t = (targets == c).unsqueeze(1).to(logits.dtype) * valid
        p = probs[:, c:c + 1]
        total = total + (2 * (p * t).sum() + SMOOTH) / (p.sum() + t.sum() + SMOOTH)
    return 1 - total / k
''')

DICE_EINSUM = V('''
def dice_loss(logits, targets, ignore_index=255):
    num_classes = logits.shape[1]
    flat_logits = logits.movedim(1, -1).reshape(-1, num_classes)
    flat_targets = targets.reshape(-1)
    keep = flat_targets != ignore_index
    probs = flat_logits[keep].softmax(-1)  # (P, K)
    onehot = F.one_hot(flat_targets[keep].long(), num_classes).to(probs.dtype)
    inter = torch.einsum("pk,pk->k", probs, onehot)
    denom = probs.sum(0) + onehot.sum(0)
    return 1 - ((2 * inter + 1) / (denom + 1)).mean()
''')

DICE_HELPER_CELL = V('''
SUM_BHW = lambda x: x.sum(dim=(0, 2, 3))  # noqa: E731


def dice_loss(logits, targets, ignore_index=255):
    valid = targets.ne(ignore_index)
    probs = torch.where(valid[:, None], F.softmax(logits, 1), torch.zeros_like(logits))
    onehot = one_hot_masked(targets, logits.size(1), valid).type_as(probs)
    dice = (2 * SUM_BHW(probs * onehot) + 1) / (SUM_BHW(probs) + SUM_BHW(onehot) + 1)
    return 1 - dice.mean()
''', before=('''
def one_hot_masked(targets, num_classes, valid):
    safe = targets.masked_fill(~valid, 0).long()
    return F.one_hot(safe, num_classes).permute(0, 3, 1, 2) * valid[:, None]
''',))

# the mean over the classes present in the targets only (not over all K)
DICE_PRESENT_ONLY = _edit(DICE_EINSUM, "return 1 - ((2 * inter + 1) / (denom + 1)).mean()",
                          "return 1 - ((2 * inter + 1) / (denom + 1))[onehot.sum(0) > 0].mean()")
# ignored pixels removed from the targets but not from the probabilities
DICE_KEEPS_IGNORED_PROBS = _edit(
    DICE_HELPER_CELL,
    "probs = torch.where(valid[:, None], F.softmax(logits, 1), torch.zeros_like(logits))",
    "probs = F.softmax(logits, 1)")

CORRECT = {
    "confusion_matrix": (CM_MATMUL, CM_LOOPS, CM_NUMPY),
    "mean_iou": (IOU_NUMPY, IOU_LOOP, IOU_LAMBDA),
    "build_fcn": (FCN_NUM_CLASSES, FCN_LOOP, FCN_HELPER_CELL),
    "UNet": (UNET_FUNCTIONAL_POOL, UNET_POOL_PER_LEVEL, UNET_RECURSIVE),
    "dice_loss": (DICE_LOOP, DICE_EINSUM, DICE_HELPER_CELL),
}
# wrong variants with the exact score each earns (of 8, 8, 4, 9, 8)
WRONG = {
    "confusion_matrix": ((CM_TRANSPOSED, 1.0), (CM_IGNORES_ARGUMENT, 7.0)),
    "mean_iou": ((IOU_ABSENT_ZERO, 4.0), (IOU_WRONG_AXIS, 2.0)),
    "build_fcn": ((FCN_FORGETS_AUX, 0.0), (FCN_NO_AUX_LOSS, 0.0)),
    "UNet": ((UNET_ALWAYS_BIAS, 2.0), (UNET_NO_PADDING, 3.0)),
    "dice_loss": ((DICE_PRESENT_ONLY, 5.0), (DICE_KEEPS_IGNORED_PROBS, 2.0)),
}


def _grade(chosen: dict[str, V], tmp_path):
    nb = variants.variant_notebook(LAB, replace={ex: v.cell for ex, v in chosen.items()},
                                   before={ex: list(v.before) for ex, v in chosen.items()
                                           if v.before})
    results = variants.grade_variant(LAB, nb, tmp_path)
    lost = {t["number"]: t.get("output", "")[:300] for t in results["tests"]
            if t["score"] < t["max_score"]}
    return variants.exercise_scores(LAB, results), lost


@pytest.mark.parametrize("k", range(3))
def test_correct_variants_earn_full_marks(k, tmp_path):
    scores, lost = _grade({ex: CORRECT[ex][k] for ex in EXERCISES}, tmp_path)
    assert {ex: s for ex, (s, _) in scores.items()} == \
        {ex: m for ex, (_, m) in scores.items()}, lost


@pytest.mark.parametrize("k", range(2))
@pytest.mark.parametrize("half", (0, 1))
def test_a_wrong_exercise_loses_only_its_own_points(k, half, tmp_path):
    wrong = EXERCISES[half::2]
    chosen = {ex: WRONG[ex][k][0] if ex in wrong else CORRECT[ex][0] for ex in EXERCISES}
    scores, lost = _grade(chosen, tmp_path)
    want = {ex: WRONG[ex][k][1] if ex in wrong else scores[ex][1] for ex in EXERCISES}
    assert {ex: s for ex, (s, _) in scores.items()} == want, lost


def wrong_notebooks():
    """Notebooks with the wrong variants of half the exercises each (every exercise wrong in two
    of them), for the test that compares the in-kernel self-check with the public checks."""
    out = []
    for k in range(2):
        for half in (0, 1):
            wrong = EXERCISES[half::2]
            chosen = {ex: WRONG[ex][k][0] if ex in wrong else CORRECT[ex][0] for ex in EXERCISES}
            nb = variants.variant_notebook(
                LAB, replace={ex: v.cell for ex, v in chosen.items()},
                before={ex: list(v.before) for ex, v in chosen.items() if v.before})
            out.append((nb, set(wrong)))
    return out
