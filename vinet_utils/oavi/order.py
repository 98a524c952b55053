"""Variable orderings for OAVI.

``ordering="deglex"`` (default) builds terms in the user's variable order. The other
orderings first permute the variables, fit, and map every exponent back, so
``O_exponents_``, the generators, ``transform`` and ``generators_as_strings`` are in the
user's variable order; ``variable_order_`` records the permutation, and the rows of
``O_exponents_`` are then in deglex order of the permuted variables.

``ordering="pearson"`` sorts the variables by decreasing sum of absolute Pearson
correlations with the other variables (:func:`pearson_order`).
"""

from __future__ import annotations

import numpy as np
import torch

ORDERINGS = ("deglex", "pearson")


def pearson_order(X: np.ndarray) -> np.ndarray:
    """Variable order for ``ordering="pearson"``: by decreasing sum of absolute Pearson
    correlations with the other variables (ties: lower index first; a constant variable
    counts as uncorrelated). Returns the permutation ``perm``: internal variable ``i`` is
    the user's variable ``perm[i]``."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[1]
    Z = X - X.mean(axis=0)
    norms = np.sqrt((Z * Z).sum(axis=0))
    safe = np.where(norms > 0, norms, 1.0)
    Z = Z / safe
    C = np.abs(Z.T @ Z)
    C[:, norms == 0] = 0.0
    C[norms == 0, :] = 0.0
    np.fill_diagonal(C, 0.0)
    score = C.sum(axis=1)
    return np.lexsort((np.arange(n), -score)).astype(np.int64)


def variable_order(X: torch.Tensor, ordering: str) -> np.ndarray:
    """The permutation of the variables of the points ``X`` that ``ordering`` asks for."""
    if ordering == "deglex":
        return np.arange(X.shape[1], dtype=np.int64)
    return pearson_order(X.cpu().numpy())
