"""The brute-force reference: the same degree loop and oracle as :meth:`OAVI.fit`, with a
fresh ``torch.linalg.lstsq`` (or SVD, for ABM) on the current ``A`` for every border term.

Used by the tests and :mod:`vinet_utils.experiments.bench` to check that the blocked fit makes the
same decisions, and to time it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterator

import numpy as np
import torch

from vinet_utils.oavi.algorithm import Generators
from vinet_utils.oavi.decisions import Decision
from vinet_utils.oavi.estimator import OAVI


def brute_force_fit(X, psi: float = 0.005, max_degree: int = 10, tau: float | None = None, oracle: str = "ihb",
                    **kwargs) -> OAVI:
    """An :class:`OAVI` fitted by the brute-force reference (same parameters as ``OAVI``)."""
    model = OAVI(psi=psi, max_degree=max_degree, tau=tau, oracle=oracle, **kwargs)
    return model.fit_with(X, LstsqEngine)


class LstsqEngine:
    """``A`` kept as an ``m x |O|`` matrix; a degree's border is one block."""

    def __init__(self, X: torch.Tensor):
        self.X = X
        self.A = torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)

    @property
    def size(self) -> int:
        return self.A.shape[1]

    def border_blocks(self, parents: np.ndarray, variables: np.ndarray) -> Iterator["LstsqBlock"]:
        device = self.X.device
        yield LstsqBlock(self, self.A[:, torch.as_tensor(parents, device=device)]
                         * self.X[:, torch.as_tensor(variables, device=device)])


class LstsqBlock:
    """A degree's whole border ``B`` (one column per term) against the growing ``A``."""

    start = 0

    def __init__(self, engine: LstsqEngine, B: torch.Tensor):
        self.engine = engine
        self.B = B

    @property
    def n_terms(self) -> int:
        return self.B.shape[1]

    def decide_ahead(self, j: int, oracle) -> tuple[int, list[int]]:
        """Nothing is decided ahead: every term goes through :meth:`term` and the oracle."""
        return j, []

    def term(self, j: int) -> "LstsqTerm":
        return LstsqTerm(self.engine.A, self.B[:, j], j)

    def append(self, j: int) -> None:
        self.engine.A = torch.cat([self.engine.A, self.B[:, j : j + 1]], dim=1)

    def finish(self, generators: list[tuple["LstsqTerm", Decision]]) -> Generators:
        """The generators, each evaluated on the points: ``g(X) = lead u(X) + A c``."""
        A = self.engine.A
        mse = np.empty(len(generators))
        for i, (term, decision) in enumerate(generators):
            c = torch.as_tensor(decision.coefficients, dtype=A.dtype, device=A.device)
            g = A[:, : c.shape[0]] @ c + decision.leading_coefficient * term.b
            mse[i] = float(g @ g) / A.shape[0]
        return Generators.of_decisions(generators, A.shape[1], mse)


class LstsqTerm:
    """A border term ``b = u(X)`` against ``A``, solved from scratch."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor, position: int):
        self.A, self.b, self.position = A, b, position
        self.m, self.size = A.shape

    @cached_property
    def _least_squares(self) -> tuple[float, np.ndarray]:
        c = torch.linalg.lstsq(self.A, -self.b[:, None]).solution[:, 0]
        r = self.A @ c + self.b
        return float(r @ r), c.cpu().numpy()

    @property
    def squared_residual(self) -> float:
        return self._least_squares[0]

    @property
    def coefficients(self) -> np.ndarray:
        return self._least_squares[1]

    def quadratic(self) -> tuple[np.ndarray, np.ndarray, float]:
        A, b = self.A, self.b
        return (A.T @ A).cpu().numpy(), (A.T @ b).cpu().numpy(), float(b @ b)

    def smallest_singular_pair(self, threshold: float) -> tuple[float, np.ndarray]:
        _, S, Vh = torch.linalg.svd(torch.cat([self.A, self.b[:, None]], dim=1), full_matrices=False)
        return float(S[-1]) ** 2, Vh[-1].cpu().numpy().copy()
