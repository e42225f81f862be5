"""A Gradescope-style export of a lab02 class, written from the student copy of the master.

``write_export(root, n=34)`` writes ``root/submission_<id>/lab02_segmentation.ipynb`` for every
student plus ``root/submission_metadata.yml`` (Gradescope's format: ``:submitters:`` with
``:name:``, ``:sid:``, ``:email:``) and, unless ``results=False``, a synthetic ``results.json``
per submission in Gradescope's format (the real grader is not run: the report only reads these
files). It returns a :class:`ClassExport` that says what was planted, so tests can check it:

* honest students: every exercise from a pool of correct implementations written in different
  styles (any two honest students differ in at least two exercises), comments varied, free-text
  answers assembled from different ideas and phrasings;
* partial students: some exercises left as the stub, some wrong (ignored pixels counted, NaN in
  the mean, no smoothing), some questions unanswered or answered below the prompt;
* planted copies: ``renamed`` (local variables renamed, re-formatted through ``ast``),
  ``reordered`` (renamed and every exercise moved into one cell in reverse order) and
  ``answers`` (code copied with other comments, free-text answers copied with a few edits);
* one untouched student copy (nothing done) and one group submission (two submitters).

The synthetic results fail every student on check 2.3 (a planted broken check) and fail about a
fifth of the otherwise-correct UNets on 5.8 (a hard but sound check).
"""

from __future__ import annotations

import ast
import itertools
import json
import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import notebook as nbmod
from autograder.labs import get_lab

LAB = get_lab("lab02")
EXERCISES = [ex.name for ex in LAB.exercises]  # confusion_matrix, mean_iou, build_fcn, UNet, dice_loss

# ----------------------------------------------------------------------------- code variants
# Each variant is the list of bodies that replace the stubs of the exercise's cell, in order.

CORRECT: dict[str, list[list[str]]] = {
    "confusion_matrix": [
        ["""\
keep = targets != ignore_index
index = num_classes * targets[keep].long() + preds[keep].long()
counts = torch.bincount(index, minlength=num_classes * num_classes)
return counts.reshape(num_classes, num_classes)"""],
        ["""\
cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
valid = targets != ignore_index
t = targets[valid]
p = preds[valid]
for i in range(num_classes):
    for j in range(num_classes):
        cm[i, j] = ((t == i) & (p == j)).sum()
return cm"""],
        ["""\
mask = targets.ne(ignore_index)
rows = targets[mask].to(torch.int64)
cols = preds[mask].to(torch.int64)
out = torch.zeros((num_classes, num_classes), dtype=torch.long)
out.index_put_((rows, cols), torch.ones_like(rows), accumulate=True)
return out"""],
        ["""\
flat_t = targets.flatten()
flat_p = preds.flatten()
ok = flat_t != ignore_index
one_t = F.one_hot(flat_t[ok].long(), num_classes)
one_p = F.one_hot(flat_p[ok].long(), num_classes)
return (one_t.T @ one_p).long()"""],
    ],
    "mean_iou": [
        ["""\
confmat = confmat.double()
tp = confmat.diag()
union = confmat.sum(0) + confmat.sum(1) - tp
per_class = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
present = ~per_class.isnan()
miou = per_class[present].mean().item() if present.any() else float("nan")
return per_class.float(), miou"""],
        ["""\
cm = confmat.to(torch.float64)
inter = torch.diagonal(cm)
union = cm.sum(dim=1) + cm.sum(dim=0) - inter
iou = inter / union
iou[union == 0] = float("nan")
return iou.float(), torch.nanmean(iou).item()"""],
        ["""\
k = confmat.shape[0]
ious = []
for c in range(k):
    tp = confmat[c, c].item()
    fp = confmat[:, c].sum().item() - tp
    fn = confmat[c, :].sum().item() - tp
    denom = tp + fp + fn
    ious.append(tp / denom if denom > 0 else float("nan"))
per_class = torch.tensor(ious, dtype=torch.float32)
valid = [v for v in ious if v == v]
return per_class, (sum(valid) / len(valid) if valid else float("nan"))"""],
    ],
    "build_fcn": [
        ["""\
weights_backbone = ResNet50_Weights.IMAGENET1K_V1 if pretrained_backbone else None
net = fcn_resnet50(weights=None, weights_backbone=weights_backbone, aux_loss=True)
net.classifier[4] = nn.Conv2d(net.classifier[4].in_channels, num_classes, 1)
net.aux_classifier[4] = nn.Conv2d(net.aux_classifier[4].in_channels, num_classes, 1)
return net"""],
        ["""\
backbone_weights = "IMAGENET1K_V1" if pretrained_backbone else None
model = fcn_resnet50(weights=None, weights_backbone=backbone_weights,
                     num_classes=num_classes, aux_loss=True)
return model"""],
        ["""\
model = fcn_resnet50(weights=None, aux_loss=True,
                     weights_backbone=ResNet50_Weights.DEFAULT if pretrained_backbone else None)
for head in (model.classifier, model.aux_classifier):
    last = head[-1]
    head[-1] = nn.Conv2d(last.in_channels, num_classes, kernel_size=1)
return model"""],
    ],
    "UNet": [
        ["""\
if skip not in ("concat", "sum", None):
    raise ValueError(f"skip must be 'concat', 'sum' or None, got {skip!r}")
if act not in ("relu", "gelu", None):
    raise ValueError(f"act must be 'relu', 'gelu' or None, got {act!r}")
self.depth, self.skip = depth, skip

def block(cin, cout):
    layers = []
    for i in range(2):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        if act is not None:
            layers.append(nn.ReLU() if act == "relu" else nn.GELU())
    return nn.Sequential(*layers)

chans = [width * 2**level for level in range(depth + 1)]
self.encoder = nn.ModuleList(
    block(in_channels if level == 0 else chans[level - 1], chans[level])
    for level in range(depth))
self.pool = nn.MaxPool2d(2)
self.bottleneck = block(chans[depth - 1] if depth else in_channels, chans[depth])
self.up = nn.ModuleList(nn.ConvTranspose2d(chans[level + 1], chans[level], 2, stride=2)
                        for level in reversed(range(depth)))
factor = 2 if skip == "concat" else 1
self.decoder = nn.ModuleList(block(factor * chans[level], chans[level])
                             for level in reversed(range(depth)))
self.head = nn.Conv2d(width, num_classes, 1)""", """\
h, w = images.shape[-2:]
m = 2**self.depth
x = F.pad(images, (0, (-w) % m, 0, (-h) % m))
skips = []
for enc in self.encoder:
    x = enc(x)
    skips.append(x)
    x = self.pool(x)
x = self.bottleneck(x)
for up, dec, s in zip(self.up, self.decoder, reversed(skips)):
    x = up(x)
    if self.skip == "concat":
        x = torch.cat([x, s], dim=1)
    elif self.skip == "sum":
        x = x + s
    x = dec(x)
return self.head(x)[..., :h, :w]"""],
        ["""\
if skip not in {"concat", "sum", None} or act not in {"relu", "gelu", None}:
    raise ValueError("unknown skip or act")
self.depth = depth
self.skip = skip
activation = {"relu": nn.ReLU, "gelu": nn.GELU, None: None}[act]

def double_conv(c_in, c_out):
    mods = []
    for c in (c_in, c_out):
        mods.append(nn.Conv2d(c, c_out, kernel_size=3, padding=1, bias=not norm))
        if norm:
            mods.append(nn.BatchNorm2d(c_out))
        if activation is not None:
            mods.append(activation())
    return nn.Sequential(*mods)

self.downs = nn.ModuleList()
c = in_channels
for level in range(depth):
    self.downs.append(double_conv(c, width * 2 ** level))
    c = width * 2 ** level
self.middle = double_conv(c, width * 2 ** depth)
self.ups = nn.ModuleList()
self.convs = nn.ModuleList()
for level in reversed(range(depth)):
    c_out = width * 2 ** level
    self.ups.append(nn.ConvTranspose2d(2 * c_out, c_out, kernel_size=2, stride=2))
    self.convs.append(double_conv(2 * c_out if skip == "concat" else c_out, c_out))
self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)""", """\
size = images.shape[-2:]
step = 2 ** self.depth
pad_h = (step - size[0] % step) % step
pad_w = (step - size[1] % step) % step
x = F.pad(images, (0, pad_w, 0, pad_h))
features = []
for down in self.downs:
    x = down(x)
    features.append(x)
    x = F.max_pool2d(x, 2)
x = self.middle(x)
for up, conv in zip(self.ups, self.convs):
    x = up(x)
    f = features.pop()
    if self.skip == "concat":
        x = torch.cat((x, f), 1)
    elif self.skip == "sum":
        x = x + f
    x = conv(x)
x = self.classifier(x)
return x[:, :, : size[0], : size[1]]"""],
    ],
    "dice_loss": [
        ["""\
num_classes = logits.shape[1]
valid = targets != ignore_index
probs = logits.softmax(dim=1) * valid.unsqueeze(1)
safe = torch.where(valid, targets, torch.zeros_like(targets)).long()
onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
onehot = onehot * valid.unsqueeze(1)
inter = (probs * onehot).sum(dim=(0, 2, 3))
total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
dice = (2 * inter + 1.0) / (total + 1.0)
return 1.0 - dice.mean()"""],
        ["""\
k = logits.size(1)
mask = (targets != ignore_index).unsqueeze(1).float()
p = torch.softmax(logits, dim=1) * mask
t = targets.clone()
t[targets == ignore_index] = 0
y = F.one_hot(t.long(), k).permute(0, 3, 1, 2).float() * mask
num = 2 * (p * y).sum((0, 2, 3)) + 1
den = p.sum((0, 2, 3)) + y.sum((0, 2, 3)) + 1
return 1 - (num / den).mean()"""],
        ["""\
probs = F.softmax(logits, 1)
valid = targets != ignore_index
scores = []
for c in range(logits.shape[1]):
    p = probs[:, c][valid]
    g = (targets[valid] == c).to(p.dtype)
    scores.append((2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1))
return 1 - torch.stack(scores).mean()"""],
    ],
}

# wrong variants and the checks they fail
WRONG: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "confusion_matrix": (["""\
index = num_classes * targets.flatten().long() + preds.flatten().long()
index = index[index < num_classes * num_classes]
return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)"""],
        ("1.2", "1.3", "1.4", "3.1")),
    "mean_iou": (["""\
cm = confmat.float()
iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
return iou, iou.mean().item()"""], ("2.2", "2.4", "3.1")),
    "dice_loss": (["""\
probs = logits.softmax(1)
onehot = F.one_hot(targets.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
inter = (probs * onehot).sum((0, 2, 3))
return 1 - (2 * inter / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)))).mean()"""],
        ("6.1", "6.3", "6.4", "6.5", "6.7")),
}

COMMENTS = ["# first attempt", "# vectorised", "# checked against the self-check cell",
            "# TODO: tidy up", "# see the lecture slides", "# works on CPU and GPU", ""]

# ----------------------------------------------------------------------------- free text
# Per question: ideas, each in several phrasings. Markdown on purpose (lists, bold, code).

IDEAS: list[list[list[str]]] = [
    [  # Q1: pixel accuracy vs mIoU
        ["Pixel accuracy is dominated by the big classes like road and sky.",
         "Most pixels belong to a few frequent classes, so accuracy mostly measures those.",
         "A model that ignores small classes still gets **high pixel accuracy**."],
        ["The mIoU averages per class, so every class has the same weight.",
         "mIoU computes an IoU for each class and then takes the mean: rare classes count as much as road.",
         "With the `mean_iou` every class contributes one term."],
        ["It penalises false positives as well as false negatives.",
         "IoU = TP / (TP + FP + FN) punishes both over- and under-segmentation."],
        ["It can still hide one terrible class if the others are good, so look at the worst class.",
         "- a single rare class at 0 IoU moves the mean only a little\n- the worst-class IoU shows it"],
        ["It also says nothing about separating instances.",
         "Two touching cars count as one blob for mIoU."],
    ],
    [  # Q2: down- then up-sampling
        ["Down-sampling grows the receptive field cheaply, so each output sees the whole object.",
         "Pooling and strides give **context**: a pixel can tell a cat's fur from a cushion.",
         "Every stride-2 step doubles the receptive field of the next 3x3 convolutions."],
        ["Full resolution everywhere would cost too much memory and compute.",
         "At full resolution the same context would need many more layers and far more memory."],
        ["We lose the precise location: boundaries and thin structures get blurry.",
         "The border class suffers most because it is thin.",
         "What is lost is *where* exactly things are, at stride 16 only a rough position is left."],
        ["FCN just up-samples bilinearly from stride 8, masks are blobby.",
         "FCN uses a dilated backbone and a bilinear up-sampling of the scores."],
        ["U-Net brings back detail with skip connections from the encoder.",
         "U-Net concatenates encoder features at each scale after a transposed convolution.",
         "In my ablation the network without skips lost most on the border class."],
    ],
    [  # Q3: FCN / U-Net / FPN vs SegFormer
        ["FCN, U-Net and FPN are CNNs: context grows slowly through the receptive field.",
         "The convolutional models only see locally and build context layer by layer."],
        ["SegFormer uses self-attention in every stage, so context is global from the start.",
         "In SegFormer each token attends to the whole image (keys reduced with `sr_ratio`)."],
        ["FPN has a top-down pathway with lateral connections and predicts at several scales.",
         "FPN merges a pyramid of features with 1x1 lateral convolutions."],
        ["SegFormer's decoder is only a few MLP layers because the encoder already sees far.",
         "The all-MLP decoder is light: project, up-sample to stride 4, concatenate, fuse."],
        ["Mix-FFN's depthwise 3x3 convolution replaces positional encodings.",
         "No positional encoding: the 3x3 depthwise conv in the FFN leaks position."],
    ],
    [  # Q4: CE vs weighted CE vs Dice
        ["Plain cross-entropy weights every pixel equally, so the thin border class is neglected.",
         "With cross-entropy the border class has the worst IoU since it has few pixels."],
        ["Weighted cross-entropy predicts border more often: recall goes up, false positives too.",
         "Inverse-frequency weights push the network towards the rare class."],
        ["Dice normalises each class by its size, so it matches IoU more directly.",
         "Dice gave me the best **worst-class IoU**."],
        ["On Cityscapes the imbalance is much stronger (poles, riders), so it matters more.",
         "I expect bigger differences on Cityscapes where road and building dominate."],
        ["At CPU scale the differences are within the noise of a single seed.",
         "My numbers differ by a couple of points only, one seed is not enough."],
    ],
]


# ----------------------------------------------------------------------------- the class


@dataclass
class Student:
    sid: str  # submission folder name, e.g. "submission_4103582"
    kind: str  # honest, partial, empty, renamed, reordered, answers
    variants: dict[str, int | str]  # exercise -> index into CORRECT, "wrong" or "stub"
    names: list[str]
    answers: list[str | None] = field(default_factory=list)  # None: not answered
    answer_below: bool = False  # wrote the first answer in a new cell under the prompt


@dataclass
class ClassExport:
    root: Path
    students: list[Student]
    planted: dict[str, tuple[str, str]]  # kind -> (original sid, copy sid)
    broken_check: str = "2.3"
    hard_check: str = "5.8"

    def by_kind(self, kind: str) -> list[Student]:
        return [s for s in self.students if s.kind == kind]


def _stub_cell_index(nb, name: str) -> int:
    for ci, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        if any(isinstance(s, (ast.FunctionDef, ast.ClassDef)) and s.name == name
               for s in tree.body):
            return ci
    raise LookupError(name)


def _fill(stub_source: str, bodies: list[str], comment: str) -> str:
    """Replace each ``# YOUR CODE HERE`` + ``raise NotImplementedError`` pair by a body."""
    lines = stub_source.splitlines()
    out, k, i = [], 0, 0
    while i < len(lines):
        if lines[i].strip() == nbmod.STUB[0] and i + 1 < len(lines) and \
                lines[i + 1].strip() == nbmod.STUB[1]:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            body = (comment + "\n" if comment else "") + bodies[k]
            out.extend(textwrap.indent(body, indent).splitlines())
            k += 1
            i += 2
            continue
        out.append(lines[i])
        i += 1
    assert k == len(bodies), f"{k} stubs, {len(bodies)} bodies"
    return "\n".join(out)


class _Renamer(ast.NodeTransformer):
    """Rename every local name assigned inside functions (what a copier does to hide a copy)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node


def rename_locals(source: str) -> str:
    """The cell re-formatted by ``ast.unparse`` with local variables and inner arguments renamed."""
    tree = ast.parse(source)
    public_args = set()
    local = set()
    for top in tree.body:
        for node in ast.walk(top):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    node is top or node.name in ("__init__", "forward")):
                public_args |= {a.arg for a in node.args.args + node.args.kwonlyargs}
        for node in ast.walk(top):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                local.add(node.id)
            elif isinstance(node, ast.arg):
                local.add(node.arg)
    local -= public_args | {"self"}
    mapping = {name: f"my_{name}_{len(name)}" for name in sorted(local)}
    return ast.unparse(_Renamer(mapping).visit(tree))


def _answer_text(rng: random.Random, q: int, *, n_ideas: int) -> str:
    ideas = rng.sample(range(len(IDEAS[q])), k=min(n_ideas, len(IDEAS[q])))
    parts = [rng.choice(IDEAS[q][i]) for i in sorted(ideas)]
    opener = rng.choice(["", "In short: ", "I think ", "From my table, "])
    return opener + " ".join(parts)


def _edit_answer(text: str) -> str:
    swaps = {"the ": "the ", "because": "since", "classes": "categories", "so ": "thus "}
    for old, new in swaps.items():
        text = text.replace(old, new, 1)
    return text + " (my own words)"


def _notebook_for(student_nb, stu: Student, rng: random.Random, questions: int):
    nb = nbformat.from_dict(json.loads(json.dumps(student_nb)))  # deep copy
    for name in EXERCISES:
        choice = stu.variants[name]
        if choice == "stub":
            continue
        bodies = WRONG[name][0] if choice == "wrong" else CORRECT[name][int(choice)]
        ci = _stub_cell_index(nb, name)
        nb.cells[ci].source = _fill(nb.cells[ci].source, bodies, rng.choice(COMMENTS))
    answer_cells = [c for c in nb.cells if nbmod.ANSWER_TAG in c.metadata.get("tags", [])]
    assert len(answer_cells) == questions
    for q, cell in enumerate(answer_cells):
        text = stu.answers[q]
        if text is None:
            continue
        if stu.answer_below and q == 0:  # left the prompt and wrote in a new cell below
            below = nbformat.v4.new_markdown_cell(text)
            nb.cells.insert(nb.cells.index(cell) + 1, below)
        elif rng.random() < 0.2:
            cell.source = nbmod.ANSWER_PROMPT + "\n\n" + text  # kept the prompt line
        else:
            cell.source = text
    return nb


def _copy_code(nb_from, how: str):
    nb = nbformat.from_dict(json.loads(json.dumps(nb_from)))
    cells = {name: _stub_cell_index(nb, name) for name in EXERCISES}
    if how == "comments":
        for ci in cells.values():
            nb.cells[ci].source = "\n".join(
                line for line in nb.cells[ci].source.splitlines()
                if not line.strip().startswith("#")).replace('"""', '"""Copied: ', 1)
        return nb
    for ci in cells.values():
        nb.cells[ci].source = rename_locals(nb.cells[ci].source)
    if how == "reordered":
        sources = [nb.cells[ci].source for ci in sorted(cells.values())]
        for ci in sorted(cells.values(), reverse=True):
            del nb.cells[ci]
        combined = nbformat.v4.new_code_cell("\n\n\n".join(reversed(sources)))
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first_code + 1, combined)
    return nb


def _honest_variant_tuples(rng: random.Random, n: int) -> list[tuple[int, ...]]:
    """n distinct choices of correct variants, any two differing in at least two exercises."""
    space = list(itertools.product(*(range(len(CORRECT[e])) for e in EXERCISES)))
    rng.shuffle(space)
    chosen: list[tuple[int, ...]] = []
    for t in space:
        if all(sum(a != b for a, b in zip(t, c)) >= 2 for c in chosen):
            chosen.append(t)
        if len(chosen) == n:
            return chosen
    raise ValueError(f"cannot choose {n} honest students")


FIRST = ["Ada", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kemal", "Lena", "Mina", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara",
         "Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe", "Aksel", "Bea", "Cyril", "Dana",
         "Emil", "Fatou", "Gil", "Hana", "Ivo", "Jade", "Kofi", "Lior"]


def build_class(n: int = 34, seed: int = 7) -> list[Student]:
    """The class: n students (>= 12) of every kind listed in the module docstring."""
    rng = random.Random(seed)
    n_partial = max(4, n // 6)
    n_honest = n - n_partial - 4  # empty + 3 planted copies
    ids = rng.sample(range(4_000_000, 4_999_999), n)
    sids = [f"submission_{i}" for i in ids]
    students: list[Student] = []
    for k, t in enumerate(_honest_variant_tuples(rng, n_honest)):
        students.append(Student(sids[k], "honest", dict(zip(EXERCISES, t)), []))
    for _ in range(n_partial):
        v: dict[str, int | str] = {e: rng.randrange(len(CORRECT[e])) for e in EXERCISES}
        for e in rng.sample(EXERCISES, k=rng.randint(1, 3)):
            v[e] = "wrong" if e in WRONG and rng.random() < 0.5 else "stub"
        students.append(Student(sids[len(students)], "partial", v, []))
    students.append(Student(sids[len(students)], "empty", dict.fromkeys(EXERCISES, "stub"), []))
    for q in range(len(IDEAS)):
        for stu in students:
            if stu.kind == "empty" or (stu.kind == "partial" and rng.random() < 0.3):
                stu.answers.append(None)
            else:
                stu.answers.append(_answer_text(rng, q, n_ideas=rng.randint(2, 3)))
    below = students[n_honest]  # a partial student who answered Q1 under the prompt cell
    below.answer_below = True
    below.answers[0] = below.answers[0] or _answer_text(rng, 0, n_ideas=2)
    for kind, src in (("renamed", 0), ("reordered", 1), ("answers", 2)):
        original = students[src]
        answers = ([_edit_answer(a) if a else a for a in original.answers] if kind == "answers"
                   else [_answer_text(rng, q, n_ideas=2) for q in range(len(IDEAS))])
        students.append(Student(sids[len(students)], kind, dict(original.variants), [],
                                answers=answers))
    for k, stu in enumerate(students):
        stu.names = [f"{FIRST[k % len(FIRST)]} Student{k:02d}"]
    students[3].names.append("Partner Groupmate")  # a group submission
    return students


def write_export(root: Path, n: int = 34, *, seed: int = 7, results: bool = True) -> ClassExport:
    """Write the export (see module docstring); returns what was planted."""
    master = nbmod.read_notebook(LAB.master_path)
    student_nb = nbmod.make_student(master)
    questions = sum(nbmod.ANSWER_TAG in c.metadata.get("tags", []) for c in student_nb.cells)
    assert questions == len(IDEAS), "the factory's free-text ideas follow lab02's questions"
    students = build_class(n, seed)
    rng = random.Random(seed + 1)
    root.mkdir(parents=True, exist_ok=True)
    notebooks = {}
    planted: dict[str, tuple[str, str]] = {}
    originals = {"renamed": 0, "reordered": 1, "answers": 2}
    for stu in students:
        if stu.kind in originals:
            src = students[originals[stu.kind]]
            nb = _copy_code(notebooks[src.sid], "comments" if stu.kind == "answers" else stu.kind)
            answer_cells = [c for c in nb.cells if nbmod.ANSWER_TAG in c.metadata.get("tags", [])]
            for cell, text in zip(answer_cells, stu.answers):
                cell.source = text if text else nbmod.ANSWER_PROMPT
            planted[stu.kind] = (src.sid, stu.sid)
        else:
            nb = _notebook_for(student_nb, stu, rng, questions)
        notebooks[stu.sid] = nb
        folder = root / stu.sid
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / LAB.notebook_name))
    (root / "submission_metadata.yml").write_text(_metadata_yml(students))
    export = ClassExport(root, students, planted)
    if results:
        write_results(export, rng)
    return export


def _metadata_yml(students: list[Student]) -> str:
    lines = []
    for k, stu in enumerate(students):
        lines += [f"{stu.sid}:", "  :submitters:"]
        for j, name in enumerate(stu.names):
            first = name.split()[0].lower()
            lines += [f"  - :name: {name}", f"    :sid: '{20260000 + 10 * k + j}'",
                      f"    :email: {first}{k}@example.edu"]
        lines += ["  :created_at: 2026-03-02 17:55:01.000000000 -08:00", "  :score: 0.0"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- results.json

CHECKS: list[tuple[str, str, float, str]] = [
    ("1.1", "confusion_matrix: 2x2 image, 3 classes (rows = targets, columns = preds)", 2, "visible"),
    ("1.2", "confusion_matrix: random batch with ignored pixels", 2, "visible"),
    ("1.3", "confusion_matrix: honours a non-default ignore_index", 1, "after_due_date"),
    ("1.4", "confusion_matrix: every pixel ignored gives an all-zero matrix", 1, "after_due_date"),
    ("1.5", "confusion_matrix: classes absent from the batch still get rows and columns", 1, "after_due_date"),
    ("2.1", "mean_iou: 3x3 confusion matrix", 2, "visible"),
    ("2.2", "mean_iou: a class absent from targets and predictions is NaN, excluded from the mean", 2, "visible"),
    ("2.3", "mean_iou: only one class present", 1, "after_due_date"),
    ("2.4", "mean_iou: empty confusion matrix gives all NaN and a NaN mIoU", 1, "after_due_date"),
    ("2.5", "mean_iou: 19-class random confusion matrix", 1, "after_due_date"),
    ("3.1", "confusion_matrix + mean_iou accumulated over batches (dataset-level mIoU)", 2, "after_due_date"),
    ("4.1", 'build_fcn: output dict "out"/"aux" of shape (B,K,H,W); both last layers predict K', 2, "visible"),
    ("4.2", "build_fcn: parameter count and output stride 8 (weights=None)", 1, "visible"),
    ("4.3", "build_fcn: 19 classes at an odd input size (45x61)", 1, "after_due_date"),
    ("5.1", "UNet: parameter and module counts (width 8, depth 2, concat), forward and gradients", 2, "visible"),
    ("5.2", "UNet: output (B,K,37,53) for a 37x53 input", 1, "visible"),
    ("5.3", 'UNet: skip="sum" (structure, forward at 21x19)', 1, "after_due_date"),
    ("5.4", "UNet: skip=None (structure, forward at 21x19)", 1, "after_due_date"),
    ("5.5", "UNet: norm=False (no BatchNorm, convolutions with bias)", 1, "after_due_date"),
    ("5.6", "UNet: act=None and act='gelu'", 1, "after_due_date"),
    ("5.7", "UNet: other widths, depths, channels and classes (forward at 29x35, depth 4)", 1, "after_due_date"),
    ("5.8", "UNet: ValueError for an unknown skip or act", 1, "after_due_date"),
    ("6.1", "dice_loss: value on a random batch with ignored pixels (3 classes)", 2, "visible"),
    ("6.2", "dice_loss: gradient with respect to the logits", 1, "visible"),
    ("6.3", "dice_loss: 19 classes, 30% ignored (value and gradient)", 1, "after_due_date"),
    ("6.4", "dice_loss: honours a non-default ignore_index", 1, "after_due_date"),
    ("6.5", "dice_loss: classes absent from the targets still count in the mean over K", 1, "after_due_date"),
    ("6.6", "dice_loss: a perfect prediction gives (almost) 0", 1, "after_due_date"),
    ("6.7", "dice_loss: an all-ignored batch gives 0 with a finite gradient", 1, "after_due_date"),
]
SECTION_EXERCISES = {"1": ("confusion_matrix",), "2": ("mean_iou",),
                     "3": ("confusion_matrix", "mean_iou"), "4": ("build_fcn",),
                     "5": ("UNet",), "6": ("dice_loss",)}


def synthetic_results(stu: Student, rng: random.Random, *, broken: str = "2.3",
                      hard: str = "5.8") -> dict:
    """What the grader would write for this student (Gradescope results.json format)."""
    tests = []
    for number, name, weight, visibility in CHECKS:
        section = number.split(".")[0]
        ok = True
        for ex in SECTION_EXERCISES[section]:
            choice = stu.variants[ex]
            if choice == "stub" or (choice == "wrong" and number in WRONG[ex][1]):
                ok = False
        if number == broken:
            ok = False
        if number == hard and ok and rng.random() < 0.2:
            ok = False
        output = "" if ok else ("NotImplementedError" if any(
            stu.variants[e] == "stub" for e in SECTION_EXERCISES[section]) else "wrong values")
        tests.append({"name": name, "number": number, "score": float(weight) if ok else 0.0,
                      "max_score": float(weight), "visibility": visibility, "output": output})
    return {"score": sum(t["score"] for t in tests), "execution_time": round(rng.uniform(3, 6), 2),
            "output": "synthetic", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests}


def write_results(export: ClassExport, rng: random.Random) -> None:
    for stu in export.students:
        data = synthetic_results(stu, rng, broken=export.broken_check, hard=export.hard_check)
        (export.root / stu.sid / "results.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":  # python tests/grading/export_factory.py OUT [N]
    import sys

    out = write_export(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 34)
    print(f"{len(out.students)} submissions in {out.root}; planted: {out.planted}")
