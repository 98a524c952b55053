"""Datasets as in-memory uint8 tensors, with batched GPU/CPU-friendly augmentation.

Where the data is looked for, in order: the ``data_dir`` argument, the environment
variable ``VINET_DATA_DIR``, then ``<repo>/data``. Loading goes through torchvision's own
dataset classes (``CIFAR10``, ``CIFAR100``, ``FashionMNIST``); when the files are not
there, one short download attempt is made, and if that fails a ``DataNotFoundError``
says where we looked and how to get the data. Fashion-MNIST is also taken from
Debian's ``dataset-fashion-mnist`` package when installed.

Images stay uint8 in one tensor (50k CIFAR images are 150 MB); each batch is cropped,
flipped and normalised on the fly with tensor ops, so that 2 CPU cores train without
waiting on a per-image PIL pipeline (the airbench approach).
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .results import REPO_ROOT

DATASETS = ("cifar10", "cifar100", "fashionmnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 10

#: Per-dataset channel mean and std of the training images (the usual published values).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "fashionmnist": ((0.2860,), (0.3530,)),
}
_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
            "fashionmnist": "FashionMNIST/raw"}
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
    cls = _torchvision_class(name)
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # one short attempt on a dead network
    try:
        return cls(root=str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _not_found(name: str, looked: list[Path], err: Exception) -> DataNotFoundError:
    where = "\n".join(f"  - {p / _FOLDERS[name]}" for p in looked)
    hint = {"cifar10": "torchvision.datasets.CIFAR10(root, download=True)",
            "cifar100": "torchvision.datasets.CIFAR100(root, download=True)",
            "fashionmnist": "torchvision.datasets.FashionMNIST(root, download=True), or "
                            "`apt-get install -y dataset-fashion-mnist`"}[name]
    return DataNotFoundError(
        f"{name} was not found and could not be downloaded ({type(err).__name__}: {err}).\n"
        f"Looked in:\n{where}\n"
        f"Get it on a machine with a network with {hint}, then point the data_dir "
        f"parameter or VINET_DATA_DIR at the folder that holds '{_FOLDERS[name]}'.")


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


def load_dataset(name: str, data_dir=None, n_train: int | None = None,
                 n_test: int | None = None, seed: int = 0,
                 download: bool = True) -> Dataset:
    """Load ``name`` (one of ``DATASETS``) into memory, optionally a stratified subset."""
    check_dataset_name(name)
    root = resolve_data_dir(data_dir)
    looked = [root]
    if name == "fashionmnist" and not (root / _FOLDERS[name] / _FMNIST_FILES[0]).exists():
        staged = _stage_debian_fashion_mnist(root)
        if staged is not None:
            root = staged
            looked.append(staged)
    try:
        train = _open_split(name, root, True, download)
        test = _open_split(name, root, False, download)
    except (RuntimeError, OSError) as err:
        raise _not_found(name, looked, err) from None
    train_x, train_y = _to_uint8_tensor(train)
    test_x, test_y = _to_uint8_tensor(test)
    tr = stratified_subset(train_y, n_train, seed)
    te = stratified_subset(test_y, n_test, seed + 1)
    return Dataset(name, train_x[tr], train_y[tr], test_x[te], test_y[te],
                   list(train.classes), str(root))


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
