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

    def decide_ahead(self, j: int, oracle: Oracle) -> tuple[int, np.ndarray]:
        """Decide terms ``j..`` in order where the block can without the oracle's general path
        (the same decisions); returns the first term left undecided and the terms that joined
        O. The block keeps the generators it finds for :meth:`finish`. A block may decide
        none (returning ``j``)."""

    def term(self, j: int) -> BorderTerm:
        """Term ``j`` of the block against the current O."""

    def append(self, j: int) -> None:
        """Term ``j`` joins O: its evaluations join ``A``."""

    def finish(self, generators: list[tuple[BorderTerm, Decision]]) -> "Generators":
        """Close the block; return every generator found in it, in term order: those it decided
        ahead and ``generators`` (the oracle's: the term and the decision that made it)."""


class Engine(Protocol):
    """The linear algebra of a fit."""

    @property
    def size(self) -> int:
        """``|O|`` so far."""

    def border_blocks(self, parents: np.ndarray, variables: np.ndarray) -> Iterator[Block]:
        """The border whose term ``i`` is O term ``parents[i]`` times variable ``variables[i]``,
        in blocks; each block is finished before the next is asked for."""


@dataclass
class Generators:
    """Generators ``g = lead * u + sum_t c_t t`` of G found in one block, in term order."""

    positions: np.ndarray  # int (g,): each leading term's place in the block
    coefficients: np.ndarray  # (g, k): over the first k terms of O, zeros past the |O| it was found at
    leading_coefficients: np.ndarray  # (g,)
    train_mse: np.ndarray  # (g,): (1/m) sum_i g(x_i)^2
    from_sparse_oracle: np.ndarray  # bool (g,)
    oracle_gaps: np.ndarray  # (g,)

    @classmethod
    def of_decisions(cls, found: list[tuple[BorderTerm, Decision]], k: int, train_mse: np.ndarray) -> "Generators":
        """The generators the oracle found (each term, which has a ``position``, and its decision)."""
        coefficients = np.zeros((len(found), k))
        for i, (_, decision) in enumerate(found):
            coefficients[i, : decision.coefficients.size] = decision.coefficients
        return cls(positions=np.array([term.position for term, _ in found], dtype=np.int64),
                   coefficients=coefficients,
                   leading_coefficients=np.array([d.leading_coefficient for _, d in found], dtype=np.float64),
                   train_mse=np.asarray(train_mse, dtype=np.float64),
                   from_sparse_oracle=np.array([d.from_sparse_oracle for _, d in found], dtype=bool),
                   oracle_gaps=np.array([d.gap for _, d in found], dtype=np.float64))

    @classmethod
    def joined(cls, batches: list["Generators"], k: int) -> "Generators":
        """The batches one after the other, their coefficients padded with zeros to ``k`` columns."""
        batches = [cls.of_decisions([], k, np.zeros(0)), *batches]  # an empty one gives the dtypes
        coefficients = np.zeros((sum(len(b.positions) for b in batches), k))
        row = 0
        for b in batches:
            coefficients[row : row + len(b.positions), : b.coefficients.shape[1]] = b.coefficients
            row += len(b.positions)
        return cls(**{f: coefficients if f == "coefficients" else np.concatenate([getattr(b, f) for b in batches])
                      for f in cls.__dataclass_fields__})

    def merged(self, other: "Generators") -> tuple["Generators", np.ndarray]:
        """These and ``other`` in one, in term order, and the order taken (indices into the
        concatenation of these and ``other``)."""
        both = Generators.joined([self, other], max(self.coefficients.shape[1], other.coefficients.shape[1]))
        order = np.argsort(both.positions, kind="stable")
        return Generators(**{f: getattr(both, f)[order] for f in Generators.__dataclass_fields__}), order


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
    """What a fit found: O (deglex order, row 0 the constant term), G in the order found (its
    leading terms, coefficients over O, leading coefficients, mean squared values on the
    points, and whether and how far the sparse oracle ran), the work done, and the highest
    degree whose border was examined."""

    O_exponents: np.ndarray
    leading_exponents: np.ndarray  # (|G|, n)
    coefficients: np.ndarray  # (|G|, |O|), zeros past the |O| each generator was found at
    leading_coefficients: np.ndarray
    train_mse: np.ndarray
    from_sparse_oracle: np.ndarray
    oracle_gaps: np.ndarray
    stats: FitStats
    max_degree_reached: int


def fit_oavi(X: torch.Tensor, engine: Engine, oracle: Oracle, max_degree: int, progress: bool = False) -> FitResult:
    """Run OAVI on the points ``X`` (``m x n``) with ``engine`` doing the linear algebra."""
    n = X.shape[1]
    O_by_degree = [np.zeros((1, n), dtype=np.int64)]  # O = {1}
    last_O_index = np.zeros(1, dtype=np.int64)  # positions in O of the last degree's terms
    leads: list[np.ndarray] = []
    batches: list[Generators] = []
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
                j, joined = block.decide_ahead(j, oracle)
                joins_O[block.start + np.asarray(joined, dtype=np.int64)] = True
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
            batch = block.finish(found)
            leads.append(terms[block.start + batch.positions])
            batches.append(batch)
            if bar is not None:
                bar.update(block.n_terms)
        stats.border_terms += terms.shape[0]
        if not joins_O.any():
            break
        O_by_degree.append(terms[joins_O])
        last_O_index = np.arange(size_before, engine.size, dtype=np.int64)
    if bar is not None:
        bar.close()
    O = np.vstack(O_by_degree)
    G = Generators.joined(batches, O.shape[0])
    return FitResult(O_exponents=O, leading_exponents=np.vstack([np.zeros((0, n), np.int64), *leads]),
                     coefficients=G.coefficients, leading_coefficients=G.leading_coefficients,
                     train_mse=G.train_mse, from_sparse_oracle=G.from_sparse_oracle, oracle_gaps=G.oracle_gaps,
                     stats=stats, max_degree_reached=degree_reached)


def _progress_bar():
    from tqdm.auto import tqdm

    return tqdm(desc="OAVI", unit="term")
