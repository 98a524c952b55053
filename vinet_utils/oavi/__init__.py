"""OAVI: the Oracle Approximate Vanishing Ideal algorithm (method.md §4).

Given points ``X`` (m x n), OAVI builds two sets of terms, degree by degree:

* ``O``, an order ideal of terms whose evaluations stay linearly independent on ``X``
  (in the sense of psi), starting from ``O = {1}``;
* ``G``, the generators: polynomials ``g = u + sum_j c_j t_j`` with leading term ``u`` (a
  border term, leading coefficient 1; see ABM below) and ``t_j`` in ``O`` that are *psi-approximately
  vanishing*: ``(1/m) sum_i g(x_i)^2 <= psi``.

For every term ``u`` of the degree-``d`` border (see :func:`monomials.border`), in deglex
order, the oracle solves the convex problem

    min_c (1/m) ||A c + u(X)||^2   subject to   ||c||_1 <= tau - 1,

where ``A`` holds the evaluations of the current ``O`` (including terms added earlier in
the same degree). If the minimum is ``<= psi``, ``u + sum c_j t_j`` joins ``G``; otherwise
``u`` joins ``O`` and its column joins ``A``. The fit stops when a degree adds nothing to
``O`` or at ``max_degree``.

Oracles
    ``"ihb"``  closed-form least squares ("inverse Hessian boosting"). ``A = Q R`` is kept
               up to date (Gram-Schmidt with re-orthogonalisation) by a *blocked* fit:
               the border is cut into blocks of ``block_size`` consecutive terms, each
               block is projected on ``Q`` with one matrix product (a second pass for
               the terms that may join ``O``), and within the block each new ``O`` term
               updates the residual norms, projections and least-squares coefficients
               of the block's remaining terms by one product and a rank-one correction
               (see :meth:`OAVI._block`). Decisions and coefficients are those of the
               sequential algorithm in deglex order.
               The unconstrained minimum is a lower bound of the constrained one, so
               a term whose least-squares residual exceeds psi joins ``O`` at once.
               If the residual is small but ``||c||_1 > tau - 1`` (the l1 bound is
               *active*), the term is decided on the spot by the active-set oracle
               (:func:`l1_ball_active_set`), started at the l1-ball projection of the
               least-squares solution and run only until the decision is certain: it
               stops at the first iterate with ``f(c) <= psi`` (a feasible
               psi-vanishing generator) or when a duality lower bound exceeds psi
               (``f(c) - gap > psi``, or a sharper scaled dual bound), or when the
               Frank-Wolfe gap is below ``1e-9 psi``; the gap reached is reported
               (``oracle_gaps_``, ``max_oracle_gap_``).
    ``"bpcg"`` (alias ``"fw"``) blended pairwise conditional gradients over the l1 ball
               of radius ``tau - 1`` for every term whose least-squares residual is
               ``<= psi`` (the others cannot vanish), run from the origin until the
               Frank-Wolfe gap is ``<= cg_tol``; it gives sparser generators.
    ``"abm"``  approximate Buchberger-Moeller: ``v`` is the right singular vector of
               ``[A, u(X)]`` for the smallest singular value sigma, with ``||v||_2 = 1``;
               ``u`` vanishes when ``sigma^2 / m <= psi``. ``tau`` plays no role.
               Storage: the generator is rescaled by ``1 / v_u`` so that its leading
               coefficient is 1, like the other oracles, when that is well defined,
               meaning the rescaled polynomial still vanishes:
               ``sigma^2 / (m v_u^2) <= psi``. Otherwise (small ``v_u``: the vanishing
               combination leans on the O terms, which happens when ``A`` itself is close
               to the psi level) the l2-normalised ``v`` is kept as it is and
               ``leading_coefficients_`` records ``v_u`` (sign chosen positive).
               Either way every generator has ``train_mse_ <= psi``. (A term with
               ``|v_u| < 1e-12`` would have no leading term at all; it is treated as
               non-vanishing and joins ``O``.)
               The blocked fit decides ABM from the least-squares data: the smallest
               squared singular value is the root of a secular equation over the
               eigenvalues of ``A^T A`` (see :meth:`OAVI._abm_decision`), with the small
               SVD of the triangular factor near ties.

Variable order
    ``ordering="deglex"`` (default) builds terms in the user's variable order.
    ``ordering="pearson"`` first reorders the variables by decreasing sum of absolute
    Pearson correlations with the other variables (:func:`pearson_order`; a documented,
    deterministic rule in the spirit of the reference implementation's Pearson
    ordering, not a transcription of it), fits, and maps every exponent back, so
    ``O_exponents_``, the generators, ``transform`` and ``generators_as_strings`` are in
    the user's variable order; ``variable_order_`` records the permutation. The rows of
    ``O_exponents_`` are then in deglex order of the reordered variables.

Threads
    Small fits (``m * n^2`` below :data:`SMALL_FIT_WORK`) run on one thread, larger ones
    on at most as many threads as the load average leaves idle cores (``threads``
    overrides both); torch's and numpy's OpenBLAS thread counts are restored after the
    fit.

``tau=None`` uses ``tau = (3/2)^D`` with ``D = ceil(-log(psi) / log 4)`` (the bound for
which OAVI provably stops by degree ``D``), clamped to at least 2.
"""

from .estimator import ORACLES, OAVI, NotFittedError, brute_force_fit, default_tau
from .order import ORDERINGS, pearson_order
from .solvers import CGResult, l1_ball_active_set, l1_ball_bpcg, project_l1_ball
from .threads import SMALL_FIT_WORK

__all__ = [
    "OAVI", "NotFittedError", "brute_force_fit", "default_tau", "ORACLES", "ORDERINGS", "SMALL_FIT_WORK",
    "pearson_order", "project_l1_ball", "l1_ball_bpcg", "l1_ball_active_set", "CGResult",
]
