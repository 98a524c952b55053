"""Seeds: one for the whole run, and one of its own for every piece of work in it."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch from one ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *names) -> int:
    """A seed of its own for the work named by ``names`` (a stage, a cut, a head, a
    repetition), derived from the run's ``seed``: adding another head or cut never
    shifts the random numbers of the others."""
    text = "/".join(map(str, (seed, *names)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") % 2**31
