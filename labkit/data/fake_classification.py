"""Writers of miniature classification datasets (CIFAR-100, MNIST, Fashion-MNIST) in the exact
on-disk formats of the real ones; see :mod:`labkit.data.fake`.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np

from labkit.data.shapes import shape_mask, textured_background

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
