"""Lab 01 style variants: correct code in other student styles earns full marks; a typical mistake
costs only its own exercise's points (every other exercise keeps full marks).

Three correct variants per exercise (module-level constants built by calls, comprehensions and
lambdas; helpers in another cell; loops vs vectorised; numpy vs torch where the contract allows)
and two wrong ones. Few notebooks are graded: one correct variant of every exercise per notebook
(3 notebooks), and the wrong variants of half the exercises with the other half correct
(4 notebooks), with exact per-exercise scores.
"""

from __future__ import annotations

from typing import NamedTuple

import nbformat
import pytest

variants = pytest.importorskip("variants", reason="tests/labs/variants.py has not landed yet")

LAB = "lab01"
EXERCISES = ("VGGResNet", "class_activation_map", "make_spurious", "shift_images")


class V(NamedTuple):
    cell: str  # source of the cell that replaces the exercise's cell
    before: tuple[str, ...] = ()  # cells inserted before it (helpers "in another cell")


# ----------------------------------------------------------------------------- VGGResNet

VGG_CALLS = V('''
ACTS = {name: cls for name, cls in [("relu", nn.ReLU), ("gelu", nn.GELU)]}
DOWNSAMPLES = frozenset(["maxpool", "stride"])


def conv_bn(cin, cout, k, stride, norm):
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def activation(act):
    if act is None:
        return nn.Identity()
    if act not in ACTS:
        raise ValueError(f"unknown activation {act!r}")
    return ACTS[act]()


class Residual(nn.Module):
    def __init__(self, cin, cout, stride, skip, norm, act):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride, norm), activation(act),
                                  conv_bn(cout, cout, 3, 1, norm))
        if not skip:
            self.short = None
        elif stride == 1 and cin == cout:
            self.short = nn.Identity()
        else:
            self.short = conv_bn(cin, cout, 1, stride, norm)
        self.out_act = activation(act)

    def forward(self, x):
        y = self.body(x)
        if self.short is not None:
            y = y + self.short(x)
        return self.out_act(y)


class VGGResNet(nn.Module):
    def __init__(self, *, blocks, width, downsample, skip=True, norm=True, act="relu",
                 in_channels=1, num_classes=10):
        super().__init__()
        if downsample not in DOWNSAMPLES:
            raise ValueError(downsample)
        stages = [nn.Sequential(conv_bn(in_channels, width, 3, 1, norm), activation(act))]
        cin = width
        for s in range(3):
            cout = width * 2 ** s
            layers = []
            for b in range(blocks):
                first = s > 0 and b == 0
                if first and downsample == "maxpool":
                    layers.append(nn.MaxPool2d(2))
                stride = 2 if first and downsample == "stride" else 1
                layers.append(Residual(cin, cout, stride, skip, norm, act))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, images):
        return self.fc(self.features(images).mean(dim=(2, 3)))
''')

VGG_HELPER_CELL = V('''
class Features(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class VGGResNet(nn.Module):
    def __init__(self, *, blocks, width, downsample, skip=True, norm=True, act="relu",
                 in_channels=1, num_classes=10):
        super().__init__()
        if act not in MAKE_ACT:
            raise ValueError(f"unknown act {act!r}")
        if downsample != "maxpool" and downsample != "stride":
            raise ValueError(f"unknown downsample {downsample!r}")
        widths = [width * m for m in (1, 2, 4)]
        layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=not norm)]
        layers += [nn.BatchNorm2d(width)] if norm else []
        layers += [MAKE_ACT[act]()]
        cin = width
        for i, w in enumerate(widths):
            for b in range(blocks):
                down = i > 0 and b == 0
                if down and downsample == "maxpool":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                layers.append(Block(cin, w, 2 if down and downsample == "stride" else 1,
                                    skip, norm, act))
                cin = w
        self.features = Features(layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, images):
        return self.fc(self.pool(self.features(images)).flatten(1))
''', before=('''
MAKE_ACT = {"relu": lambda: nn.ReLU(inplace=True), "gelu": lambda: nn.GELU(),
            None: lambda: nn.Identity()}


class Block(nn.Module):
    """conv3x3(stride) [BN] [act] conv3x3 [BN] (+ shortcut) [act]; one activation module."""

    def __init__(self, cin, cout, stride=1, skip=True, norm=True, act="relu"):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not norm)
        self.n1 = nn.BatchNorm2d(cout) if norm else None
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not norm)
        self.n2 = nn.BatchNorm2d(cout) if norm else None
        self.act = MAKE_ACT[act]()
        self.skip = skip
        self.proj = None
        if skip and (stride != 1 or cin != cout):
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=not norm),
                                      *([nn.BatchNorm2d(cout)] if norm else []))

    def forward(self, x):
        out = self.c1(x)
        if self.n1 is not None:
            out = self.n1(out)
        out = self.act(out)
        out = self.c2(out)
        if self.n2 is not None:
            out = self.n2(out)
        if self.skip:
            out = out + (x if self.proj is None else self.proj(x))
        return self.act(out)
''',))

VGG_PARTIAL = V('''
from functools import partial

CONV3 = partial(nn.Conv2d, kernel_size=3, padding=1)
STAGE_MULTIPLIERS = [2 ** i for i in range(3)]


def act_layers(act):
    table = {"relu": nn.ReLU, "gelu": nn.GELU}
    if act is None:
        return []
    if act not in table:
        raise ValueError("act must be 'relu', 'gelu' or None")
    return [table[act]()]


def norm_layers(c, norm):
    return [nn.BatchNorm2d(c)] if norm else []


class ResBlock(nn.Module):
    def __init__(self, cin, cout, stride, skip, norm, act):
        super().__init__()
        self.main = nn.Sequential(CONV3(cin, cout, stride=stride, bias=not norm),
                                  *norm_layers(cout, norm), *act_layers(act),
                                  CONV3(cout, cout, bias=not norm), *norm_layers(cout, norm))
        if skip and (stride > 1 or cin != cout):
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=not norm),
                                          *norm_layers(cout, norm))
        else:
            self.shortcut = nn.Identity() if skip else None
        self.post = nn.Sequential(*act_layers(act))

    def forward(self, x):
        y = self.main(x)
        return self.post(y if self.shortcut is None else y + self.shortcut(x))


class VGGResNet(nn.Module):
    def __init__(self, *, blocks, width, downsample, skip=True, norm=True, act="relu",
                 in_channels=1, num_classes=10):
        super().__init__()
        if downsample not in {"maxpool": 1, "stride": 2}:
            raise ValueError(downsample)
        mods = [CONV3(in_channels, width, bias=not norm), *norm_layers(width, norm), *act_layers(act)]
        c = width
        for s, mult in enumerate(STAGE_MULTIPLIERS):
            for b in range(blocks):
                stride = 1
                if s and not b:
                    if downsample == "maxpool":
                        mods.append(nn.MaxPool2d(2))
                    else:
                        stride = 2
                mods.append(ResBlock(c, width * mult, stride, skip, norm, act))
                c = width * mult
        self.features = nn.Sequential(*mods)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, images):
        f = self.features(images)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))
''')


def _edit(v: V, old: str, new: str) -> V:
    assert v.cell.count(old) == 1, old
    return v._replace(cell=v.cell.replace(old, new))


# every convolution with a bias (bias=not norm forgotten): parameter counts off where norm=True
VGG_ALWAYS_BIAS = _edit(VGG_CALLS, "padding=k // 2, bias=not norm)", "padding=k // 2, bias=True)")
# skip=False ignored: the shortcuts are always there
VGG_IGNORES_SKIP = _edit(VGG_CALLS, """        if not skip:
            self.short = None
        elif stride == 1""", """        if stride == 1""")

# ----------------------------------------------------------------------------- CAM

CAM_BMM = V('''
EPS = torch.finfo(torch.float32).eps


def class_activation_map(model, images, class_idx):
    with torch.no_grad():
        feats = model.features(images)
        b, c, h, w = feats.shape
        if isinstance(class_idx, int):
            class_idx = torch.full((b,), class_idx, dtype=torch.long)
        weights = model.fc.weight[class_idx.to(feats.device)]  # (B, C)
        cams = torch.bmm(weights.unsqueeze(1), feats.reshape(b, c, h * w)).reshape(b, 1, h, w)
        cams = F.interpolate(cams, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)[:, 0]
        low = cams.amin(dim=(1, 2), keepdim=True)
        high = cams.amax(dim=(1, 2), keepdim=True)
        return (cams - low) / (high - low).clamp_min(EPS)
''')

CAM_LOOP = V('''
@torch.no_grad()
def class_activation_map(model, images, class_idx):
    feats = model.features(images)
    ids = torch.as_tensor(class_idx).reshape(-1).tolist()
    if len(ids) == 1:
        ids = ids * len(images)
    maps = []
    for f, k in zip(feats, ids):
        m = (model.fc.weight[k][:, None, None] * f).sum(0)
        m = F.interpolate(m[None, None], size=tuple(images.shape[-2:]), mode="bilinear",
                          align_corners=False)[0, 0]
        maps.append(minmax(m))
    return torch.stack(maps)
''', before=('''
def minmax(x):
    lo, hi = x.min(), x.max()
    if hi - lo <= 0:
        return torch.zeros_like(x)
    return (x - lo) / (hi - lo)
''',))

CAM_LAMBDA = V('''
NORMALISE = lambda m: torch.nan_to_num(  # noqa: E731
    (m - m.amin((-2, -1), keepdim=True))
    / (m.amax((-2, -1), keepdim=True) - m.amin((-2, -1), keepdim=True)), nan=0.0)


def class_activation_map(model, images, class_idx):
    with torch.inference_mode():
        feats = model.features(images)
        idx = torch.as_tensor(class_idx).expand(feats.shape[0])
        w = model.fc.weight.index_select(0, idx)
        cams = (w[:, :, None, None] * feats).sum(1, keepdim=True)
        up = F.interpolate(cams, size=images.shape[2:], mode="bilinear", align_corners=False)
        return NORMALISE(up.squeeze(1))
''')

# a ReLU before the normalisation (Grad-CAM's habit; the stub says no ReLU)
CAM_RELU = _edit(CAM_BMM, "        low = cams.amin(", "        cams = cams.relu()\n        low = cams.amin(")
# normalised before the up-sampling (the stub says up-sample, then normalise)
CAM_NORM_FIRST = V('''
def class_activation_map(model, images, class_idx):
    with torch.no_grad():
        feats = model.features(images)
        idx = torch.as_tensor(class_idx).long().reshape(-1).expand(feats.shape[0])
        cams = torch.einsum("bc,bchw->bhw", model.fc.weight[idx], feats)
        low = cams.amin(dim=(1, 2), keepdim=True)
        span = cams.amax(dim=(1, 2), keepdim=True) - low
        cams = torch.where(span > 0, (cams - low) / span.clamp_min(1e-12), torch.zeros_like(cams))
        return F.interpolate(cams[:, None], size=images.shape[-2:], mode="bilinear",
                             align_corners=False)[:, 0]
''')

# ----------------------------------------------------------------------------- make_spurious

SP_VECTOR = V('''
CORNER_OFFSETS = {
    name: (lambda h, w, s, top=top, left=left: (0 if top else h - s, 0 if left else w - s))
    for name, top, left in [("top_left", True, True), ("top_right", True, False),
                            ("bottom_left", False, True), ("bottom_right", False, False)]
}


def make_spurious(images, labels, digits, digit_labels, *, p, seed=0, size=10,
                  corner="top_left"):
    if corner not in CORNER_OFFSETS:
        raise ValueError(f"unknown corner {corner!r}")
    g = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    random_ids = torch.randint(10, (n,), generator=g)
    keep = torch.rand(n, generator=g) < p
    ids = torch.where(keep, labels.long(), random_ids)
    candidates = (digit_labels.long()[None, :] == ids[:, None]).float()  # (N, M)
    chosen = torch.multinomial(candidates, 1, generator=g).squeeze(1)
    patches = F.interpolate(digits[chosen].float(), size=(size, size), mode="bilinear",
                            align_corners=False, antialias=False)
    out = images.float().clone()
    top, left = CORNER_OFFSETS[corner](out.shape[-2], out.shape[-1], size)
    region = out[..., top:top + size, left:left + size]
    out[..., top:top + size, left:left + size] = torch.max(region, patches)
    return out, labels.clone(), ids
''')

SP_LOOP = V('''
def make_spurious(images, labels, digits, digit_labels, *, p, seed=0, size=10,
                  corner="top_left"):
    rows, cols = corner_slices(images.shape[-2], images.shape[-1], size, corner)
    gen = torch.Generator()
    gen.manual_seed(seed)
    by_class = {k: torch.nonzero(digit_labels == k).flatten() for k in range(10)}
    out = images.clone().float()
    ids = torch.empty(len(labels), dtype=torch.int64)
    for i in range(len(labels)):
        if torch.rand(1, generator=gen).item() < p:
            k = int(labels[i])
        else:
            k = int(torch.randint(0, 10, (1,), generator=gen))
        pool = by_class[k]
        j = int(pool[torch.randint(len(pool), (1,), generator=gen)])
        digit = F.interpolate(digits[j:j + 1].float(), size=(size, size), mode="bilinear",
                              align_corners=False)[0]
        out[i, :, rows, cols] = torch.maximum(out[i, :, rows, cols], digit)
        ids[i] = k
    return out, labels.clone(), ids
''', before=('''
def corner_slices(h, w, size, corner):
    vertical, _, horizontal = corner.partition("_")
    if vertical not in ("top", "bottom") or horizontal not in ("left", "right"):
        raise ValueError(f"unknown corner {corner!r}")
    y0 = 0 if vertical == "top" else h - size
    x0 = 0 if horizontal == "left" else w - size
    return slice(y0, y0 + size), slice(x0, x0 + size)
''',))

SP_SORTED = V('''
CORNERS = tuple(f"{v}_{h}" for v in ("top", "bottom") for h in ("left", "right"))
NUM_DIGIT_CLASSES = len(range(10))


def make_spurious(images, labels, digits, digit_labels, *, p, seed=0, size=10,
                  corner="top_left"):
    if corner not in CORNERS:
        raise ValueError("corner must be one of " + ", ".join(CORNERS))
    g = torch.Generator().manual_seed(seed)
    n, (h, w) = len(labels), images.shape[-2:]
    coin = torch.rand(n, generator=g)
    other = torch.randint(0, NUM_DIGIT_CLASSES, (n,), generator=g)
    ids = labels.long().clone()
    ids[coin >= p] = other[coin >= p]
    counts = torch.bincount(digit_labels.long(), minlength=NUM_DIGIT_CLASSES)
    order = torch.argsort(digit_labels.long(), stable=True)
    start = torch.cumsum(counts, 0) - counts
    offset = torch.minimum((torch.rand(n, generator=g) * counts[ids]).long(), counts[ids] - 1)
    chosen = order[start[ids] + offset]
    small = F.interpolate(digits.float(), size=(size, size), mode="bilinear",
                          align_corners=False, antialias=False)[chosen]
    y0 = 0 if corner.startswith("top") else h - size
    x0 = 0 if corner.endswith("left") else w - size
    out = images.to(torch.float32, copy=True)
    region = out[:, :, y0:y0 + size, x0:x0 + size]
    out[:, :, y0:y0 + size, x0:x0 + size] = torch.where(small > region, small, region)
    return out, labels.clone(), ids
''')

# "otherwise a random class" read as "a different class": p=0 never matches the label
SP_OTHER_CLASS = _edit(SP_VECTOR, "random_ids = torch.randint(10, (n,), generator=g)",
                       "random_ids = (labels.long() + torch.randint(1, 10, (n,), generator=g)) % 10")
# the digit replaces the corner instead of max(corner, digit)
SP_REPLACES = _edit(SP_VECTOR, "= torch.max(region, patches)", "= patches")

# ----------------------------------------------------------------------------- shift_images

SHIFT_ROLL = V('''
ZERO = torch.tensor(0.0)


def shift_images(images, dx, dy):
    h, w = images.shape[-2:]
    out = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    ys = torch.arange(h)[:, None] - dy
    xs = torch.arange(w)[None, :] - dx
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    return torch.where(inside, out, ZERO.to(images.dtype))
''')

SHIFT_PAD = V('''
def shift_images(images, dx, dy):
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return images.new_zeros(images.shape)
    left, right = pad_amounts(dx)
    top, bottom = pad_amounts(dy)
    padded = F.pad(images, (left, right, top, bottom))
    return padded[..., bottom:bottom + h, right:right + w].clone()
''', before=('''
def pad_amounts(d):
    return max(d, 0), max(-d, 0)
''',))

SHIFT_NUMPY_LOOP = V('''
import numpy as np


def shift_images(images, dx, dy):
    arr = images.detach().cpu().numpy()
    out = np.zeros_like(arr)
    h, w = arr.shape[-2:]
    for y in range(h):
        sy = y - dy
        if not 0 <= sy < h:
            continue
        for x in range(w):
            sx = x - dx
            if 0 <= sx < w:
                out[..., y, x] = arr[..., sy, sx]
    return torch.from_numpy(out).to(images.device)
''')

# positive dy moves the content up (sign of the vertical shift swapped)
SHIFT_DY_SWAPPED = _edit(_edit(SHIFT_ROLL, "shifts=(dy, dx)", "shifts=(-dy, dx)"),
                         "torch.arange(h)[:, None] - dy", "torch.arange(h)[:, None] + dy")
# wraps around instead of filling with zeros
SHIFT_WRAPS = V('''
def shift_images(images, dx, dy):
    return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
''')

CORRECT = {
    "VGGResNet": (VGG_CALLS, VGG_HELPER_CELL, VGG_PARTIAL),
    "class_activation_map": (CAM_BMM, CAM_LOOP, CAM_LAMBDA),
    "make_spurious": (SP_VECTOR, SP_LOOP, SP_SORTED),
    "shift_images": (SHIFT_ROLL, SHIFT_PAD, SHIFT_NUMPY_LOOP),
}
# wrong variants with the exact score each earns (of 13, 5, 12, 5)
WRONG = {
    "VGGResNet": ((VGG_ALWAYS_BIAS, 3.0), (VGG_IGNORES_SKIP, 11.0)),
    # CAM_RELU: 0 (was 1 with the former fixed model, whose class-7 maps in 2.3 had no negative
    # value by chance; the declarative checks' model gives negative values there, which ReLU changes)
    "class_activation_map": ((CAM_RELU, 0.0), (CAM_NORM_FIRST, 0.0)),
    "make_spurious": ((SP_OTHER_CLASS, 11.0), (SP_REPLACES, 9.0)),
    "shift_images": ((SHIFT_DY_SWAPPED, 1.0), (SHIFT_WRAPS, 0.0)),
}


def wrong_notebooks() -> list[tuple[nbformat.NotebookNode, set[str]]]:
    """Solution copies with wrong variants swapped in, each with the exercises wrong in it: no
    exercise of this lab calls another, so each notebook has every exercise wrong (wrong variant
    k of each), and every exercise is wrong in two notebooks."""
    out = []
    for k in range(2):
        wrong = {ex: WRONG[ex][k][0] for ex in EXERCISES}
        nb = variants.variant_notebook(LAB, replace={ex: v.cell for ex, v in wrong.items()},
                                       before={ex: list(v.before) for ex, v in wrong.items()
                                               if v.before})
        out.append((nb, set(wrong)))
    return out


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

