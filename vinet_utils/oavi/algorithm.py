"""The OAVI algorithm (docs/method.md §4): one loop over degrees.

Starting from ``O = {1}``, for each degree ``d = 1, 2, ...``:

1. the *border* of degree ``d``: the terms of degree ``d`` all of whose divisors of degree
   ``d - 1`` lie in O (:func:`~vinet_utils.oavi.monomials.border_array`), in deglex order; an
   empty border ends the fit;
2. each border term ``u`` in turn is *decided* by the oracle (:mod:`.decisions`) against
   the current O, which includes the terms of this degree that joined O before ``u``;
3. if ``u`` vanishes, the generator ``g = u + sum_t c_t t`` joins G; otherwise ``u`` joins
   O and its evaluations join ``A``;
4. a degree that adds nothing to O ends the fit, as does ``max_degree``.

The linear algebra is left to an *engine*, which hands each degree's border to the loop
in blocks of consecutive terms (:class:`Engine`); a block may decide a run of terms itself
where it makes the oracle's decisions faster (:meth:`Block.decide_ahead`). The engines:
the blocked QR of :mod:`.linalg` for :meth:`OAVI.fit`, one fresh least-squares solve per
term in :mod:`.reference` for :func:`~vinet_utils.oavi.brute_force_fit`. Both run this
loop, so both make their decisions in the same order with the same oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import torch

from vinet_utils.oavi import monomials
from vinet_utils.oavi.decisions import BorderTerm, Decision, Oracle


class Block(Protocol):
    """Consecutive border terms of one degree, decided in order."""

    start: int  # index of the block's first term in the degree's border

    @property
    def n_terms(self) -> int: ...

    def decide_ahead(self, j: int, oracle: Oracle) -> tuple[int, list[int], list[tuple[BorderTerm, Decision]]]:
        """Decide terms ``j..`` in order where the block can without the oracle's general path
        (the same decisions); returns the first term left undecided, the terms that joined O
        and the generators found. A block may decide none (returning ``j``)."""

    def term(self, j: int) -> BorderTerm:
        """Term ``j`` of the block against the current O."""

    def append(self, j: int) -> None:
        """Term ``j`` joins O: its evaluations join ``A``."""

    def finish(self, generators: list[tuple[BorderTerm, Decision]]) -> np.ndarray:
        """Close the block; the mean squared value on the points of each generator found in
        it (its leading term and the decision that made it)."""


class Engine(Protocol):
    """The linear algebra of a fit."""

    @property
    def size(self) -> int:
        """``|O|`` so far."""

    def border_blocks(self, parents: np.ndarray, variables: np.ndarray) -> Iterator[Block]:
        """The border whose term ``i`` is O term ``parents[i]`` times variable ``variables[i]``,
        in blocks; each block is finished before the next is asked for."""


@dataclass
class Generator:
    """A generator ``g = lead * u + sum_t c_t t`` of G (exponents in the fit's variable order)."""

    leading_term: np.ndarray
    coefficients: np.ndarray  # over the first len(coefficients) terms of O
    leading_coefficient: float
    train_mse: float  # (1/m) sum_i g(x_i)^2
    from_sparse_oracle: bool
    oracle_gap: float


@dataclass
class FitStats:
    """Work done by a fit: border terms examined, how often the l1 bound was active, and
    the sparse oracle's calls, iterations, time and largest duality gap (over every call,
    including the terms it sent to O; 0 without calls)."""

    border_terms: int = 0
    bound_active: int = 0
    oracle_calls: int = 0
    oracle_iterations: int = 0
    oracle_time_s: float = 0.0
    max_oracle_gap: float = 0.0

    def record(self, decision: Decision) -> None:
        self.bound_active += decision.bound_active
        if decision.oracle is not None:
            gap = decision.oracle.gap
            self.max_oracle_gap = gap if self.oracle_calls == 0 else max(self.max_oracle_gap, gap)
            self.oracle_calls += 1
            self.oracle_iterations += decision.oracle.iterations
            self.oracle_time_s += decision.oracle_time_s


@dataclass
class FitResult:
    """What a fit found: O (deglex order, row 0 the constant term), G in the order found,
    the work done, and the highest degree whose border was examined."""

    O_exponents: np.ndarray
    generators: list[Generator]
    stats: FitStats
    max_degree_reached: int


def fit_oavi(X: torch.Tensor, engine: Engine, oracle: Oracle, max_degree: int, progress: bool = False) -> FitResult:
    """Run OAVI on the points ``X`` (``m x n``) with ``engine`` doing the linear algebra."""
    n = X.shape[1]
    O_by_degree = [np.zeros((1, n), dtype=np.int64)]  # O = {1}
    last_O_index = np.zeros(1, dtype=np.int64)  # positions in O of the last degree's terms
    generators: list[Generator] = []
    stats = FitStats()
    degree_reached = 0
    bar = _progress_bar() if progress else None
    for degree in range(1, max_degree + 1):
        terms, parents, variables = monomials.border_array(O_by_degree[-1], last_O_index, n)
        if terms.shape[0] == 0:
            break
        degree_reached = degree
        size_before = engine.size
        joins_O = np.zeros(terms.shape[0], dtype=bool)
        for block in engine.border_blocks(parents, variables):
            found, j = [], 0
            while j < block.n_terms:
                j, joined, ahead = block.decide_ahead(j, oracle)
                joins_O[block.start + np.asarray(joined, dtype=np.int64)] = True
                found += ahead
                if j == block.n_terms:
                    break
                term = block.term(j)
                decision = oracle.decide(term)
                stats.record(decision)
                if decision.vanishes:  # g = u + sum_t c_t t joins G
                    found.append((term, decision))
                else:  # u joins O
                    block.append(j)
                    joins_O[block.start + j] = True
                j += 1
            for (term, decision), train_mse in zip(found, block.finish(found)):
                generators.append(Generator(
                    leading_term=terms[block.start + term.position],
                    coefficients=np.array(decision.coefficients, dtype=np.float64),
                    leading_coefficient=decision.leading_coefficient, train_mse=float(train_mse),
                    from_sparse_oracle=decision.from_sparse_oracle, oracle_gap=decision.gap))
            if bar is not None:
                bar.update(block.n_terms)
        stats.border_terms += terms.shape[0]
        if not joins_O.any():
            break
        O_by_degree.append(terms[joins_O])
        last_O_index = np.arange(size_before, engine.size, dtype=np.int64)
    if bar is not None:
        bar.close()
    return FitResult(O_exponents=np.vstack(O_by_degree), generators=generators, stats=stats,
                     max_degree_reached=degree_reached)


def _progress_bar():
    from tqdm.auto import tqdm

    return tqdm(desc="OAVI", unit="term")
