"""Solvers for the sparse oracle of OAVI: the l1-bounded least-squares problem

    min_c f(c) = (1/m) ||A c + u(X)||^2   subject to   ||c||_1 <= radius = tau - 1,

written in the ``k = |O|`` coordinates as ``f(c) = (c^T H c + 2 a^T c + bb) / m`` with
``H = A^T A``, ``a = A^T u(X)`` and ``bb = ||u(X)||^2``, so that no solver touches the ``m``
points.

* :func:`l1_ball_bpcg`: blended pairwise conditional gradients (the ``"bpcg"`` oracle, run
  to a Frank-Wolfe gap; sparse iterates from the origin);
* :func:`l1_ball_active_set`: a primal active-set method on the faces of the l1 sphere,
  run only until it can certify ``min f <= psi`` or ``min f > psi``;
* :func:`l1_ball_decide`: the ``"ihb"`` oracle's decision when the least-squares solution
  lies outside the ball (a few pairwise steps, then the active set).

The iterations are compiled with numba (:mod:`._kernels`). A fit at the papers' default
tau runs about a hundred thousand of them, each a few vector updates of length ``k``;
as NumPy calls, the interpreter's overhead per call was most of a fit's time. This
module checks the arguments and packs the results; :mod:`._kernels` holds the loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vinet_utils.oavi import _kernels


def project_l1_ball(v: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{c : ||c||_1 <= radius}`` (soft thresholding
    at the level that makes the l1 norm equal to ``radius``)."""
    return _kernels.project_l1_ball(np.ascontiguousarray(v, dtype=np.float64), float(radius))


@dataclass
class L1BallResult:
    """Outcome of an l1-ball solver (:func:`l1_ball_bpcg`, :func:`l1_ball_active_set`).

    Attributes:
        coef: the final iterate ``c`` (``||c||_1 <= radius``).
        value: ``f(c) = (1/m) ||A c + b||^2``, computed afresh at ``c``.
        gap: Frank-Wolfe gap at ``c``; ``value - gap`` is a lower bound of the minimum.
        iterations: number of iterations run.
        certified_above: the run stopped early because a lower bound of the minimum
            (``value - gap`` or sharper) exceeds psi: the term cannot vanish.
    """

    coef: np.ndarray
    value: float
    gap: float
    iterations: int
    certified_above: bool


def _result(H: np.ndarray, a: np.ndarray, bb: float, m: int, c: np.ndarray, run: tuple) -> L1BallResult:
    gap, iterations, certified = run
    value = _kernels.objective(H, a, float(bb), float(m), c)
    return L1BallResult(coef=c, value=value, gap=float(gap), iterations=int(iterations),
                        certified_above=bool(certified))


def l1_ball_bpcg(
    H: np.ndarray,
    a: np.ndarray,
    bb: float,
    m: int,
    radius: float,
    psi: float | None = None,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    stop_when_vanishing: bool = False,
    x0: np.ndarray | None = None,
) -> L1BallResult:
    """Blended pairwise conditional gradients (BPCG) over the l1 ball.

    Minimises ``f(c) = (c^T H c + 2 a^T c + bb) / m`` (that is ``(1/m)||A c + b||^2`` with
    ``H = A^T A``, ``a = A^T b``, ``bb = b^T b``) over ``||c||_1 <= radius``. All work is in
    the ``k = len(a)`` coordinates, independent of the number of points ``m``.

    The iterate is a convex combination of *atoms*: ``+radius e_i``, ``-radius e_i`` and
    the origin (a redundant atom, which lets the run start at ``c = 0`` with nothing
    selected). A feasible start ``x0`` puts weight ``|x0_i| / radius`` on
    ``sign(x0_i) radius e_i`` and the rest on the origin.

    Each iteration takes either a pairwise step between the worst and the best active
    atom or, when the Frank-Wolfe gap is larger than that local gap, a
    Frank-Wolfe step towards the best vertex of the ball; the step size is the exact
    line-search minimiser of the quadratic. Starting from the origin, every Frank-Wolfe
    step adds at most one coordinate, so early iterates are sparse.

    Stops when the Frank-Wolfe gap is ``<= tol`` (then ``f(c) - min <= tol``), after
    ``max_iter`` iterations, or, if ``psi`` is given, as soon as ``f(c) - gap > psi``, which
    certifies that the minimum exceeds psi. With ``stop_when_vanishing`` it also stops as
    soon as ``f(c) <= psi``, which certifies that the minimum is at most psi: the
    vanishing decision is then exact and ``c`` is a feasible psi-vanishing solution.
    """
    a = np.asarray(a, dtype=np.float64)
    k = a.shape[0]
    if k == 0 or not np.isfinite(radius):
        raise ValueError("l1_ball_bpcg needs at least one coordinate and a finite radius")
    H = _by_rows(H)
    c = np.zeros(k) if x0 is None else np.array(x0, dtype=np.float64)
    l1 = np.abs(c).sum()
    if l1 > radius * (1 + 1e-9):
        raise ValueError(f"x0 lies outside the l1 ball: ||x0||_1 = {l1} > {radius}")
    run = _kernels.bpcg(H, a, float(bb), float(m), float(radius), np.nan if psi is None else float(psi),
                        float(tol), int(max_iter), bool(stop_when_vanishing), c)
    return _result(H, a, bb, m, c, run)


def l1_ball_active_set(
    H: np.ndarray,
    a: np.ndarray,
    bb: float,
    m: int,
    radius: float,
    psi: float,
    x0: np.ndarray,
    gap_tol: float | None = None,
    max_iter: int = 10_000,
    residual: float | None = None,
) -> L1BallResult:
    """Decide whether ``min f(c) <= psi`` over ``||c||_1 <= radius`` by a primal active-set
    method on the faces of the l1 sphere, ``f(c) = (c^T H c + 2 a^T c + bb) / m``.

    Meant for the case where the unconstrained minimiser lies outside the ball, so the
    constrained one lies on the sphere ``||c||_1 = radius``. ``x0`` is scaled onto the
    sphere (the l1 projection of the least-squares solution lies on it already; ``x0 = 0``
    starts at the vertex of steepest descent). A face is a support ``S`` with signs ``s``;
    on it the problem is an equality-constrained quadratic, ``min f`` subject to
    ``s^T c_S = radius``, solved exactly by one linear system (with ``H_SS^{-1}``, bordered
    when a coordinate joins and downdated when one leaves). The iterate moves towards
    that face minimiser until the first coefficient reaches zero (a ratio test; that
    coordinate then leaves ``S``); at a face minimiser the coordinate with the largest
    gradient entry joins ``S`` with the sign that decreases ``f``. Where a step is
    undefined (the joining coordinate would have the wrong sign), one BPCG step instead.

    Every iterate is feasible, so ``f(c) <= psi`` certifies a psi-vanishing generator,
    and ``f(c) - gap > psi`` (``gap``: the Frank-Wolfe duality gap, ``f(c) - gap`` a lower
    bound of the minimum) certifies that the minimum exceeds psi. The run stops only on
    one of these two certificates, or when the gap is ``<= gap_tol`` (default
    ``1e-9 * psi``; then ``f`` is within ``gap_tol`` of the minimum and the decision is
    ``f(c) <= psi``), or after ``max_iter`` iterations; never on a small improvement.

    ``residual``, if given, is ``min_c m f(c)`` without the bound (the squared least-squares
    residual, ``bb - a^T H^{-1} a``). It enables a second, scaled dual lower bound: with
    ``z = A c + b``, ``min f >= (residual + max(0, z^T p - radius ||A^T z||_inf)^2 / ||z||^2) / m``
    (``p`` the projection of ``b`` on the span of ``A``), never weaker than ``f - gap``.
    """
    gap_tol = 1e-9 * psi if gap_tol is None else gap_tol
    H = _by_rows(H)
    a = np.asarray(a, dtype=np.float64)
    c = np.array(x0, dtype=np.float64)
    run = _kernels.active_set(H, a, float(bb), float(m), float(radius), float(psi), c, float(gap_tol),
                              int(max_iter), np.nan if residual is None else float(residual))
    return _result(H, a, bb, m, c, run)


def _by_rows(H) -> np.ndarray:
    """A C-contiguous float64 matrix whose leading ``k x k`` block is ``H`` (the kernels read
    no further): ``H`` itself, the matrix whose top-left corner ``H`` is (the Gram matrix
    of the first ``k`` columns of ``A`` is such a view, and costs no copy), or a copy."""
    H = np.asarray(H, dtype=np.float64)
    if H.flags.c_contiguous:
        return H
    base = H.base
    if (isinstance(base, np.ndarray) and base.ndim == 2 and base.dtype == np.float64 and base.flags.c_contiguous
            and H.strides == base.strides and H.ctypes.data == base.ctypes.data):
        return base
    return np.ascontiguousarray(H)


def l1_ball_decide(H: np.ndarray, a: np.ndarray, bb: float, m: int, radius: float, psi: float, c_ls: np.ndarray,
                   max_iter: int = 10_000, residual: float | None = None) -> L1BallResult:
    """Decide whether ``min f(c) <= psi`` over ``||c||_1 <= radius`` when the least-squares
    solution ``c_ls`` lies outside the ball (the ``"ihb"`` oracle with an active l1 bound).

    Starts at the l1 projection of ``c_ls``. Up to 20 pairwise steps
    (:func:`l1_ball_bpcg`, stopping at the first ``f(c) <= psi`` or certificate) settle the
    easy cases cheaply; :func:`l1_ball_active_set` continues from there otherwise, with
    the remaining iteration budget. ``residual`` is the squared least-squares residual
    (see :func:`l1_ball_active_set`). The iterations of both stages are counted.
    """
    H = _by_rows(H)
    a = np.asarray(a, dtype=np.float64)
    c, *run = _kernels.decide(H, a, float(bb), float(m), float(radius), float(psi),
                              np.ascontiguousarray(c_ls, dtype=np.float64), int(max_iter),
                              np.nan if residual is None else float(residual))
    return _result(H, a, bb, m, c, run)
