"""The basis of a fit: ``A = Q R`` for the evaluations ``A`` of the order ideal O, grown a
column at a time as terms join O (:class:`QRBasis`), with what the oracles read from it: the
Gram matrix ``H = A^T A = R^T R`` (the sparse oracle) and its eigenpairs (ABM). The blocked
engine of :mod:`.linalg` writes its new columns; nothing here touches the border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vinet_utils.oavi import _kernels
from vinet_utils.oavi.arrays import Array, Workspace

#: Columns of ``R`` and ``H`` a fit starts with (they grow by doubling).
HOST_START = 64


@dataclass(eq=False)
class QRBasis:
    """``A = Q R`` for the evaluations ``A`` (``m x |O|``) of the order ideal O.

    Attributes:
        m: number of points.
        size: ``|O|``, the committed columns; the columns from ``size`` to the capacity are
            scratch space where a block writes its new ``O`` columns before committing them.
        Et: raw evaluations of O, transposed (``capacity x m``; numpy on the CPU, else a torch
            tensor on the fitting device): a column of ``A`` is a contiguous row.
        Qt: the orthonormal basis ``Q``, transposed likewise.
        R: the upper-triangular factor (host float64, square, at least ``size`` wide).
        gram_matrix: ``H = R^T R = A^T A``, filled lazily (the sparse oracle needs it) up to
            ``gram_size`` columns.
        eigen: ``(eigenvalues, eigenvectors)`` of ``H[:eigen_size, :eigen_size]`` (ABM), or None.
    """

    m: int
    size: int
    Et: Array
    Qt: Array
    R: np.ndarray
    gram_matrix: np.ndarray
    gram_size: int = 0
    eigen: tuple[np.ndarray, np.ndarray] | None = None
    eigen_size: int = -1
    work: Workspace | None = None  # where ``Et`` and ``Qt`` live (numpy), else new arrays

    @classmethod
    def of_constant(cls, Xt: Array, capacity: int = 16, work: Workspace | None = None) -> "QRBasis":
        """The basis of ``O = {1}`` for the points ``Xt`` (``n x m``): ``A`` is the column of ones."""
        m = Xt.shape[1]
        empty = Xt[:0]
        basis = cls(m=m, size=0, Et=empty, Qt=empty, R=np.zeros((0, 0)), gram_matrix=np.zeros((0, 0)), work=work)
        basis.reserve(capacity, host=min(capacity, HOST_START))
        basis.Et[0] = 1.0
        basis.Qt[0] = 1.0 / math.sqrt(m)
        basis.R[0, 0] = math.sqrt(m)
        basis.size = 1
        return basis

    @property
    def capacity(self) -> int:
        return self.Et.shape[0]

    def reserve(self, columns: int, host: int | None = None) -> None:
        """Room for ``columns`` columns of ``Et`` and ``Qt`` and ``host`` (default ``columns``) of
        ``R`` and ``H`` (squares: reserved whole, they cost page faults a small O never uses);
        each at least doubles when it grows."""
        old = self.capacity
        if columns > old:
            capacity = max(columns, 2 * old)
            shared = isinstance(self.Et, np.ndarray) and self.work is not None
            if shared:  # the workspace keeps the first ``old`` rows
                Et = self.work.rows("evaluations", self.Et, capacity, keep=old)
                Qt = self.work.rows("basis", self.Qt, capacity, keep=old)
            elif isinstance(self.Et, np.ndarray):
                Et, Qt = (np.empty((capacity, self.m), dtype=self.Et.dtype) for _ in range(2))
            else:
                Et, Qt = self.Et.new_empty(capacity, self.m), self.Qt.new_empty(capacity, self.m)
            if old and not shared:
                Et[:old], Qt[:old] = self.Et, self.Qt
            self.Et, self.Qt = Et, Qt
        old, columns = self.R.shape[0], columns if host is None else host
        if columns > old:
            capacity = max(columns, 2 * old)
            R, H = np.zeros((capacity, capacity)), np.zeros((capacity, capacity))
            R[:old, :old], H[:old, :old] = self.R, self.gram_matrix
            self.R, self.gram_matrix = R, H

    def gram(self, k: int) -> np.ndarray:
        """``H[:k, :k] = R_k^T R_k``, the Gram matrix of the first ``k`` columns of ``A``."""
        h = self.gram_size
        if h < k:
            Rk = self.R[:k, :k]
            block = Rk.T @ Rk[:, h:k]
            self.gram_matrix[:k, h:k] = block
            self.gram_matrix[h:k, :k] = block.T
            self.gram_size = k
        return self.gram_matrix[:k, :k]

    def eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenpairs of ``H[:k, :k]`` (ascending), grown from the last (:func:`~._kernels.eigen_grow`)."""
        if self.eigen_size != k:
            H = self.gram(k)
            lam, V, ok = _kernels.eigen_grow(*self.eigen, H) if 0 < self.eigen_size < k else (None, None, 0)
            self.eigen, self.eigen_size = (lam, V) if ok else np.linalg.eigh(H), k
        return self.eigen
