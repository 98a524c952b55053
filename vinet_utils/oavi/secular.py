"""The ABM oracle's linear algebra: the smallest singular pair of ``[A, b]`` from the
least-squares data of ``b`` on ``A = Q_k R_k``, one term at a time
(:func:`secular_singular_pair`) or for many terms against the same ``A`` at once
(:func:`secular_screen`).

With ``H = A^T A = V diag(lam) V^T`` and ``c' = V^T c_ls`` (``c_ls`` the least-squares
coefficients of ``b``, ``rho2`` its squared residual), the smallest squared singular value
``s`` of ``[A, b]`` is the root below ``min(lam)`` of the secular function
``F(x) = rho2 - x (1 + sum_i lam_i c'_i^2 / (lam_i - x))`` (no cancellation).
``s <= mu`` iff ``F(mu) <= 0``; then Newton's method converges monotonically to ``s`` from
any start at or above it (``F`` is concave and decreasing; the loop is compiled,
:func:`~vinet_utils.oavi._kernels.secular_roots`). It starts from
``min(mu, rho2 / (1 + sum_i c'_i^2))``, an upper bound of ``s`` (``F(x) <= rho2 - x (1 + sum_i
c'_i^2)`` for ``0 <= x < min(lam)``) that is close to it when ``s`` is small against
``min(lam)``, so a few steps suffice. The singular vector is
``(V (lam c' / (lam - s)), 1)`` up to scale. When ``min(lam)`` is at or below ``mu``, or
``F(mu)`` is within rounding of zero, the small SVD of ``[[R_k, p], [0, sqrt(rho2)]]``
(``p = Q_k^T b``; the triangular factor of ``[A, b]``) answers instead.
"""

from __future__ import annotations

import math

import numpy as np

from vinet_utils.oavi import _kernels


def secular_singular_pair(eigen: tuple[np.ndarray, np.ndarray], R: np.ndarray, c_ls: np.ndarray, rho2: float,
                          p: np.ndarray, threshold: float) -> tuple[float, np.ndarray] | None:
    """Smallest squared singular value of ``[A, b]`` and its unit right singular vector
    (``b``'s entry last), or None when it certainly exceeds ``threshold``; ``eigen`` is
    ``(lam, V)`` of ``H = R^T R``. The secular equation for this one term
    (:func:`secular_screen`), else the small SVD."""
    screen = secular_screen(eigen, np.asarray(c_ls, dtype=np.float64)[:, None], np.array([float(rho2)]), threshold)
    if screen["settled"][0]:
        return (float(screen["sigma2"][0]), screen["v"][0]) if screen["vanishes"][0] else None
    k = R.shape[0]
    T = np.zeros((k + 1, k + 1))
    T[:k, :k] = R
    T[:k, k] = p
    T[k, k] = math.sqrt(rho2)
    _, sv, Vh = np.linalg.svd(T)
    return float(sv[-1]) ** 2, Vh[-1].copy()


def secular_screen(eigen: tuple[np.ndarray, np.ndarray], C: np.ndarray, rho2: np.ndarray, threshold: float,
                   upto_first_kept: bool = False) -> dict:
    """:func:`secular_singular_pair` for the terms whose coefficients are the columns of ``C``
    (``k x n``) and squared residuals ``rho2``, all against the same ``A``, in one compiled call
    (:func:`~vinet_utils.oavi._kernels.secular_screen`).

    Returns ``settled`` (the terms the secular equation decides; the others need the exact
    SVD), ``vanishes`` (``s <= threshold``), ``sigma2`` (``s`` where it vanishes) and ``v``
    (the unit singular vector where it vanishes, one row per term), each indexed like the
    columns of ``C``, and ``stop``: the terms from ``stop`` on lack ``sigma2`` and ``v``. With
    ``upto_first_kept``, ``stop`` follows the first term that does not certainly vanish (it may
    join O, and change ``A`` for the terms after it), else it is ``n``.
    """
    lam, V = eigen
    settled, vanishes, sigma2, v, stop = _kernels.secular_screen(
        np.ascontiguousarray(lam, dtype=np.float64), np.ascontiguousarray(V, dtype=np.float64),
        np.asarray(C, dtype=np.float64), np.ascontiguousarray(rho2, dtype=np.float64), float(threshold),
        bool(upto_first_kept))
    return dict(settled=settled, vanishes=vanishes, sigma2=sigma2, v=v, stop=int(stop))
