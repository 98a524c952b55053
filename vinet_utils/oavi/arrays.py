"""Arrays of a fit: numpy on the CPU, torch tensors on other devices, and the helpers that
treat both alike; and the :class:`Workspace` where a fit's large arrays live.

A fit makes thousands of small products, and numpy's cost per call is a fraction of
torch's, so the blocked engine (:mod:`.linalg`) works on numpy arrays on the CPU. Block
after block it also makes the same large temporaries; the :class:`Workspace` reuses them,
and the thread keeps it from fit to fit (:func:`shared_workspace`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from vinet_utils.oavi import _kernels

Array = np.ndarray | torch.Tensor  # numpy on the CPU, torch on other devices


def to_host(x: Array) -> np.ndarray:
    """``x`` as a numpy array (no copy on the CPU)."""
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def indices(index: np.ndarray, x: Array) -> np.ndarray | torch.Tensor:
    """``index`` in the kind that indexes ``x`` (a tensor on ``x``'s device for a tensor)."""
    return index if isinstance(x, np.ndarray) else torch.as_tensor(index, device=x.device)


def rows(x: Array, index: np.ndarray, out: np.ndarray | None = None) -> Array:
    """Rows ``index`` of ``x`` (into ``out`` where given: numpy only)."""
    if isinstance(x, np.ndarray):
        return np.take(x, index, axis=0) if out is None else np.take(x, index, axis=0, out=out, mode="clip")
    return x[indices(index, x)]


def like(v: np.ndarray, x: Array) -> Array:
    """The host vector ``v`` in ``x``'s kind, dtype and device."""
    if isinstance(x, np.ndarray):
        return v.astype(x.dtype, copy=False)
    return torch.as_tensor(v, dtype=x.dtype, device=x.device)


def transposed_points(X: torch.Tensor, work: "Workspace", columns: np.ndarray | None = None) -> np.ndarray:
    """The points ``X`` (a tensor, ``m x n``) on the host, transposed, a variable's values a
    contiguous row, its variables ``columns`` (default: all, in order): a view where ``X.T``
    already is one, else a copy in one compiled pass into ``work``'s reused pages (valid until
    the next request for them)."""
    points = X.detach().cpu().numpy()
    if columns is None:
        if points.T.flags.c_contiguous:
            return points.T
        columns = np.arange(points.shape[1])
    out = work.rows("points", points.T, len(columns))
    _kernels.transposed_columns(points, np.asarray(columns, dtype=np.int64), out)
    return out


def minus_product(B: Array, P: Array, Q: Array, out: np.ndarray | None = None) -> Array:
    """``B - P^T Q``, into ``out`` where given (numpy; not ``B``), else in a new array."""
    if isinstance(B, np.ndarray):
        out = _product(P, Q, out)
        return np.subtract(B, out, out=out)
    return torch.addmm(B, P.T, Q, alpha=-1.0)


def subtract_product(B: Array, P: Array, Q: Array, work: np.ndarray | None = None) -> None:
    """``B -= P^T Q`` in place (``work``: room for the product, numpy)."""
    if isinstance(B, np.ndarray):
        B -= _product(P, Q, work)
    else:
        B.addmm_(P.T, Q, alpha=-1.0)


def _product(P: np.ndarray, Q: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``P^T Q`` (numpy), into ``out`` where given. Against one basis column (every fit's
    first degree) a broadcast product: matmul's rank-one product took four times as long.
    (scipy's gemm, which would fuse the subtraction, runs on a second OpenBLAS: beside
    numpy's threads its own doubled the time of L32 and L64 on two cores.)"""
    if P.shape[0] == 1:
        return np.multiply(P.T, Q, out=out)
    return np.matmul(P.T, Q, out=out)


_vecdot = getattr(np, "vecdot", None)  # numpy 2


def row_norms2(W: Array) -> np.ndarray:
    """Squared norms of the rows of ``W``, float64 on the host."""
    if isinstance(W, np.ndarray):  # no temporary W * W; vecdot (numpy 2) is 3x einsum's speed
        return (_vecdot(W, W) if _vecdot else np.einsum("ij,ij->i", W, W)).astype(np.float64, copy=False)
    return to_host((W * W).sum(1)).astype(np.float64)


def eps_of(x: Array) -> float:
    return float(np.finfo(x.dtype).eps) if isinstance(x, np.ndarray) else torch.finfo(x.dtype).eps


def initial_capacity(m: int, n: int, budget: int = 1 << 20) -> int:
    """Basis columns reserved up front: room for O up to degree 2 (``1 + n + n(n+1)/2``), as far
    as ``budget`` values per array allow (at least 16); later degrees grow it by doubling."""
    return max(16, min(1 + n + n * (n + 1) // 2, budget // max(m, 1)))


@dataclass(eq=False)
class Workspace:
    """Arrays of rows of ``m`` values reused from block to block (numpy only; other kinds get
    new arrays). Block after block a fit makes the same large temporaries (the residuals,
    the products with the basis); fresh ones of a megabyte come from the system each time,
    and touching their new pages cost more than the products themselves on data such as
    9,000 points in 8 variables. What a buffer holds lives until the next request for its name."""

    buffers: dict = field(default_factory=dict)

    def rows(self, name: str, like: Array, n: int, keep: int = 0) -> Array:
        """``n`` rows shaped and typed like the rows of ``like``, under ``name``; the first
        ``keep`` rows hold what they held under ``name`` before (grown buffers copy them)."""
        if not isinstance(like, np.ndarray):
            return like.new_empty(n, like.shape[1])
        buf = self.buffers.get(name)
        fits = buf is not None and buf.shape[1:] == like.shape[1:] and buf.dtype == like.dtype
        if not fits or buf.shape[0] < n:
            new = np.empty((max(n, 2 * buf.shape[0] if fits else 0),) + like.shape[1:], dtype=like.dtype)
            if fits and keep:
                new[:keep] = buf[:keep]
            buf = self.buffers[name] = new
        return buf[:n]

    @property
    def nbytes(self) -> int:
        return sum(buf.nbytes for buf in self.buffers.values())

    def trim(self, max_bytes: int) -> None:
        """Drop every buffer where together they exceed ``max_bytes``."""
        if self.nbytes > max_bytes:
            self.buffers.clear()


#: The most a thread's :func:`shared_workspace` keeps between fits.
SHARED_WORKSPACE_BYTES = 64 << 20
_THREAD = threading.local()


def shared_workspace() -> Workspace:
    """This thread's workspace, kept from fit to fit (:meth:`OAVI.fit` trims it to
    :data:`SHARED_WORKSPACE_BYTES`): fits of the same size, such as one per class, then
    reuse the pages the previous fit touched."""
    work = getattr(_THREAD, "work", None)
    if work is None:
        work = _THREAD.work = Workspace()
    return work


#: ``k^2 b`` up to which ``R^{-1} P`` is a compiled back substitution: torch's triangular solve
#: cost about 35 microseconds a call inside a fit, longer than the small solves themselves.
SMALL_SOLVE = 1 << 18


def solve_upper(R: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``R^{-1} P`` for the upper-triangular ``R``."""
    if R.shape[0] == 0:
        return np.zeros_like(P)
    if R.shape[0] ** 2 * P.shape[1] <= SMALL_SOLVE and P.dtype == np.float64:
        return _kernels.solve_upper(R, P)
    return torch.linalg.solve_triangular(torch.from_numpy(np.ascontiguousarray(R)), torch.from_numpy(P),
                                         upper=True).numpy()
