"""The copies of a dataset that are not torchvision's archive: a class-folder PNG tree
(checked, decoded once and cached beside it) and a packed copy (:func:`vinet_utils.network.data.pack`),
with the fingerprint that says two copies hold the same images."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from vinet_utils.common.results import REPO_ROOT

STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "fashionmnist": ((0.2860,), (0.3530,)),
}
PNG_TREES = {"cifar100": ("cifar-100-png", 100, 500, 100, 32)}
STATS_TOLERANCE = 1e-3

class DataCheckError(ValueError):
    """A dataset on disk is not what it should be (counts, image size, statistics)."""


def fingerprint(splits) -> str:
    """A hash of ``[(x, y), ...]`` (uint8 images, labels) that ignores the images'
    order within a split: each image is hashed with its label, the digests are sorted,
    and the sorted list of every split is hashed in turn."""
    total = hashlib.sha256()
    for x, y in splits:
        flat = np.ascontiguousarray(np.asarray(x, dtype=np.uint8).reshape(len(x), -1))
        labels = np.asarray(y, dtype=np.int64)
        digests = sorted(hashlib.blake2b(row.tobytes() + int(label).to_bytes(8, "little"),
                                         digest_size=16).digest()
                         for row, label in zip(flat, labels))
        total.update(len(digests).to_bytes(8, "little"))
        total.update(b"".join(digests))
    return "sha256:" + total.hexdigest()[:24]


def _png_listing(tree: Path, name: str) -> tuple[list, dict]:
    """The class names and ``{split: [(path, label), ...]}`` of the PNG tree at
    ``tree``, after checking its class and image counts; a ``DataCheckError`` says
    which check failed and where."""
    _, n_classes, n_train, n_test, _ = PNG_TREES[name]
    listing, classes = {}, None
    for split, per_class in (("train", n_train), ("test", n_test)):
        folder = tree / split
        found = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        if len(found) != n_classes:
            raise DataCheckError(f"{name} PNG tree: {folder} should hold {n_classes} class "
                                 f"folders, found {len(found)}")
        if classes is not None and found != classes:
            raise DataCheckError(f"{name} PNG tree: the class folders of {folder} differ "
                                 f"from those of {tree / 'train'}")
        classes, items = found, []
        for label, cls in enumerate(classes):
            files = sorted((folder / cls).glob("*.png"))
            if len(files) != per_class:
                raise DataCheckError(f"{name} PNG tree: {folder / cls} should hold {per_class} "
                                     f"PNG images, found {len(files)}")
            items.extend((f, label) for f in files)
        listing[split] = items
    return classes, listing


def _decode_pngs(items: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``[(path, label), ...]`` into uint8 (N, size, size, 3) and int64 labels;
    every image must be ``size`` x ``size`` RGB."""
    from PIL import Image

    x = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        with Image.open(path) as im:
            if im.size != (size, size) or im.mode != "RGB":
                raise DataCheckError(f"PNG tree: {path} is {im.size[0]}x{im.size[1]} {im.mode}, "
                                     f"not {size}x{size} RGB")
            x[i] = np.asarray(im)
    return x, np.array([label for _, label in items], dtype=np.int64)


def _check_stats(name: str, x: np.ndarray, where: Path) -> None:
    """The training images' channel means and standard deviations must be within
    ``STATS_TOLERANCE`` of the published ones."""
    pixels = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    mean, std = pixels.mean(0), pixels.std(0)
    want_mean, want_std = (np.array(v) for v in STATS[name])
    if (np.abs(mean - want_mean).max() > STATS_TOLERANCE
            or np.abs(std - want_std).max() > STATS_TOLERANCE):
        raise DataCheckError(
            f"{name} PNG tree: the training images in {where} have channel means "
            f"{np.round(mean, 4).tolist()} and standard deviations {np.round(std, 4).tolist()}; "
            f"{name}'s are {list(STATS[name][0])} and {list(STATS[name][1])} (tolerance "
            f"{STATS_TOLERANCE}). This is not {name}, or not all of it.")


def _cache_dir(tree: Path) -> Path:
    """Beside the tree when that folder is writable, else ``<repo>/data``."""
    for folder in (tree.parent, REPO_ROOT / "data"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                return folder
        except OSError:
            continue
    raise OSError(f"no writable folder for the decoded cache of {tree}")


def read_png_tree(name: str, tree: Path) -> dict:
    """The PNG tree of ``name`` at ``tree``, checked, decoded and cached.

    Returns ``{"train": (x, y), "test": (x, y), "classes", "fingerprint"}`` with x as
    uint8 (N, H, W, C). The cache is keyed by the tree's files (names and contents: a
    few seconds to read 60,000 small files); a changed tree is decoded again."""
    classes, listing = _png_listing(tree, name)
    key = hashlib.sha256()
    for split, items in listing.items():
        for path, _ in items:
            key.update(f"{split}/{path.parent.name}/{path.name}\n".encode())
            key.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
    key = key.hexdigest()[:16]
    cache = _cache_dir(tree) / f"{tree.name}.decoded-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        out = {"train": (z["train_x"], z["train_y"]), "test": (z["test_x"], z["test_y"])}
    else:
        size = PNG_TREES[name][4]
        out = {split: _decode_pngs(items, size) for split, items in listing.items()}
        _check_stats(name, out["train"][0], tree / "train")
        tmp = cache.with_suffix(".part.npz")
        np.savez(tmp, train_x=out["train"][0], train_y=out["train"][1],
                 test_x=out["test"][0], test_y=out["test"][1])
        os.replace(tmp, cache)
    channels_first = [(x.transpose(0, 3, 1, 2), y) for x, y in (out["train"], out["test"])]
    out.update(classes=classes, fingerprint=fingerprint(channels_first))  # as torchvision's
    return out


def load_png_tree(name: str, root: Path) -> tuple | None:
    """``(train_x, train_y, test_x, test_y, classes, source, fingerprint)`` from the
    PNG tree under ``root``, or ``None`` when there is none."""
    if name not in PNG_TREES or not (root / PNG_TREES[name][0]).is_dir():
        return None
    tree = root / PNG_TREES[name][0]
    got = read_png_tree(name, tree)
    tensors = []
    for split in ("train", "test"):
        x, y = got[split]
        tensors += [torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)]
    return (*tensors, got["classes"], f"PNG tree {PNG_TREES[name][0]}/", got["fingerprint"])


PACK_FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "preset": 6}]



def load_packed(name: str, root: Path) -> tuple | None:
    """``(train_x, train_y, test_x, test_y, classes, source, fingerprint)`` from the
    packed copy under ``root``, or ``None`` when there is none. A copy that is
    incomplete or whose fingerprint differs from its manifest's is refused."""
    folder = root / f"{name}-packed"
    if not (folder / "manifest.json").exists():
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    missing = [p for p in manifest["parts"] if not (folder / p).exists()]
    if missing:
        raise DataCheckError(f"{folder} lacks {', '.join(missing)} of its "
                             f"{len(manifest['parts'])} parts")
    blob = lzma.decompress(b"".join((folder / p).read_bytes() for p in manifest["parts"]))
    tensors, offset = [], 0
    for spec in manifest["arrays"]:
        a = np.frombuffer(blob, dtype=spec["dtype"], count=int(np.prod(spec["shape"])),
                          offset=offset).reshape(spec["shape"])
        offset += a.nbytes
        tensors.append(torch.from_numpy(a.copy()))
    fp = fingerprint([(tensors[0].numpy(), tensors[1].numpy()),
                      (tensors[2].numpy(), tensors[3].numpy())])
    if fp != manifest["fingerprint"]:
        raise DataCheckError(f"{folder}: the unpacked data's fingerprint {fp} differs from "
                             f"the one recorded when it was packed, {manifest['fingerprint']}")
    return (*tensors, manifest["classes"],
            f"packed copy {folder.name}/ of the {manifest['packed_from']}", fp)
