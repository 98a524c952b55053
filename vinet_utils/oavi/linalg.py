"""The blocked QR factorisation of the evaluations of the order ideal O."""

from __future__ import annotations

import math

import numpy as np
import torch


class _BlockedQR:
    """``A = Q R`` for the evaluations ``A`` of ``O``, extended a block of border terms at a time.

    ``Et`` (raw evaluations) and ``Qt`` (orthonormal basis) are stored transposed,
    ``capacity x m`` tensors on the fitting device (a column of ``A`` is a contiguous row); ``R`` (upper triangular) and the Gram matrix ``H = R^T R`` (filled
    lazily, only for the sparse oracle) are host float64 arrays. Columns beyond ``k`` are
    scratch space for the block being processed: a block writes its new ``O`` columns
    there and commits them by advancing ``k``.
    """

    def __init__(self, X: torch.Tensor):
        self.X = X
        self.m = X.shape[0]
        self.k = 0
        self.capacity = 0
        self.Et = self.Qt = None
        self.R = np.zeros((0, 0))
        self._H = np.zeros((0, 0))
        self._H_k = 0
        self.eps = torch.finfo(X.dtype).eps
        self.reserve(16)
        self.Et[0] = 1.0
        self.Qt[0] = 1.0 / math.sqrt(self.m)
        self.R[0, 0] = math.sqrt(self.m)
        self.k = 1

    def reserve(self, columns: int) -> None:
        if columns <= self.capacity:
            return
        capacity = max(columns, 2 * self.capacity)
        dev, dt = self.X.device, self.X.dtype
        Et = torch.empty(capacity, self.m, dtype=dt, device=dev)
        Qt = torch.empty(capacity, self.m, dtype=dt, device=dev)
        R = np.zeros((capacity, capacity))
        H = np.zeros((capacity, capacity))
        c = self.capacity
        if c:
            Et[:c] = self.Et
            Qt[:c] = self.Qt
            R[:c, :c] = self.R
            H[:c, :c] = self._H
        self.Et, self.Qt, self.R, self._H, self.capacity = Et, Qt, R, H, capacity

    def gram(self, kk: int) -> np.ndarray:
        """``H[:kk, :kk] = R_kk^T R_kk`` (the Gram matrix of the first ``kk`` columns of ``A``)."""
        h = self._H_k
        if h < kk:
            Rk = self.R[:kk, :kk]
            block = Rk.T @ Rk[:, h:kk]
            self._H[:kk, h:kk] = block
            self._H[h:kk, :kk] = block.T
            self._H_k = kk
        return self._H[:kk, :kk]

    def forget_gram(self, kk: int) -> None:
        self._H_k = min(self._H_k, kk)
