"""Writers of miniature datasets in the exact on-disk formats of the real ones, for tests and smoke runs.

Each ``write_fake_*`` writes under ``root`` the layout the matching loader reads (pass the same
``root`` to the loader), returns ``root``, and is deterministic for a given ``seed``. Images hold
learnable structure: masks, boxes and labels come from the shapes drawn into them. Segmentation and
detection sets are here; CIFAR-100 and (Fashion-)MNIST in :mod:`labkit.data.fake_classification`
(re-exported).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

from labkit.data.cityscapes import CITYSCAPES_LABELS
from labkit.data.fake_classification import (  # noqa: F401  (re-exported: one place for fixtures)
    CIFAR100_COARSE_NAMES,
    CIFAR100_FINE_NAMES,
    CIFAR100_FINE_TO_COARSE,
    write_fake_cifar100,
    write_fake_fashion_mnist,
    write_fake_mnist,
)
from labkit.data.shapes import box_of, draw_scene, textured_background
from labkit.data.voc import VOC_CLASSES

# (breed, CLASS-ID, SPECIES, BREED-ID) as in the official list.txt: capitalised breeds are cats
PETS_FAKE_BREEDS = (("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1), ("Bengal", 6, 1, 2))
PETS_LIST_HEADER = (
    "#Image CLASS-ID SPECIES BREED ID\n"
    "#ID: 1:37 Class ids\n"
    "#SPECIES: 1:Cat 2:Dog\n"
    "#BREED ID: 1-25:Cat 1:12:Dog\n"
    "#All images with 1st letter as captial are cat images\n"
    "#images with small first letter are dog images\n"
)


def _save_rgb(array: np.ndarray, path: Path, **kwargs: object) -> None:
    """Save a float (H,W,3) array in [0,1] as an 8-bit image (format from the extension or kwargs)."""
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path, **kwargs)


# ---------------------------------------------------------------- Oxford-IIIT Pet


def write_fake_pets(
    root: str | os.PathLike, *, n: int = 12, seed: int = 0, quirks: bool = True
) -> Path:
    """Write ``root/oxford-iiit-pet`` (images/*.jpg, annotations/trimaps/*.png, trainval/test/list.txt).

    Half of each breed goes to trainval, the rest to test. With ``quirks``, like the real data,
    the first image is a GIF and the second an RGBA PNG, both named ``.jpg``.
    """
    root = Path(root)
    base = root / "oxford-iiit-pet"
    img_dir, tri_dir = base / "images", base / "annotations" / "trimaps"
    img_dir.mkdir(parents=True, exist_ok=True)
    tri_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_breed = {b[0]: 0 for b in PETS_FAKE_BREEDS}
    rows: list[tuple[str, str]] = []  # (split, line)
    for i in range(n):
        breed, class_id, species, breed_id = PETS_FAKE_BREEDS[i % len(PETS_FAKE_BREEDS)]
        per_breed[breed] += 1
        image_id = f"{breed}_{per_breed[breed]}"
        h, w = int(rng.integers(40, 72)), int(rng.integers(40, 72))
        yy, xx = np.mgrid[0:h, 0:w]
        cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
        ry, rx = rng.uniform(0.2, 0.35) * h, rng.uniform(0.2, 0.35) * w
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)  # 1 on the pet's outline
        trimap = np.full((h, w), 2, dtype=np.uint8)
        trimap[d <= 1.15] = 3
        trimap[d <= 0.85] = 1
        image = textured_background(h, w, rng)
        fur = np.array([0.75, 0.45, 0.2]) if species == 1 else np.array([0.85, 0.8, 0.7])
        inside = d <= 1.0
        image[inside] = np.clip(fur + rng.normal(0, 0.06, size=(int(inside.sum()), 3)), 0, 1)
        path = img_dir / f"{image_id}.jpg"
        if quirks and i == 0:
            _save_rgb(image, path, format="GIF")
        elif quirks and i == 1:
            rgba = np.concatenate([image, np.ones((h, w, 1))], axis=2)
            Image.fromarray((rgba * 255).round().astype(np.uint8)).save(path, format="PNG")
        else:
            _save_rgb(image, path, format="JPEG", quality=90)
        Image.fromarray(trimap).save(tri_dir / f"{image_id}.png")
        split = "trainval" if per_breed[breed] % 2 == 1 else "test"
        rows.append((split, f"{image_id} {class_id} {species} {breed_id}\n"))
    ann = base / "annotations"
    for split in ("trainval", "test"):
        (ann / f"{split}.txt").write_text("".join(line for s, line in rows if s == split))
    (ann / "list.txt").write_text(PETS_LIST_HEADER + "".join(line for _, line in rows))
    return root


# ---------------------------------------------------------------- Cityscapes

_CS_ID = {lb.name: lb.id for lb in CITYSCAPES_LABELS}
_CS_COLOR = {lb.id: lb.color for lb in CITYSCAPES_LABELS if lb.id >= 0}


def _cityscapes_scene(
    h: int, w: int, rng: np.random.Generator
) -> list[tuple[str, list[tuple[float, float]]]]:
    """Polygons (label name, [(x, y), ...]) back to front for one street scene of size (H,W)."""
    horizon = h * rng.uniform(0.35, 0.5)
    polys: list[tuple[str, list[tuple[float, float]]]] = [
        ("sky", [(0, 0), (w, 0), (w, horizon), (0, horizon)]),
    ]
    x = 0.0
    while x < w:  # buildings and trees along the horizon
        bw = w * rng.uniform(0.1, 0.25)
        top = horizon * rng.uniform(0.1, 0.7)
        name = "vegetation" if rng.random() < 0.3 else "building"
        polys.append((name, [(x, top), (x + bw, top), (x + bw, horizon), (x, horizon)]))
        x += bw
    polys.append(("sidewalk", [(0, horizon), (w, horizon), (w, h), (0, h)]))
    polys.append(("road", [(w * 0.35, horizon), (w * 0.65, horizon), (w * 0.95, h), (w * 0.05, h)]))
    polys.append(("terrain", [(0, h * 0.8), (w * 0.1, h * 0.8), (0, h)]))
    pole_x = w * rng.uniform(0.8, 0.9)
    polys.append(("pole", [(pole_x, horizon * 0.5), (pole_x + 2, horizon * 0.5),
                           (pole_x + 2, h * 0.75), (pole_x, h * 0.75)]))  # fmt: skip
    polys.append(("traffic sign", [(pole_x - 3, horizon * 0.5), (pole_x + 5, horizon * 0.5),
                                   (pole_x + 5, horizon * 0.5 + 6), (pole_x - 3, horizon * 0.5 + 6)]))  # fmt: skip
    for _ in range(int(rng.integers(1, 4))):
        cw, ch = w * rng.uniform(0.1, 0.18), h * rng.uniform(0.1, 0.18)
        cx, cy = w * rng.uniform(0.3, 0.6), h * rng.uniform(0.6, 0.8)
        polys.append(("car", [(cx, cy), (cx + cw, cy), (cx + cw, cy + ch), (cx, cy + ch)]))
    px, py = w * rng.uniform(0.02, 0.2), h * rng.uniform(0.5, 0.6)
    polys.append(("person", [(px, py), (px + 4, py), (px + 4, py + h * 0.2), (px, py + h * 0.2)]))
    polys.append(("parking", [(w * 0.7, h * 0.9), (w * 0.8, h * 0.9), (w * 0.8, h), (w * 0.7, h)]))
    polys.append(("ego vehicle", [(0, h * 0.94), (w, h * 0.94), (w, h), (0, h)]))
    return polys


def _rasterize(polys: list[tuple[str, list]], h: int, w: int) -> tuple[Image.Image, np.ndarray, list]:
    """Named polygons painted in order -> labelIds image (L), instanceIds (uint16), polygon objects."""
    label_img = Image.new("L", (w, h), 0)
    inst = np.zeros((h, w), dtype=np.uint16)
    draw = ImageDraw.Draw(label_img)
    counts: dict[int, int] = {}
    objects = []
    for name, pts in polys:
        lid = _CS_ID[name]
        draw.polygon(pts, fill=lid)
        m = Image.new("1", (w, h), 0)
        ImageDraw.Draw(m).polygon(pts, fill=1)
        sel = np.asarray(m)
        if lid >= 24:  # instance classes: person .. bicycle
            k = counts.get(lid, 0)
            counts[lid] = k + 1
            inst[sel] = lid * 1000 + k
        else:
            inst[sel] = lid
        objects.append({"label": name, "polygon": [[round(px), round(py)] for px, py in pts]})
    return label_img, inst, objects


def write_fake_cityscapes(
    root: str | os.PathLike,
    *,
    split: str = "val",
    n: int = 4,
    size: tuple[int, int] = (64, 128),
    seed: int = 0,
    cities: tuple[str, ...] = ("frankfurt", "lindau"),
) -> Path:
    """Write ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``root/gtFine/...`` label files.

    Per frame: ``_gtFine_labelIds.png`` (uint8), ``_instanceIds.png`` (uint16, id*1000+k for
    instance classes), ``_color.png`` and ``_polygons.json``, as in gtFine_trainvaltest.zip.
    """
    root = Path(root)
    h, w = size
    rng = np.random.default_rng(seed)
    for i in range(n):
        city = cities[i % len(cities)]
        stem = f"{city}_{i // len(cities):06d}_{19 + 10 * i:06d}"
        img_dir = root / "leftImg8bit" / split / city
        gt_dir = root / "gtFine" / split / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        label_img, inst, objects = _rasterize(_cityscapes_scene(h, w, rng), h, w)
        labels = np.asarray(label_img)
        image = textured_background(h, w, rng) * 0.4
        for lid in np.unique(labels):
            sel = labels == lid
            base = np.asarray(_CS_COLOR[int(lid)], dtype=np.float32) / 255.0
            image[sel] += 0.6 * base + rng.normal(0, 0.03, size=(int(sel.sum()), 3))
        _save_rgb(image, img_dir / f"{stem}_leftImg8bit.png")
        label_img.save(gt_dir / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(inst).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
        color = np.zeros((h, w, 4), dtype=np.uint8)
        color[..., 3] = 255
        for lid in np.unique(labels):
            color[labels == lid, :3] = _CS_COLOR[int(lid)]
        Image.fromarray(color).save(gt_dir / f"{stem}_gtFine_color.png")
        meta = {"imgHeight": h, "imgWidth": w, "objects": objects}
        (gt_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps(meta, indent=4))
    return root


# ---------------------------------------------------------------- PASCAL VOC


def _voc_xml(folder: str, filename: str, w: int, h: int, objects: list[dict]) -> str:
    parts = [
        "<annotation>",
        f"\t<folder>{folder}</folder>",
        f"\t<filename>{escape(filename)}</filename>",
        "\t<source>",
        f"\t\t<database>The {folder} Database</database>",
        f"\t\t<annotation>PASCAL {folder}</annotation>",
        "\t\t<image>flickr</image>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{w}</width>",
        f"\t\t<height>{h}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for o in objects:
        x1, y1, x2, y2 = o["bndbox"]
        parts += [
            "\t<object>",
            f"\t\t<name>{o['name']}</name>",
            "\t\t<pose>Unspecified</pose>",
            "\t\t<truncated>0</truncated>",
            f"\t\t<difficult>{int(o['difficult'])}</difficult>",
            "\t\t<bndbox>",
            f"\t\t\t<xmin>{x1}</xmin>",
            f"\t\t\t<ymin>{y1}</ymin>",
            f"\t\t\t<xmax>{x2}</xmax>",
            f"\t\t\t<ymax>{y2}</ymax>",
            "\t\t</bndbox>",
            "\t</object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_fake_voc(
    root: str | os.PathLike, *, n: int = 6, size: tuple[int, int] = (48, 64), seed: int = 0
) -> Path:
    """Write ``root/VOCdevkit/VOC2007`` (trainval, test) and ``VOC2012`` (val) with ``n`` images per set.

    Each set has JPEGImages/<id>.jpg, Annotations/<id>.xml (1-based inclusive corners, a
    ``difficult`` flag on some objects, always on the second image's first object) and
    ImageSets/Main/<set>.txt; VOC2007 also gets train/val.txt, VOC2012 train/trainval.txt.
    """
    root = Path(root)
    h, w = size
    rng = np.random.default_rng(seed)
    for year, sets in (("2007", ("trainval", "test")), ("2012", ("val",))):
        voc = root / "VOCdevkit" / f"VOC{year}"
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (voc / sub).mkdir(parents=True, exist_ok=True)
        ids_by_set: dict[str, list[str]] = {}
        counter = 0
        for image_set in sets:
            ids = []
            for i in range(n):
                counter += 1
                image_id = f"{counter * 3 - 1:06d}" if year == "2007" else f"2008_{counter:06d}"
                image, _, shapes = draw_scene(h, w, rng)
                objects = []
                for j, (_, m) in enumerate(shapes):
                    name = VOC_CLASSES[int(rng.integers(0, len(VOC_CLASSES)))]
                    x1, y1, x2, y2 = (int(v) for v in box_of(m))
                    difficult = (i == 1 and j == 0) or bool(rng.random() < 0.2)
                    # VOC stores 1-based inclusive pixel corners
                    objects.append(
                        {"name": name, "difficult": difficult, "bndbox": (x1 + 1, y1 + 1, x2, y2)}
                    )
                _save_rgb(image, voc / "JPEGImages" / f"{image_id}.jpg", quality=92)
                xml = _voc_xml(f"VOC{year}", f"{image_id}.jpg", w, h, objects)
                (voc / "Annotations" / f"{image_id}.xml").write_text(xml)
                ids.append(image_id)
            ids_by_set[image_set] = ids
        if year == "2007":
            tv = ids_by_set["trainval"]
            ids_by_set["train"], ids_by_set["val"] = tv[: n // 2], tv[n // 2 :]
        else:
            ids_by_set["train"] = []
            ids_by_set["trainval"] = ids_by_set["val"]
        for image_set, ids in ids_by_set.items():
            (voc / "ImageSets" / "Main" / f"{image_set}.txt").write_text(
                "".join(f"{i}\n" for i in ids)
            )
    return root
