"""The Gram path of small fits: a whole closed-form fit from inner products.

Where O stays small against the number of points (tabular data: thousands of points in a
few variables), the blocked engine (:mod:`.linalg`) spends its time in passes over the
points: residuals made, orthogonalised twice, updated term by term. The closed form needs
only inner products, though. For the evaluations ``A`` of O (rows) and a border term ``u``,
with ``L L^T = A A^T`` and ``p = L^{-1} A u``, the squared residual of ``u`` against O is
``||u||^2 - ||p||^2`` and its least-squares coefficients solve ``L^T c = -p``. So this path
makes one pass over the points per degree, for the border's values ``B`` and the products
``A B^T`` and ``B B^T``, and decides the degree's terms on matrices the size of O
(:func:`~vinet_utils.oavi._kernels.gram_decide`). The border's inner products with itself
are made only for the terms that may join O, the ones whose residual is above psi now.

``||u||^2 - ||p||^2`` is exact to a few roundings of ``||u||^2`` while every O column joined
above psi, which the closed form guarantees; the later terms' projections on a new column,
``(u_j . u_l - p_j . p_l) / rho``, add an error of order ``sqrt(||u||^2 / psi m)`` roundings,
and the band where a residual is not trusted is widened by that factor. The path has no
sparse oracle and no explicit residuals, so :func:`gram_fit` hands the fit back (returns
None, and the blocked engine fits from the start) at a squared residual within the band of
psi, at a generator whose coefficients leave the l1 ball, where ``|O|`` plus a degree's border
would exceed :data:`MAX_TERMS`, or where the points are fewer than
:data:`MIN_POINTS_PER_TERM` times that. Its decisions are the blocked engine's (tests
compare the two, and brute force).
"""

from __future__ import annotations

import math

import numpy as np

from vinet_utils.oavi import _kernels, monomials
from vinet_utils.oavi.algorithm import FitResult, FitStats
from vinet_utils.oavi.arrays import Workspace

#: The most O terms plus one degree's border the path takes on.
MAX_TERMS = 64
#: The fewest points per term of ``MAX_TERMS`` (16 x 64 = 1,024 points at least).
MIN_POINTS_PER_TERM = 16
EPS = float(np.finfo(np.float64).eps)


#: Multiply-adds per matrix product up to which OpenBLAS keeps its small-matrix kernel; past
#: about a million, its general kernel took 3 to 5 times as long on these shapes (15 x 9,000
#: by 9,000 x 15: 0.26 ms against 0.05 ms for 6 x 9,000 by 9,000 x 15, on 2 cores).
SMALL_PRODUCT = 900_000


def products(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``X Y^T`` (a row each of ``X`` and ``Y`` a term's values), in products of as many rows
    of ``X`` as keep each within :data:`SMALL_PRODUCT`."""
    out = np.empty((X.shape[0], Y.shape[0]))
    rows = max(1, SMALL_PRODUCT // max(1, Y.shape[0] * Y.shape[1]))
    for i in range(0, X.shape[0], rows):
        np.matmul(X[i : i + rows], Y.T, out=out[i : i + rows])
    return out


def gram_fit(Xt: np.ndarray, psi: float, tau: float, max_degree: int, work: Workspace) -> FitResult | None:
    """The closed-form OAVI fit of the points ``Xt`` (``n x m`` float64, a variable a row) by
    inner products, or None where the path hands the fit back (see the module)."""
    n, m = Xt.shape
    if m < MIN_POINTS_PER_TERM * MAX_TERMS or Xt.dtype != np.float64:
        return None
    threshold, radius = psi * m, tau - 1
    E = work.rows("gram evaluations", Xt, 1)  # the evaluations of O, a term a row
    E[0] = 1.0
    L = np.zeros((MAX_TERMS, MAX_TERMS))
    L[0, 0] = math.sqrt(m)
    k, border_terms, degree_reached = 1, 0, 0
    O_by_degree, last_O_index = [np.zeros((1, n), dtype=np.int64)], np.zeros(1, dtype=np.int64)
    leads, rows, mse = [], [], []
    for degree in range(1, max_degree + 1):
        terms, parents, variables = monomials.border_array(O_by_degree[-1], last_O_index, n)
        b = terms.shape[0]
        if b == 0:
            break
        if k + b > MAX_TERMS:
            return None
        degree_reached, border_terms = degree, border_terms + b
        E = work.rows("gram evaluations", Xt, k + b, keep=k)  # grown as needed, O's rows kept
        B, bb = E[k : k + b], np.empty(b)  # the border's values right after O's: joining moves few rows
        _kernels.border_rows(E, Xt, parents, variables, B, bb)
        band = 1e3 * EPS * math.sqrt(k + b + 1.0) * (1.0 + math.sqrt(bb.max() / threshold))
        P = np.zeros((MAX_TERMS, b))
        _kernels.gram_project(L, k, products(E[:k], B), P)
        # a residual only shrinks as O grows: the terms below psi now (beyond the band) never
        # join O, and only the others need their inner products with the border
        may_join = np.flatnonzero(bb - (P[:k] * P[:k]).sum(axis=0) > threshold - 2.0 * band * bb)
        h_row = np.full(b, -1, dtype=np.int64)
        h_row[may_join] = np.arange(may_join.size)
        outcome, C, res2 = np.zeros(b, np.int8), np.zeros((MAX_TERMS, b)), np.zeros(b)
        k_before = k
        H = products(B if may_join.size == b else B[may_join], B)
        k, status = _kernels.gram_decide(L, k, P, H, h_row, bb, threshold, band, radius, outcome, C, res2)
        if status:
            return None
        joined, found = np.flatnonzero(outcome == 1), np.flatnonzero(outcome == 2)
        for i, j in enumerate(joined):  # the terms that joined O, packed after it in order
            if i != j:
                E[k_before + i] = E[k_before + j]
        leads.append(terms[found])
        rows.append(C[:, found].T)
        mse.append(res2[found] / m)
        if joined.size == 0:
            break
        O_by_degree.append(terms[joined])
        last_O_index = np.arange(k_before, k, dtype=np.int64)
    coefficients = np.vstack([np.zeros((0, MAX_TERMS)), *rows])[:, :k]
    g = coefficients.shape[0]
    return FitResult(O_exponents=np.vstack(O_by_degree),
                     leading_exponents=np.vstack([np.zeros((0, n), np.int64), *leads]),
                     coefficients=coefficients, leading_coefficients=np.ones(g),
                     train_mse=np.concatenate([np.zeros(0), *mse]), from_sparse_oracle=np.zeros(g, bool),
                     oracle_gaps=np.zeros(g), stats=FitStats(border_terms=border_terms),
                     max_degree_reached=degree_reached)
