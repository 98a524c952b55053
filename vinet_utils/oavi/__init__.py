"""OAVI: the Oracle Approximate Vanishing Ideal algorithm (docs/method.md §4).

Given points ``X`` (m x n), OAVI builds two sets of terms, degree by degree:

* ``O``, an order ideal of terms whose evaluations stay linearly independent on ``X``
  (in the sense of psi), starting from ``O = {1}``;
* ``G``, the generators: polynomials ``g = u + sum_t c_t t`` with leading term ``u`` (a
  border term) and ``t`` in ``O`` that are *psi-approximately vanishing*:
  ``(1/m) sum_i g(x_i)^2 <= psi``, with ``||c||_1 <= tau - 1``.

For every term ``u`` of the degree-``d`` border, in deglex order, an oracle decides
whether ``min_c (1/m) ||A c + u(X)||^2 <= psi`` over ``||c||_1 <= tau - 1`` (``A``: the
evaluations of the current ``O``): if so ``u + sum_t c_t t`` joins ``G``, otherwise ``u``
joins ``O``. The fit stops when a degree adds nothing to ``O`` or at ``max_degree``.

Modules, in the algorithm's terms:

* :mod:`.algorithm`: the degree loop "border -> decide -> G or O -> stop";
* :mod:`.decisions`: the oracles (``"ihb"`` closed form with a sparse oracle where the l1
  bound binds, ``"bpcg"``, ``"abm"``), each returning a :class:`~.decisions.Decision`;
* :mod:`.solvers`: the l1-ball solvers of the sparse oracle;
* :mod:`.linalg`: the border projected in blocks on ``A = Q R`` (:mod:`.basis`), which makes
  the fit fast, on the arrays and the reused workspace of :mod:`.arrays`, and ABM's secular
  equation in :mod:`.secular`;
* :mod:`.gram`: small closed-form fits decided whole from inner products, one pass over
  the points per degree (the blocked engine takes over where it cannot decide);
* :mod:`.reference`: :func:`brute_force_fit`, the same loop with one least-squares solve
  per border term;
* :mod:`.estimator`: :class:`OAVI`, scikit-learn shaped;
* :mod:`.order`, :mod:`.threads`, :mod:`.validation`, :mod:`.evaluation`: variable
  orderings, thread control, parameter rules, evaluating ``G(X)``.

``tau=None`` uses ``tau = (3/2)^D`` with ``D = ceil(-log(psi) / log 4)`` (the bound for
which OAVI provably stops by degree ``D``), clamped to at least 2 (:func:`default_tau`).
"""

import sys

from vinet_utils.oavi import monomials
from vinet_utils.oavi.estimator import OAVI, NotFittedError
from vinet_utils.oavi.order import ORDERINGS, pearson_order
from vinet_utils.oavi.reference import brute_force_fit
from vinet_utils.oavi.solvers import L1BallResult, l1_ball_active_set, l1_ball_bpcg, l1_ball_decide, project_l1_ball
from vinet_utils.oavi.threads import SMALL_FIT_WORK
from vinet_utils.oavi.validation import ORACLES, check_tau, default_tau

OAVI.__module__ = __name__  # pickles name the class vinet_utils.oavi.OAVI, wherever it is defined
# An OAVI pickled before the monomials moved into this package names them
# vinet_utils.monomials; its first name is this package, so the alias is in place in time.
sys.modules.setdefault("vinet_utils.monomials", monomials)

__all__ = [
    "OAVI", "NotFittedError", "brute_force_fit", "default_tau", "check_tau", "ORACLES", "ORDERINGS",
    "SMALL_FIT_WORK", "pearson_order", "project_l1_ball", "l1_ball_bpcg", "l1_ball_active_set", "l1_ball_decide",
    "L1BallResult",
]
