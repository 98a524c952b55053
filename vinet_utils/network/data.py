"""Datasets as in-memory uint8 tensors, with batched GPU/CPU-friendly augmentation.

Where the data is looked for, in order: the ``data_dir`` argument, the environment
variable ``VINET_DATA_DIR``, then ``<repo>/data``. Loading goes through torchvision's own
dataset classes (``CIFAR10``, ``CIFAR100``, ``FashionMNIST``); when the files are not
there, one short download attempt is made, and if that fails a ``DataNotFoundError``
says where we looked and how to get the data. Fashion-MNIST is also taken from
Debian's ``dataset-fashion-mnist`` package when installed.

CIFAR-100 is also read from a class-folder PNG tree, ``<data_dir>/cifar-100-png/``
with ``train/<class>/*.png`` and ``test/<class>/*.png`` (a common way CIFAR copies are
shared), when torchvision's archive is not there. Labels come from the sorted class
names, which is torchvision's fine-label order. The tree is checked before any work
(class and image counts, image size and mode, the training images' channel
statistics), decoded once and cached beside it, keyed by its files' names and contents.

A packed copy, ``<data_dir>/<name>-packed/`` (:func:`pack`: the uint8 arrays,
compressed and cut into parts small enough to travel to a machine that has no copy of
the data), is read when neither of those is there; its fingerprint must equal the
one recorded when it was packed.

Every loaded dataset carries ``source`` (what was read) and ``fingerprint``: a hash of
the decoded uint8 images and labels that does not depend on their order, so two copies
of the same data (the official archive and a PNG tree of it) give the same value.

Images stay uint8 in one tensor (50k CIFAR images are 150 MB); each batch is cropped,
flipped and normalised on the fly with tensor ops, so that 2 CPU cores train without
waiting on a per-image PIL pipeline (the airbench approach).
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vinet_utils.common.results import REPO_ROOT
from vinet_utils.network.copies import (PACK_FILTERS, PNG_TREES, STATS, DataCheckError,
                                        fingerprint, load_packed, load_png_tree)

DATASETS = ("cifar10", "cifar100", "fashionmnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 10

#: Per-dataset channel mean and std of the training images (the usual published values).
_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
            "fashionmnist": "FashionMNIST/raw"}
#: Folder of a class-folder PNG tree under the data root, and its expected shape:
#: (classes, training images per class, test images per class, image size).
_FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor downloadable."""


@dataclass
class Dataset:
    """A dataset held as uint8 tensors (N, C, H, W) and int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list
    root: str
    source: str = ""
    fingerprint: str = ""
    #: Training images held out of every training (base and heads): the validation
    #: split of the searches on this run (``holdout_frac`` of each class, see
    #: :func:`load_dataset`); empty when nothing is held out.
    holdout_x: torch.Tensor | None = None
    holdout_y: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def mean(self) -> tuple:
        return STATS[self.name][0]

    @property
    def std(self) -> tuple:
        return STATS[self.name][1]

    def provenance(self) -> dict:
        """What a results file records of the data it read."""
        out = {"dataset": self.name, "source": self.source, "fingerprint": self.fingerprint,
               "n_train": len(self.train_x), "n_test": len(self.test_x)}
        if self.holdout_y is not None:
            out["n_holdout"] = len(self.holdout_y)
        return out


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$VINET_DATA_DIR``, else ``<repo>/data``."""
    return Path(data_dir or os.environ.get("VINET_DATA_DIR") or REPO_ROOT / "data")


def check_dataset_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)} (got {name!r})")
    return name


def _torchvision_class(name: str):
    import torchvision.datasets as tvd
    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100,
           "fashionmnist": tvd.FashionMNIST}[name]
    if os.environ.get("VINET_SYNTHETIC_DATA") == "1" and hasattr(cls, "_check_integrity"):
        # Test-only: the synthetic datasets the tests write cannot match the official md5s.
        warnings.warn("VINET_SYNTHETIC_DATA=1: md5 checks are off (synthetic test data)")
        return type(cls.__name__, (cls,), {"_check_integrity": lambda self: True,
                                           "_load_meta": _load_meta_unchecked})
    return cls


def _load_meta_unchecked(self) -> None:
    """CIFAR's ``_load_meta`` without the md5 check (synthetic test data only)."""
    import pickle
    with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
        self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
    self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def _stage_debian_fashion_mnist(root: Path) -> Path | None:
    """Decompress Debian's Fashion-MNIST into ``<root>/FashionMNIST/raw`` (or into
    ``<repo>/data`` when ``root`` is read-only) so torchvision can read it."""
    if not DEBIAN_FASHION_MNIST.is_dir():
        return None
    for target in (root, REPO_ROOT / "data"):
        raw = target / "FashionMNIST" / "raw"
        try:
            raw.mkdir(parents=True, exist_ok=True)
            for f in _FMNIST_FILES:
                if not (raw / f).exists():
                    with gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz") as src, \
                            open(raw / f"{f}.part", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.replace(raw / f"{f}.part", raw / f)
            return target
        except OSError:
            continue
    return None


def _open_split(name: str, root: Path, train: bool, download: bool):
    """torchvision's dataset for one split. A file that is there but damaged (it fails
    its md5 checksum, or cannot be unpickled) stops with a ``DataCheckError`` that names
    it, before any download would write over the folder."""
    import pickle

    cls = _torchvision_class(name)
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        damaged = _damaged_files(cls, root)
        if damaged:
            raise _damaged(name, root, damaged) from None
        if not download:
            raise
    except (EOFError, pickle.UnpicklingError) as err:  # only when md5 checks are off
        raise _damaged(name, root, _unreadable_files(cls, root, err)) from None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # one short attempt on a dead network
    try:
        return cls(root=str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _archive_files(cls) -> list[tuple[str, str]]:
    """``[(file name, md5), ...]`` that torchvision checks for a CIFAR folder (both
    splits and the metadata); empty for a dataset without md5s on its files."""
    if not hasattr(cls, "train_list"):
        return []
    return [tuple(f) for f in cls.train_list + cls.test_list] + [(cls.meta["filename"],
                                                                  cls.meta["md5"])]


def _damaged_files(cls, root: Path) -> list[str]:
    """One line per file of ``cls``'s folder under ``root`` that is there but fails
    torchvision's md5 checksum (a missing file is not damaged: it is not found)."""
    from torchvision.datasets.utils import calculate_md5

    if os.environ.get("VINET_SYNTHETIC_DATA") == "1":
        return []  # synthetic test data cannot match the official md5s
    folder = root / cls.base_folder if hasattr(cls, "base_folder") else root
    out = []
    for fname, md5 in _archive_files(cls):
        path = folder / fname
        if path.is_file():
            got = calculate_md5(str(path))
            if got != md5:
                out.append(f"{path} failed its md5 checksum ({path.stat().st_size:,} bytes, "
                           f"md5 {got}; torchvision expects {md5})")
    return out


def _unreadable_files(cls, root: Path, err: Exception) -> list[str]:
    """One line per file of ``cls``'s folder under ``root`` that cannot be unpickled."""
    import pickle

    folder = root / getattr(cls, "base_folder", "")
    out = []
    for fname, _ in _archive_files(cls):
        path = folder / fname
        try:
            with open(path, "rb") as f:
                pickle.load(f, encoding="latin1")
        except FileNotFoundError:
            continue
        except Exception as e:  # noqa: BLE001 - any failure to unpickle is damage
            out.append(f"{path} cannot be read ({type(e).__name__}: {str(e) or 'truncated'}; "
                       f"{path.stat().st_size:,} bytes)")
    return out or [f"a file under {folder} cannot be read ({type(err).__name__}: {err})"]


def _damaged(name: str, root: Path, lines: list[str]) -> DataCheckError:
    folder = root / _FOLDERS[name]
    hint = {"cifar10": "torchvision.datasets.CIFAR10(root, download=True)",
            "cifar100": "torchvision.datasets.CIFAR100(root, download=True)",
            "fashionmnist": "torchvision.datasets.FashionMNIST(root, download=True)"}[name]
    files = "\n".join(f"  - {line}" for line in lines)
    return DataCheckError(
        f"{name} is on disk but damaged: {len(lines)} file(s) in {folder} are not the "
        f"official ones (truncated or altered, for example by an interrupted copy or "
        f"download):\n{files}\n"
        f"Delete {folder} and download it again with {hint} (root: {root}), or copy it "
        f"again from an intact copy. Nothing was downloaded over it.")


def _missing_files(name: str, root: Path) -> list[str]:
    """The files of ``name``'s folder under ``root`` that are absent, when the folder
    itself is there (a partial copy); empty otherwise."""
    import torchvision.datasets as tvd

    folder = root / _FOLDERS[name]
    if not folder.is_dir():
        return []
    names = (list(_FMNIST_FILES) if name == "fashionmnist" else
             [f for f, _ in _archive_files({"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name])])
    return [f for f in names if not (folder / f).exists()]


def _not_found(name: str, looked: list[Path], err: Exception) -> DataNotFoundError:
    folders = [_FOLDERS[name]] + ([PNG_TREES[name][0]] if name in PNG_TREES else [])
    where = "\n".join(f"  - {p / f}" for p in looked for f in folders)
    hint = {"cifar10": "torchvision.datasets.CIFAR10(root, download=True)",
            "cifar100": "torchvision.datasets.CIFAR100(root, download=True), or put a "
                        "class-folder PNG tree (train/<class>/*.png, test/<class>/*.png) at "
                        f"<data_dir>/{PNG_TREES['cifar100'][0]}",
            "fashionmnist": "torchvision.datasets.FashionMNIST(root, download=True), or "
                            "`apt-get install -y dataset-fashion-mnist`"}[name]
    partial = "".join(f"{p / _FOLDERS[name]} is there but lacks {', '.join(gone)}.\n"
                      for p in looked for gone in [_missing_files(name, p)] if gone)
    return DataNotFoundError(
        f"{name} was not found and could not be downloaded ({type(err).__name__}: {err}).\n"
        f"Looked in:\n{where}\n{partial}"
        f"Get it on a machine with a network with {hint}, then point the data_dir "
        f"parameter or VINET_DATA_DIR at the folder that holds '{_FOLDERS[name]}'.")


def pack(name: str, data_dir=None, out=".", part_bytes: int = 40 * 2**20) -> list[Path]:
    """Write ``name`` as ``<out>/<name>-packed/``: its uint8 images and labels in one
    lzma stream (a byte-delta filter first: neighbouring pixels are alike) cut into
    ``part-<i>.xz`` files of at most ``part_bytes``, and ``manifest.json`` with the
    shapes, classes, source and fingerprint. CIFAR-10 packs into 123.7 MiB."""
    ds = load_dataset(name, data_dir, download=False)
    arrays = [t.numpy() for t in (ds.train_x, ds.train_y, ds.test_x, ds.test_y)]
    blob = lzma.compress(b"".join(a.tobytes() for a in arrays), format=lzma.FORMAT_XZ,
                         filters=PACK_FILTERS)
    folder = Path(out) / f"{name}-packed"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.xz"):
        old.unlink()
    parts = []
    for i, start in enumerate(range(0, len(blob), part_bytes)):
        parts.append(folder / f"part-{i}.xz")
        parts[-1].write_bytes(blob[start:start + part_bytes])
    manifest = {"dataset": name, "classes": ds.classes, "packed_from": ds.source,
                "fingerprint": ds.fingerprint, "parts": [p.name for p in parts],
                "arrays": [{"shape": list(a.shape), "dtype": str(a.dtype)} for a in arrays]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return parts


def _to_uint8_tensor(ds) -> tuple[torch.Tensor, torch.Tensor]:
    x = ds.data
    x = torch.as_tensor(np.asarray(x))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # -> N, C, H, W
    return x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)


def stratified_subset(y: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of a seeded subset of ``n`` items with (near) equal counts per class."""
    if n is None or n >= len(y):
        return torch.arange(len(y))
    if n < 1:
        raise ValueError(f"subset size must be >= 1 (got {n})")
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    picks = []
    for c, k in zip(classes.tolist(), per):
        idx = torch.nonzero(y == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.sort(torch.cat(picks)).values


def validation_split(y: torch.Tensor, frac: float, seed: int,
                     name: str = "val_frac") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(fit, validation)`` of a stratified split: ``frac`` of each class, seeded
    (``name``: the parameter behind ``frac``, for the error a bad share raises)."""
    if not 0 < frac < 1:
        raise ValueError(f"{name} must be between 0 and 1 (got {frac!r})")
    g = torch.Generator().manual_seed(seed)
    fit, val = [], []
    for k in torch.unique(y):
        idx = torch.nonzero(y == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = max(1, round(frac * len(idx)))
        val.append(idx[:n_val])
        fit.append(idx[n_val:])
    return torch.sort(torch.cat(fit)).values, torch.sort(torch.cat(val)).values


def holdout_seed(seed: int) -> int:
    """The seed of a run's validation split: the images held out of its training
    (``holdout_frac``) and the split a search carves where nothing was held out."""
    from vinet_utils.common.seeds import derive_seed
    return derive_seed(seed, "validation")


def load_dataset(name: str, data_dir=None, n_train: int | None = None,
                 n_test: int | None = None, seed: int = 0,
                 download: bool = True, holdout_frac: float = 0.0) -> Dataset:
    """Load ``name`` (one of ``DATASETS``) into memory, optionally a stratified subset.

    With ``holdout_frac`` > 0, that share of each class of the (subset) training split
    is moved out of ``train_x`` into ``holdout_x``, seeded by :func:`holdout_seed`:
    nothing trains on it, and the searches validate on it."""
    if holdout_frac:
        validation_split(torch.zeros(2), holdout_frac, 0, "holdout_frac")  # a bad share stops here
    check_dataset_name(name)
    root = resolve_data_dir(data_dir)
    looked = [root]
    if name == "fashionmnist" and not (root / _FOLDERS[name] / _FMNIST_FILES[0]).exists():
        staged = _stage_debian_fashion_mnist(root)
        if staged is not None:
            root = staged
            looked.append(staged)
    found = None
    if not (root / _FOLDERS[name]).is_dir():  # the archive first, then a tree, then a packed copy
        found = (load_png_tree(name, root) if name in PNG_TREES else None) or load_packed(name, root)
    if found is not None:
        train_x, train_y, test_x, test_y, classes, source, fp = found
    else:
        try:
            train = _open_split(name, root, True, download)
            test = _open_split(name, root, False, download)
        except (RuntimeError, OSError) as err:
            raise _not_found(name, looked, err) from None
        train_x, train_y = _to_uint8_tensor(train)
        test_x, test_y = _to_uint8_tensor(test)
        classes, source = list(train.classes), f"torchvision archive {_FOLDERS[name]}/"
        fp = fingerprint([(train_x.numpy(), train_y.numpy()), (test_x.numpy(), test_y.numpy())])
    tr = stratified_subset(train_y, n_train, seed)
    te = stratified_subset(test_y, n_test, seed + 1)
    held = {}
    if holdout_frac:
        fit, val = validation_split(train_y[tr], holdout_frac, holdout_seed(seed))
        held = {"holdout_x": train_x[tr][val], "holdout_y": train_y[tr][val]}
        tr = tr[fit]
    return Dataset(name, train_x[tr], train_y[tr], test_x[te], test_y[te],
                   classes, str(root), source, fp, **held)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, scaled to [0, 1] and standardised per channel."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad`` pixels of reflect padding and a random horizontal flip,
    for a whole batch at once (per-image offsets through one gather)."""
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x.float(), (pad,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = torch.rand(b, generator=generator).to(x.device) < 0.5
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = xp[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # gather put channels last


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, mean, std, *,
            shuffle: bool = False, train_augment: bool = False, seed: int = 0,
            drop_last: bool = False, device="cpu", channels_last: bool = False):
    """Yield normalised float batches ``(images, labels)`` from uint8 tensors.

    Shuffling and augmentation draw from a generator seeded with ``seed`` alone, so an
    epoch is reproducible (and a resumed run sees the same batches)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g) if shuffle else torch.arange(len(x))
    stop = len(x) - (len(x) % batch_size if drop_last else 0)
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        xb = x[idx].to(device, non_blocking=True)
        if train_augment:
            xb = augment(xb, g)
        xb = normalize(xb, mean, std)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yield xb, y[idx].to(device, non_blocking=True)


def n_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def main(argv=None) -> None:
    """``python -m vinet_utils.network.data pack cifar10 OUT [--part-mb 40] [--data-dir DIR]``."""
    import argparse

    ap = argparse.ArgumentParser(description="Pack a dataset to carry it to a machine without it.")
    ap.add_argument("command", choices=["pack"])
    ap.add_argument("dataset", choices=DATASETS)
    ap.add_argument("out")
    ap.add_argument("--part-mb", type=float, default=40)
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    parts = pack(a.dataset, a.data_dir, a.out, int(a.part_mb * 2**20))
    print(f"{len(parts)} parts, {sum(p.stat().st_size for p in parts) / 2**20:.1f} MiB, in "
          f"{parts[0].parent}")


if __name__ == "__main__":
    main()
