"""Pruning of the class-wise generators (docs/method.md §5).

A generator ``p`` of class ``j`` vanishes (approximately) on class ``j``'s points; it is
useful to a classifier only if it stays away from zero on the other classes. Its score
is the distance from zero on the *nearest* other class,

    score(p) = min over k != j of mean_i |p(z_i^k)|,

so a low score means ``p`` also (nearly) vanishes on some other class. Each class keeps
its ``keep_per_class`` best-scoring generators; between equal scores (to a relative
1e-9) the sparser polynomial (fewer nonzero coefficients, the leading one included)
wins, then the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class PruneResult:
    """Outcome of :func:`prune`.

    Attributes:
        kept: per class, the kept generator indices, best first.
        scores: per class, the score of every generator (index = generator index).
    """

    kept: list[np.ndarray]
    scores: list[np.ndarray]

    @property
    def n_kept(self) -> int:
        """Total number of kept generators."""
        return int(sum(len(k) for k in self.kept))


def _check(models: Sequence, Z_by_class: Sequence) -> None:
    if len(models) != len(Z_by_class):
        raise ValueError(f"got {len(models)} models but {len(Z_by_class)} point sets")
    if len(models) < 2:
        raise ValueError("pruning needs at least 2 classes (a score compares against the other classes)")
    for j, model in enumerate(models):
        if not hasattr(model, "coefficients_"):
            raise ValueError(f"models[{j}] is not fitted")


def generator_scores(models: Sequence, Z_by_class: Sequence) -> list[np.ndarray]:
    """Score of every generator of every class (see the module docstring).

    Args:
        models: fitted :class:`~vinet_utils.oavi.OAVI` models, one per class.
        Z_by_class: the points of each class, arrays of shape ``(m_k, n)``.

    Returns:
        Per class ``j``, an array of length ``models[j].n_generators_``.
    """
    _check(models, Z_by_class)
    scores = []
    for j, model in enumerate(models):
        per_class = [
            np.asarray(model.transform(np.asarray(Z, dtype=np.float64))).mean(axis=0)
            for k, Z in enumerate(Z_by_class)
            if k != j
        ]
        scores.append(np.min(np.stack(per_class), axis=0) if model.n_generators_ else np.zeros(0))
    return scores


def rank_generators(scores: np.ndarray, n_nonzero: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Generator indices by decreasing score; ties go to fewer nonzeros, then lower index.

    Scores within a relative ``rtol`` of the best score of their run count as tied, so a
    difference in the last bits of a float does not override the sparsity preference.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_nonzero = np.asarray(n_nonzero)
    order = np.lexsort((np.arange(scores.size), -scores))  # by score, then index
    ranked = []
    start = 0
    while start < order.size:
        top = scores[order[start]]
        stop = start + 1
        while stop < order.size and top - scores[order[stop]] <= rtol * abs(top):
            stop += 1
        group = order[start:stop]
        ranked.extend(group[np.argsort(n_nonzero[group], kind="stable")])
        start = stop
    return np.asarray(ranked, dtype=np.int64)


def prune(models: Sequence, Z_by_class: Sequence, keep_per_class: int) -> PruneResult:
    """Keep the ``keep_per_class`` best-scoring generators of each class (all of them if a
    class has fewer)."""
    if isinstance(keep_per_class, bool) or not isinstance(keep_per_class, (int, np.integer)) or keep_per_class < 1:
        raise ValueError(f"keep_per_class must be an int >= 1, got {keep_per_class!r}")
    scores = generator_scores(models, Z_by_class)
    kept = []
    for model, s in zip(models, scores):
        n_nonzero = 1 + np.count_nonzero(model.coefficients_, axis=1)
        kept.append(rank_generators(s, n_nonzero)[:keep_per_class].astype(np.int64))
    return PruneResult(kept=kept, scores=scores)
