"""The oracle: does a border term ``u`` lead a psi-approximately vanishing generator?

For a border term ``u`` and the evaluations ``A`` of the current order ideal O, the oracle
solves

    min_c f(c) = (1/m) ||A c + u(X)||^2   subject to   ||c||_1 <= tau - 1;

``u`` leads a generator ``g = u + sum_t c_t t`` of G when the minimum is ``<= psi``, and
joins O otherwise. Every oracle returns one :class:`Decision`.

``"ihb"`` (:func:`least_squares_decision`)
    The closed form ("inverse Hessian boosting"): the least-squares solution ``c`` without
    the bound. Its residual is a lower bound of the bounded minimum, so ``u`` joins O at
    once when the residual exceeds psi. If the residual is small and ``||c||_1 <= tau - 1``,
    ``c`` is the bounded minimiser and ``u`` vanishes. Otherwise (the l1 bound is *active*)
    the sparse oracle decides (:func:`~vinet_utils.oavi.solvers.l1_ball_decide`): it starts
    at the l1 projection of ``c`` and stops at the first feasible ``c`` with ``f(c) <= psi``
    (a generator) or when a duality lower bound exceeds psi (``u`` joins O), or when the
    Frank-Wolfe gap is below ``1e-9 psi``; the gap reached is reported.
``"bpcg"`` (alias ``"fw"``, also :func:`least_squares_decision`)
    Every term whose least-squares residual is ``<= psi`` (the others cannot vanish) is
    decided by blended pairwise conditional gradients over the l1 ball from the origin,
    run until the Frank-Wolfe gap is ``<= cg_tol``; it gives sparser generators.
``"abm"`` (:func:`abm_decision`)
    Approximate Buchberger-Moeller: ``v`` is the right singular vector of ``[A, u(X)]`` for
    its smallest singular value sigma (``||v||_2 = 1``); ``u`` vanishes when
    ``sigma^2 / m <= psi``. ``tau`` plays no role. The generator is rescaled by ``1 / v_u``
    to a leading coefficient 1 when the rescaled polynomial still vanishes,
    ``sigma^2 / (m v_u^2) <= psi``; otherwise (small ``v_u``: the vanishing combination
    leans on the O terms) ``v`` is kept l2-normalised with its leading coefficient ``v_u``
    (sign chosen positive). A term with ``|v_u| < 1e-12`` has no leading term at all and
    joins O.

An oracle sees a border term through the :class:`BorderTerm` protocol, which the engines
(the blocked QR of :mod:`.linalg`, the brute-force least squares of :mod:`.reference`)
implement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vinet_utils.oavi.solvers import L1BallResult, l1_ball_bpcg, l1_ball_decide


class BorderTerm(Protocol):
    """A border term ``u`` against the current O, as an oracle needs it."""

    m: int  # number of points
    size: int  # |O|: the number of coefficients of a generator led by u
    squared_residual: float  # min_c ||A c + u(X)||^2 without the bound

    @property
    def coefficients(self) -> np.ndarray:
        """The least-squares coefficients ``c`` (length ``size``)."""

    def quadratic(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(H, a, bb)`` with ``||A c + u(X)||^2 = c^T H c + 2 a^T c + bb``."""

    def smallest_singular_pair(self, threshold: float) -> tuple[float, np.ndarray] | None:
        """Smallest squared singular value of ``[A, u(X)]`` and its unit right singular vector
        (``u``'s entry last); None allowed when the value certainly exceeds ``threshold``."""


@dataclass(slots=True)
class Decision:
    """The oracle's verdict on one border term ``u``.

    Attributes:
        vanishes: ``u`` leads a generator (joins G); otherwise ``u`` joins O.
        coefficients: the generator's coefficients over O (when it vanishes).
        leading_coefficient: the coefficient of ``u`` (1 except for l2-normalised ABM vectors).
        bound_active: the least-squares solution vanished but had ``||c||_1 > tau - 1``.
        oracle: the sparse oracle's run, when it ran (its coefficients, value, duality gap,
            iterations), and ``oracle_time_s`` its wall time.
    """

    vanishes: bool
    coefficients: np.ndarray | None = None
    leading_coefficient: float = 1.0
    bound_active: bool = False
    oracle: L1BallResult | None = None
    oracle_time_s: float = 0.0

    @property
    def from_sparse_oracle(self) -> bool:
        return self.vanishes and self.oracle is not None

    @property
    def gap(self) -> float:
        """The Frank-Wolfe duality gap at which the sparse oracle stopped (0 without it)."""
        return self.oracle.gap if self.oracle is not None else 0.0


@dataclass(frozen=True)
class Oracle:
    """How border terms are decided: the oracle ``kind`` (``"ihb"``, ``"bpcg"`` or ``"abm"``),
    psi, tau (the l1 bound is ``tau - 1``), and the sparse oracle's ``cg_tol`` (``"bpcg"``)
    and ``cg_max_iter``."""

    kind: str
    psi: float
    tau: float
    cg_tol: float
    cg_max_iter: int

    def decide(self, term: BorderTerm) -> Decision:
        if self.kind == "abm":
            return abm_decision(term, self.psi)
        return least_squares_decision(term, self)


def least_squares_decision(term: BorderTerm, oracle: Oracle) -> Decision:
    """The ``"ihb"`` and ``"bpcg"`` oracles: closed form where the l1 bound is inactive, the
    sparse oracle where it binds (``"ihb"``) or always (``"bpcg"``)."""
    if term.squared_residual > oracle.psi * term.m:  # even the unbounded minimum is above psi
        return Decision(False)
    c = term.coefficients
    bound_active = float(np.abs(c).sum()) > oracle.tau - 1
    if oracle.kind == "ihb" and not bound_active:
        return Decision(True, c)
    H, a, bb = term.quadratic()
    tic = time.perf_counter()
    radius = oracle.tau - 1
    if oracle.kind == "ihb":
        result = l1_ball_decide(H, a, bb, term.m, radius, oracle.psi, c, max_iter=oracle.cg_max_iter,
                                residual=term.squared_residual)
    else:
        result = l1_ball_bpcg(H, a, bb, term.m, radius, psi=oracle.psi, tol=oracle.cg_tol, max_iter=oracle.cg_max_iter)
    vanishes = result.value <= oracle.psi
    return Decision(vanishes, result.coef if vanishes else None, bound_active=bound_active, oracle=result,
                    oracle_time_s=time.perf_counter() - tic)


def abm_decision(term: BorderTerm, psi: float) -> Decision:
    """The ``"abm"`` oracle: the smallest singular pair of ``[A, u(X)]``."""
    m = term.m
    pair = term.smallest_singular_pair(psi * m)
    if pair is None:
        return Decision(False)
    sigma2, v = pair
    if sigma2 / m > psi or abs(v[-1]) < 1e-12:
        return Decision(False)
    if sigma2 / (m * v[-1] ** 2) <= psi:  # rescaled to a leading 1, it still vanishes
        return Decision(True, v[:-1] / v[-1])
    v = v * np.sign(v[-1])
    return Decision(True, v[:-1], leading_coefficient=float(v[-1]))
