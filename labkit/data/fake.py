"""Writers of miniature datasets in the exact on-disk formats of the real ones, for tests and smoke runs.

Each ``write_fake_*`` writes under ``root`` the layout the matching loader reads (pass the same
``root`` to the loader), returns ``root``, and is deterministic for a given ``seed``. Images hold
learnable structure: masks, boxes and labels come from the shapes drawn into them.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

from labkit.data.cityscapes import CITYSCAPES_LABELS
from labkit.data.shapes import box_of, draw_scene, shape_mask, textured_background
from labkit.data.voc import VOC_CLASSES

CIFAR100_FINE_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)  # fmt: skip
CIFAR100_FINE_TO_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
    3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
    2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)  # fmt: skip

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
        polys = _cityscapes_scene(h, w, rng)
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
            poly = [[round(px), round(py)] for px, py in pts]
            objects.append({"label": name, "polygon": poly})
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


# ---------------------------------------------------------------- CIFAR-100


def _cifar_image(fine: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (3072,) row in CIFAR order (R plane, G plane, B plane) with a class-coloured shape."""
    hue = np.array([(fine * 37) % 100, (fine * 61) % 100, (fine * 83) % 100]) / 100.0
    img = textured_background(32, 32, rng)
    m = shape_mask(1 + fine % 3, 32, 32, rng)
    img[m] = np.clip(hue + rng.normal(0, 0.05, size=(int(m.sum()), 3)), 0, 1)
    u8 = (img * 255).round().astype(np.uint8)  # (32, 32, 3)
    return u8.transpose(2, 0, 1).reshape(-1)


def write_fake_cifar100(
    root: str | os.PathLike, *, n_train: int = 50, n_test: int = 20, seed: int = 0
) -> Path:
    """Write ``root/cifar-100-python/{train,test,meta}`` pickles in the original python layout."""
    root = Path(root)
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [int(f) for f in rng.integers(0, 100, size=n)]
        data = (
            np.stack([_cifar_image(f, rng) for f in fine]) if n else np.zeros((0, 3072), np.uint8)
        )
        entry = {
            "filenames": [f"{CIFAR100_FINE_NAMES[f]}_s_{i:06d}.png" for i, f in enumerate(fine)],
            "batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1",
            "fine_labels": fine,
            "coarse_labels": [CIFAR100_FINE_TO_COARSE[f] for f in fine],
            "data": data.astype(np.uint8),
        }
        with open(base / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {
        "fine_label_names": list(CIFAR100_FINE_NAMES),
        "coarse_label_names": list(CIFAR100_COARSE_NAMES),
    }
    with open(base / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
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


# ---------------------------------------------------------------- MNIST and Fashion-MNIST

# 5x7 digit glyphs, '#' = ink
_DIGITS = (
    (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
)  # fmt: skip
# 7x7 clothing silhouettes in Fashion-MNIST class order
_CLOTHES = (
    ("##   ##", "#######", " ##### ", " ##### ", " ##### ", " ##### ", "       "),  # T-shirt/top
    (" ##### ", " ##### ", " ## ## ", " ## ## ", " ## ## ", " ## ## ", " ## ## "),  # Trouser
    ("### ###", "#######", "#######", "# ### #", "# ### #", "# ### #", "  ###  "),  # Pullover
    ("  ###  ", "  ###  ", "  ###  ", " ##### ", " ##### ", "#######", "#######"),  # Dress
    ("### ###", "#######", "### ###", "# # # #", "# # # #", "# # # #", "  # #  "),  # Coat
    ("       ", "       ", "       ", "#  #  #", "#######", "       ", "       "),  # Sandal
    ("## # ##", "#######", " ## ## ", " ##### ", " ##### ", " ##### ", " ##### "),  # Shirt
    ("       ", "       ", "   ##  ", "  #### ", "#######", "#######", "       "),  # Sneaker
    ("  ###  ", " #   # ", "#######", "#######", "#######", "#######", "#######"),  # Bag
    ("   ### ", "   ### ", "   ### ", "   ### ", "###### ", "#######", "#######"),  # Ankle boot
)  # fmt: skip


def _glyph_image(glyph: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """uint8 (28,28) image: the glyph upscaled, jittered in position and intensity, plus noise."""
    g = np.array([[c == "#" for c in row] for row in glyph], dtype=np.float32)
    scale = 3
    big = np.kron(g, np.ones((scale, scale), dtype=np.float32))
    gh, gw = big.shape
    canvas = np.zeros((28, 28), dtype=np.float32)
    y0 = int(rng.integers(0, 28 - gh + 1))
    x0 = int(rng.integers(0, 28 - gw + 1))
    canvas[y0 : y0 + gh, x0 : x0 + gw] = big * rng.uniform(0.7, 1.0)
    canvas += rng.normal(0, 0.05, size=canvas.shape)
    return (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an idx-ubyte file (magic 0x0000_08_<ndim>, big-endian int32 dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_idx_dataset(
    root: Path,
    folder: str,
    glyphs: tuple[tuple[str, ...], ...],
    n_train: int,
    n_test: int,
    seed: int,
) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = (
            np.stack([_glyph_image(glyphs[k], rng) for k in labels])
            if n
            else np.zeros((0, 28, 28), np.uint8)
        )
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def write_fake_mnist(
    root: str | os.PathLike, *, n_train: int = 60, n_test: int = 20, seed: int = 0
) -> Path:
    """Write ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with 28x28 digit glyphs."""
    return _write_idx_dataset(Path(root), "MNIST", _DIGITS, n_train, n_test, seed)


def write_fake_fashion_mnist(
    root: str | os.PathLike, *, n_train: int = 60, n_test: int = 20, seed: int = 0
) -> Path:
    """Write ``root/FashionMNIST/raw/...-ubyte`` files with 28x28 clothing silhouettes."""
    return _write_idx_dataset(Path(root), "FashionMNIST", _CLOTHES, n_train, n_test, seed)
