"""Term bookkeeping for OAVI and the polynomial layer (docs/method.md §4 and §6).

A *term* (monomial) ``x^a = x_0^{a_0} * ... * x_{n-1}^{a_{n-1}}`` is stored as its
exponent vector ``a``: a tuple of ints in the bookkeeping, a row of an int array in
the public attributes.

Term order
    Degree-lexicographic with ``x_0 < x_1 < ... < x_{n-1}``: terms are compared by total
    degree first, then by the exponent of ``x_{n-1}``, then of ``x_{n-2}``, and so on.
    For two variables the order starts ``1 < x0 < x1 < x0^2 < x0*x1 < x1^2 < x0^3 ...``,
    so on the circle the generator found at degree 2 has the leading term ``x1^2``.

Recursive evaluation
    Every term except the constant has a *parent*: the term divided by one of its
    variables. A set of terms that contains the parent of each of its members (its
    *closure*) is evaluated degree by degree: the block of degree-``d`` columns is one
    gather of degree-``(d-1)`` columns times one gather of variables, never a fresh
    power computation.

Border (docs/method.md §4)
    The degree-``d`` border of an order ideal ``O`` is the set of degree-``d`` terms all of
    whose degree-``(d-1)`` divisors lie in ``O``. Such a term cannot be divisible by a
    leading term of ``G`` (those never enter ``O``), and each of its divisors in ``O``
    can serve as its parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from vinet_utils.oavi import _kernels

Exponent = tuple[int, ...]


# --------------------------------------------------------------------------- order
def degree(term: Sequence[int]) -> int:
    """Total degree ``|a| = a_0 + ... + a_{n-1}`` of a term."""
    return int(sum(term))


def deglex_key(term: Sequence[int]) -> tuple:
    """Sort key of the degree-lexicographic order with ``x_0 < x_1 < ... < x_{n-1}``."""
    term = tuple(term)
    return (sum(term), term[::-1])


def deglex_sort(terms: Iterable[Sequence[int]]) -> list[Exponent]:
    """The terms as tuples of ints, sorted increasingly in the deglex order."""
    return sorted((t if type(t) is tuple else tuple(int(e) for e in t) for t in terms), key=deglex_key)


def deglex_argsort(exponents: np.ndarray) -> np.ndarray:
    """Indices that sort the rows of an exponent array increasingly in the deglex order."""
    exponents = np.asarray(exponents)
    if exponents.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # np.lexsort sorts by the last key first: total degree, then x_{n-1}, x_{n-2}, ...
    keys = [exponents[:, i] for i in range(exponents.shape[1])] + [exponents.sum(axis=1)]
    return np.lexsort(keys)


# ------------------------------------------------------------- exponent helpers
def constant_term(n: int) -> Exponent:
    """The exponent vector of the constant term 1."""
    return (0,) * n


def variable_term(n: int, i: int) -> Exponent:
    """The exponent vector of the variable ``x_i``."""
    return tuple(1 if j == i else 0 for j in range(n))


def multiply(term: Exponent, i: int) -> Exponent:
    """``term * x_i``."""
    return term[:i] + (term[i] + 1,) + term[i + 1:]


def divide(term: Exponent, i: int) -> Exponent:
    """``term / x_i``; requires ``x_i`` to divide ``term``."""
    if term[i] <= 0:
        raise ValueError(f"x{i} does not divide the term {term}")
    return term[:i] + (term[i] - 1,) + term[i + 1:]


def divisors(term: Exponent) -> list[tuple[Exponent, int]]:
    """The degree-``(|term|-1)`` divisors ``term / x_i``, each with its variable ``i``."""
    return [(divide(term, i), i) for i, e in enumerate(term) if e > 0]


def divides(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether the term ``a`` divides the term ``b``."""
    return all(x <= y for x, y in zip(a, b))


def canonical_parent(term: Exponent) -> tuple[Exponent, int]:
    """The default parent of a non-constant term: divide by its highest-index variable."""
    for i in range(len(term) - 1, -1, -1):
        if term[i] > 0:
            return divide(term, i), i
    raise ValueError("the constant term has no parent")


# ------------------------------------------------------------------- border
def border(
    O_previous_degree: Sequence[Exponent], O_index: Mapping[Exponent, int], n: int
) -> tuple[list[Exponent], np.ndarray, np.ndarray]:
    """Degree-``d`` border of the order ideal ``O``, in deglex order.

    Args:
        O_previous_degree: the terms of ``O`` of degree ``d-1``.
        O_index: every term of ``O`` mapped to its column in the evaluation matrix ``A``.
        n: number of variables.

    Returns:
        ``(terms, parents, variables)``: the border terms ``u``, and for each the column
        of a parent ``t`` in ``O`` and the variable ``i`` with ``u = t * x_i``, so that
        ``u(X) = A[:, parent] * X[:, i]`` is a single column product.
    """
    candidates: set[Exponent] = set()
    for t in O_previous_degree:
        for i in range(n):
            candidates.add(multiply(t, i))
    terms, parents, variables = [], [], []
    for u in deglex_sort(candidates):
        divs = divisors(u)
        if all(t in O_index for t, _ in divs):
            t, i = canonical_parent(u)
            terms.append(u)
            parents.append(O_index[t])
            variables.append(i)
    return terms, np.asarray(parents, dtype=np.int64), np.asarray(variables, dtype=np.int64)


def border_array(
    previous: np.ndarray, previous_index: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`border`: the same terms, order and parents, for exponent arrays.

    Args:
        previous: ``(p, n)`` int array, the (distinct) terms of ``O`` of degree ``d-1``.
        previous_index: ``(p,)`` column of each of them in the evaluation matrix ``A``.
        n: number of variables.

    Returns:
        ``(terms, parents, variables)``: ``(nb, n)`` int64 border terms in deglex order, and
        per term the column of its canonical parent (divide by the highest-index variable)
        and that variable.

    Each candidate ``u`` arises once, from its canonical parent, and is in the border exactly
    when each of its divisors ``u / x_i`` (one per variable with a positive exponent) lies in
    ``previous`` (a compiled loop, :func:`~vinet_utils.oavi._kernels.border_terms`).
    """
    previous = np.ascontiguousarray(previous, dtype=np.int64).reshape(-1, n)
    previous_index = np.ascontiguousarray(previous_index, dtype=np.int64)
    terms, parents, variables, count = _kernels.border_terms(previous, previous_index)
    if count < 0:  # not in deglex order: sort a copy first
        order = deglex_argsort(previous)
        terms, parents, variables, count = _kernels.border_terms(np.ascontiguousarray(previous[order]),
                                                                 previous_index[order])
    return terms, parents, variables


# ------------------------------------------------------------------ closure
def closure(terms: Iterable[Sequence[int]], n: int) -> dict[Exponent, tuple[Exponent, int] | None]:
    """Closure of a set of terms under "parent", kept small.

    Returns a dict mapping every term of the closure to ``(parent, variable)`` (``None`` for
    the constant term). Each term keeps, where possible, a parent that is already in the
    set; otherwise parents are added greedily, the one shared by most still-orphaned
    terms first, so the closure stays small.
    """
    by_degree: dict[int, set[Exponent]] = {}
    for t in terms:
        t = tuple(int(e) for e in t)
        if len(t) != n or min(t, default=0) < 0:
            raise ValueError(f"bad exponent vector {t} for {n} variables")
        by_degree.setdefault(degree(t), set()).add(t)
    by_degree.setdefault(0, set()).add(constant_term(n))
    top = max(by_degree)
    parent_of: dict[Exponent, tuple[Exponent, int] | None] = {constant_term(n): None}
    for d in range(top, 0, -1):
        level = by_degree.get(d, set())
        below = by_degree.setdefault(d - 1, set())
        orphans = []
        for u in deglex_sort(level):
            present = [(t, i) for t, i in divisors(u) if t in below]
            if present:
                parent_of[u] = min(present, key=lambda ti: deglex_key(ti[0]))
            else:
                orphans.append(u)
        while orphans:
            votes: dict[Exponent, int] = {}
            for u in orphans:
                for t, _ in divisors(u):
                    votes[t] = votes.get(t, 0) + 1
            best = min(votes, key=lambda t: (-votes[t], deglex_key(t)))
            below.add(best)
            still = []
            for u in orphans:
                i = next((i for t, i in divisors(u) if t == best), None)
                if i is None:
                    still.append(u)
                else:
                    parent_of[u] = (best, i)
            orphans = still
    return parent_of


@dataclass(frozen=True)
class EvaluationPlan:
    """How to evaluate a set of terms recursively.

    Attributes:
        exponents: ``(T, n)`` closure terms in deglex order; row 0 is the constant 1.
        offsets: ``offsets[d]`` is the first row of degree ``d``; ``offsets[-1] == T``.
        parents: for each degree ``d >= 1``, the parent of every degree-``d`` term as an
            index *into the degree-(d-1) block*.
        variables: for each degree ``d >= 1``, the variable multiplying the parent.
        support: row of each requested term, in the order the terms were given.
    """

    exponents: np.ndarray
    offsets: np.ndarray
    parents: tuple[np.ndarray, ...]
    variables: tuple[np.ndarray, ...]
    support: np.ndarray

    @property
    def n_terms(self) -> int:
        """Size ``T`` of the closure."""
        return int(self.exponents.shape[0])

    @property
    def max_degree(self) -> int:
        """Highest degree in the closure."""
        return len(self.parents)


def evaluation_plan(exponents: np.ndarray | Sequence[Sequence[int]], n: int | None = None) -> EvaluationPlan:
    """Build the recursive evaluation plan of a set of terms (rows of ``exponents``)."""
    exponents = np.asarray(exponents, dtype=np.int64)
    if exponents.ndim != 2:
        raise ValueError(f"exponents must be a 2-D int array (terms x variables), got shape {exponents.shape}")
    n = exponents.shape[1] if n is None else n
    requested = [tuple(int(e) for e in row) for row in exponents]
    parent_of = closure(requested, n)
    ordered = deglex_sort(parent_of)
    row = {t: r for r, t in enumerate(ordered)}
    degrees = np.array([degree(t) for t in ordered], dtype=np.int64)
    top = int(degrees[-1])
    offsets = np.searchsorted(degrees, np.arange(top + 2), side="left").astype(np.int64)
    parents, variables = [], []
    for d in range(1, top + 1):
        block = ordered[offsets[d]:offsets[d + 1]]
        parents.append(np.array([row[parent_of[u][0]] - offsets[d - 1] for u in block], dtype=np.int64))
        variables.append(np.array([parent_of[u][1] for u in block], dtype=np.int64))
    support = np.array([row[t] for t in requested], dtype=np.int64)
    return EvaluationPlan(
        exponents=np.array(ordered, dtype=np.int64).reshape(len(ordered), n),
        offsets=offsets,
        parents=tuple(parents),
        variables=tuple(variables),
        support=support,
    )


def evaluate_recursive(
    X: torch.Tensor, parents: Sequence[torch.Tensor], variables: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Evaluate all closure terms at the rows of ``X``; returns ``(m, T)``.

    The degree-``d`` block is ``block_{d-1}[:, parents[d]] * X[:, variables[d]]``: one gather
    and one multiply per degree, differentiable in ``X``.
    """
    block = torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)
    blocks = [block]
    for p, v in zip(parents, variables):
        block = block.index_select(1, p) * X.index_select(1, v)
        blocks.append(block)
    return torch.cat(blocks, dim=1)


def evaluate_plan(X: torch.Tensor, plan: EvaluationPlan) -> torch.Tensor:
    """Evaluate the closure of ``plan`` at the rows of ``X``; returns ``(m, T)``."""
    parents = [torch.as_tensor(p, device=X.device) for p in plan.parents]
    variables = [torch.as_tensor(v, device=X.device) for v in plan.variables]
    return evaluate_recursive(X, parents, variables)


# ---------------------------------------------------------------- formatting
def term_to_string(term: Sequence[int], names: Sequence[str] | None = None) -> str:
    """``(2, 0, 1)`` -> ``"x0^2*x2"``; the constant term gives ``"1"``."""
    names = [f"x{i}" for i in range(len(term))] if names is None else list(names)
    factors = [names[i] if e == 1 else f"{names[i]}^{e}" for i, e in enumerate(term) if e > 0]
    return "*".join(factors) if factors else "1"


def polynomial_to_string(
    leading: Sequence[int],
    terms: Sequence[Sequence[int]],
    coefficients: Sequence[float],
    names: Sequence[str] | None = None,
    precision: int = 3,
    leading_coefficient: float = 1.0,
) -> str:
    """Readable form of ``leading_coefficient * leading + sum_j coefficients[j] * terms[j]``.

    The leading term is written first (its coefficient only when it is not 1), the other
    terms follow in decreasing deglex order; coefficients that round to zero are left
    out. Example: ``"x1^2 + 1.000 x0^2 - 0.999"``.
    """
    lead = term_to_string(leading, names)
    if leading_coefficient != 1.0:
        lead = f"{leading_coefficient:.{precision}f} {lead}"
    parts = [lead]
    cutoff = 0.5 * 10.0 ** (-precision)
    order = sorted(range(len(terms)), key=lambda j: deglex_key(terms[j]), reverse=True)
    for j in order:
        c = float(coefficients[j])
        if abs(c) < cutoff:
            continue
        sign = "-" if c < 0 else "+"
        magnitude = f"{abs(c):.{precision}f}"
        monomial = term_to_string(terms[j], names)
        parts.append(f"{sign} {magnitude}" if monomial == "1" else f"{sign} {magnitude} {monomial}")
    return " ".join(parts)
