"""Variable orderings for OAVI.

``ordering="deglex"`` (default) builds terms in the user's variable order. The other
orderings first permute the variables, fit, and map every exponent back, so
``O_exponents_``, the generators, ``transform`` and ``generators_as_strings`` are in the
user's variable order; ``variable_order_`` records the permutation, and the rows of
``O_exponents_`` are then in deglex order of the permuted variables.

The Pearson orderings score each variable by the sum of the absolute Pearson
correlation coefficients between it and the other variables (:func:`pearson_order`):

* ``"pearson"``: increasing score, the least correlated variables first, so that the
  first columns are as linearly independent as possible (the ``"pearson"`` term
  ordering of the authors' reference implementation);
* ``"rev_pearson"``: decreasing score (the reference's ``"rev pearson"``).

Deglex order then applies to the permuted variables at every degree.
"""

from __future__ import annotations

import numpy as np
import torch

from vinet_utils.oavi.arrays import shared_workspace, transposed_points

ORDERINGS = ("deglex", "pearson", "rev_pearson")


def pearson_order(X: np.ndarray, reverse: bool = False) -> np.ndarray:
    """The variables sorted by increasing (``reverse``: decreasing) sum of absolute Pearson
    correlation coefficients with the other variables; ties keep the lower index first,
    and a constant variable counts as uncorrelated. Returns the permutation ``perm``:
    internal variable ``i`` is the user's variable ``perm[i]``."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[1]
    sums = np.ones(X.shape[0]) @ X  # one BLAS product each
    mean = sums / max(X.shape[0], 1)
    C = X.T @ X - np.outer(sums, mean)  # the centred Gram matrix, without a centred copy of X
    if not (np.diag(C) > 1e-4 * sums * mean).all():
        # a variable constant, or whose spread is small against its mean: the difference above
        # would lose more than 12 digits to rounding, so centre the points themselves
        Z = X - mean
        C = Z.T @ Z
    norms = np.sqrt(np.diag(C).copy())
    scale = np.where(norms > 0, norms, 1.0)
    C = np.abs(C / scale[:, None] / scale[None, :])
    C[:, norms == 0] = 0.0
    C[norms == 0, :] = 0.0
    np.fill_diagonal(C, 0.0)
    score = C.sum(axis=1)
    return np.lexsort((np.arange(n), -score if reverse else score)).astype(np.int64)


def variable_order(X: torch.Tensor, ordering: str) -> np.ndarray:
    """The permutation of the variables of the points ``X`` that ``ordering`` asks for."""
    if ordering == "deglex":
        return np.arange(X.shape[1], dtype=np.int64)
    return pearson_order(X.cpu().numpy(), reverse=ordering == "rev_pearson")


def permuted(X: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """The points ``X`` with internal variable ``i`` the user's ``perm[i]``, laid out as the fit
    reads them: transposed, a variable's values contiguous (``permuted(X, perm).T`` is
    contiguous). On the CPU the copy lives in the thread's workspace, whose pages later fits
    reuse (:func:`~.arrays.transposed_points`), until the next fit asks for it."""
    if X.device.type == "cpu":
        return torch.from_numpy(transposed_points(X, shared_workspace(), perm)).T
    return X.T[torch.as_tensor(perm, device=X.device)].contiguous().T
