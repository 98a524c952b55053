"""Variable orderings for OAVI."""

from __future__ import annotations

import numpy as np

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

