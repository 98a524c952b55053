"""Tiny synthetic datasets written in torchvision's on-disk formats.

The tests (and ``make test`` on a machine without the real data) use these so that
every loader path runs offline. The images are class-dependent colour blobs plus
noise, so that a small network learns them in a few steps. Loading them needs
``VINET_SYNTHETIC_DATA=1``, which turns off torchvision's md5 checks.

    python -m vinet_utils.workflow.synthetic <root> [--train 500 --test 200]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np


def _images(n: int, num_classes: int, channels: int, size: int, seed: int):
    proto = np.random.default_rng(1234)  # class prototypes are shared by every split
    base = proto.uniform(40, 215, size=(num_classes, channels)).astype(np.float32)
    centres = proto.uniform(8, size - 8, size=(num_classes, 2))
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    rng.shuffle(y)
    yy, xx = np.mgrid[:size, :size]
    x = rng.normal(0, 25, size=(n, size, size, channels)).astype(np.float32)
    for k in range(num_classes):
        blob = np.exp(-((yy - centres[k, 0]) ** 2 + (xx - centres[k, 1]) ** 2) / 40.0)
        x[y == k] += base[k] * (0.4 + 0.6 * blob[..., None])
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def write_cifar(root: str | Path, num_classes: int = 10, n_train: int = 500,
                n_test: int = 200, seed: int = 0) -> Path:
    """A CIFAR-10 (``num_classes=10``) or CIFAR-100 (100) folder under ``root``."""
    root = Path(root)
    folder = root / ("cifar-10-batches-py" if num_classes == 10 else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr = _images(n_train, num_classes, 3, 32, seed)
    xte, yte = _images(n_test, num_classes, 3, 32, seed + 1)
    names = [f"class{k}" for k in range(num_classes)]

    def dump(name, x, y):
        key = "labels" if num_classes == 10 else "fine_labels"
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), key: y.tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)

    if num_classes == 10:
        parts = np.array_split(np.arange(n_train), 5)
        for i, idx in enumerate(parts, 1):
            dump(f"data_batch_{i}", xtr[idx], ytr[idx])
        dump("test_batch", xte, yte)
        meta = {"label_names": names}
        meta_name = "batches.meta"
    else:
        dump("train", xtr, ytr)
        dump("test", xte, yte)
        meta = {"fine_label_names": names}
        meta_name = "meta"
    with open(folder / meta_name, "wb") as f:
        pickle.dump(meta, f)
    return root


def write_fashion_mnist(root: str | Path, n_train: int = 500, n_test: int = 200,
                        seed: int = 0) -> Path:
    """Uncompressed IDX files under ``root/FashionMNIST/raw``."""
    raw = Path(root) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        x, y = _images(n, 10, 1, 28, s)
        with open(raw / f"{split}-images-idx3-ubyte", "wb") as f:
            f.write(np.array([0x803, n, 28, 28], dtype=">i4").tobytes() + x[..., 0].tobytes())
        with open(raw / f"{split}-labels-idx1-ubyte", "wb") as f:
            f.write(np.array([0x801, n], dtype=">i4").tobytes() + y.astype(np.uint8).tobytes())
    return Path(root)


def main(argv=None):
    ap = argparse.ArgumentParser(description="write tiny synthetic datasets")
    ap.add_argument("root")
    ap.add_argument("--train", type=int, default=500)
    ap.add_argument("--test", type=int, default=200)
    a = ap.parse_args(argv)
    write_cifar(a.root, 10, a.train, a.test)
    write_cifar(a.root, 100, a.train, a.test)
    write_fashion_mnist(a.root, a.train, a.test)
    print(a.root)


if __name__ == "__main__":
    main()
