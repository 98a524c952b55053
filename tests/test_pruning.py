"""Tests of generator pruning (docs/method.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from vinet_utils.oavi import OAVI
from vinet_utils.method.pruning import PruneResult, generator_scores, prune, rank_generators


def circle_and_line(seed=0, m=500):
    """Class 0: the unit circle; class 1: a line segment inside it; class 2: a shifted
    smaller circle. No two of the curves meet."""
    rng = np.random.default_rng(seed)
    th = rng.uniform(0, 2 * np.pi, m)
    t = rng.uniform(-1, 1, m)
    Z = [
        np.c_[np.cos(th), np.sin(th)],
        np.c_[0.6 * t, 0.3 * t + 0.1],
        np.c_[0.3 * np.cos(th) + 0.4, 0.3 * np.sin(th) - 0.2],
    ]
    return [z + 0.005 * rng.standard_normal(z.shape) for z in Z]


@pytest.fixture(scope="module")
def fitted():
    Z = circle_and_line()
    return [OAVI(psi=0.004).fit(z) for z in Z], Z


def test_scores_follow_the_definition(fitted):
    models, Z = fitted
    scores = generator_scores(models, Z)
    assert [len(s) for s in scores] == [m.n_generators_ for m in models]
    for j, model in enumerate(models):
        by_class = np.stack([model.transform(z).mean(axis=0) for k, z in enumerate(Z) if k != j])
        np.testing.assert_allclose(scores[j], by_class.min(axis=0), rtol=1e-12)
        # the lowest-degree generators stay farther from zero on the other classes than
        # on their own, and the best of them by a wide margin
        own = model.transform(Z[j]).mean(axis=0)
        lowest = np.flatnonzero(model.degrees_ == model.degrees_.min())
        assert (scores[j][lowest] > own[lowest]).all()
        best = lowest[np.argmax(scores[j][lowest])]
        assert scores[j][best] > 5 * own[best]


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_prune_keeps_the_best_scoring_generators(fitted, keep):
    models, Z = fitted
    result = prune(models, Z, keep_per_class=keep)
    assert isinstance(result, PruneResult)
    assert result.n_kept == sum(min(keep, m.n_generators_) for m in models)
    for model, kept, scores in zip(models, result.kept, result.scores):
        assert len(kept) == min(keep, model.n_generators_) and len(set(kept.tolist())) == len(kept)
        dropped = np.setdiff1d(np.arange(model.n_generators_), kept)
        if len(dropped):
            assert scores[kept].min() >= scores[dropped].max()
        assert (np.diff(scores[kept]) <= 0).all(), "kept generators are listed best first"


def test_prune_keeps_everything_when_asked_for_more(fitted):
    models, Z = fitted
    result = prune(models, Z, keep_per_class=10_000)
    assert [len(k) for k in result.kept] == [m.n_generators_ for m in models]


def test_ties_go_to_the_sparser_polynomial():
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1])
    n_nonzero = np.array([7, 4, 3, 2, 1])
    assert rank_generators(scores, n_nonzero).tolist() == [3, 1, 2, 0, 4]
    # equal scores and equal sparsity: the lower index first
    assert rank_generators(np.ones(3), np.array([2, 2, 1])).tolist() == [2, 0, 1]
    # a difference in the last bits is a tie; a real difference is not
    assert rank_generators(np.array([1.0, 1.0 - 1e-15]), np.array([5, 1])).tolist() == [1, 0]
    assert rank_generators(np.array([1.0, 0.999]), np.array([5, 1])).tolist() == [0, 1]


def test_tie_break_inside_prune(fitted):
    """Two generators with identical values on the other classes (a generator and the
    same polynomial written with extra terms of coefficient ~0 cannot be told apart by
    score), so the sparser one must win. Built by duplicating a fitted generator."""
    models, Z = fitted
    base = models[1]
    dup = OAVI(psi=0.004).fit(Z[1])
    g = int(np.argmax(generator_scores(models, Z)[1]))
    # make generator 0 of `dup` a denser copy of generator g: same values, one more nonzero
    dup.coefficients_ = np.vstack([base.coefficients_[g], base.coefficients_])
    dup.G_leading_exponents_ = np.vstack([base.G_leading_exponents_[g], base.G_leading_exponents_])
    dup.degrees_ = np.r_[base.degrees_[g], base.degrees_]
    dup.leading_coefficients_ = np.r_[base.leading_coefficients_[g], base.leading_coefficients_]
    dup.n_generators_ = base.n_generators_ + 1
    zero = np.flatnonzero(dup.coefficients_[0] == 0)
    assert zero.size
    dup.coefficients_[0, zero[0]] = 1e-300  # counts as a nonzero, changes no value
    dup._build_evaluator()
    result = prune([models[0], dup, models[2]], Z, keep_per_class=1)
    s = result.scores[1]
    assert s[0] == pytest.approx(s[g + 1], rel=1e-12)
    assert result.kept[1].tolist() == [g + 1]


def test_prune_errors(fitted):
    models, Z = fitted
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="keep_per_class"):
            prune(models, Z, keep_per_class=bad)
    with pytest.raises(ValueError, match="at least 2"):
        prune(models[:1], Z[:1], keep_per_class=1)
    with pytest.raises(ValueError, match="point sets"):
        prune(models, Z[:2], keep_per_class=1)
