"""The polynomial layer of VI-Net (docs/method.md §6): ``G(z) = |M(z) C|``.

* ``M(z)`` evaluates the monomials in the union of the kept generators' supports. They
  are computed recursively over their closure (each monomial is its parent monomial
  times one variable): one gather and one multiply per degree, batched over the rows of
  ``z``, with no Python loop over monomials.
* ``C`` (monomials x generators) is a trainable ``nn.Parameter``; with
  ``fixed_support=True`` (the default) its zero pattern is frozen by a mask, so
  fine-tuning never turns a zero coefficient into a parameter.
* ``G = |M(z) C|`` is a dense matrix product followed by an absolute value.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from vinet_utils.oavi import monomials



class NoGenerators(ValueError):
    """No generator to build a polynomial layer from (none vanished, or none kept)."""

class PolynomialLayer(nn.Module):
    """``G(z) = |M(z) C|`` for polynomials given by their monomial support and coefficients.

    Args:
        exponents: ``(T, n)`` int array, the monomials of the support (distinct rows).
        coefficients: ``(T, k)`` array, column g holds the coefficients of polynomial g.
        dtype: parameter dtype (default: torch's default dtype); ``.to()`` works as usual.
        fixed_support: keep the zero pattern of ``C`` during training (see module docs).

    Attributes:
        in_features (n), out_features (k), exponents (the support, numpy), coefficients
        (the ``nn.Parameter`` C), support_mask (buffer ``(T, k)``, 1.0 where C may be
        nonzero), closure_size (monomials evaluated, the support and their parents).
    """

    def __init__(
        self,
        exponents: np.ndarray | Sequence[Sequence[int]],
        coefficients: np.ndarray | Sequence[Sequence[float]],
        *,
        dtype: torch.dtype | None = None,
        fixed_support: bool = True,
    ):
        super().__init__()
        exponents = np.asarray(exponents, dtype=np.int64)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if exponents.ndim != 2 or exponents.shape[0] == 0 or exponents.shape[1] == 0:
            raise ValueError(f"exponents must be a non-empty (T, n) int array, got shape {exponents.shape}")
        if (exponents < 0).any():
            raise ValueError("exponents must be non-negative")
        if coefficients.ndim != 2 or coefficients.shape[0] != exponents.shape[0]:
            raise ValueError(
                f"coefficients must have shape (T, k) with T = {exponents.shape[0]} rows, got {coefficients.shape}"
            )
        if not np.isfinite(coefficients).all():
            raise ValueError("coefficients contain NaN or infinite values")
        if len({tuple(r) for r in exponents.tolist()}) != exponents.shape[0]:
            raise ValueError("exponents contain repeated monomials")
        dtype = torch.get_default_dtype() if dtype is None else dtype

        plan = monomials.evaluation_plan(exponents)
        self.in_features = int(exponents.shape[1])
        self.out_features = int(coefficients.shape[1])
        self.exponents = exponents
        self.closure_size = plan.n_terms
        self._n_degrees = plan.max_degree
        for d, (p, v) in enumerate(zip(plan.parents, plan.variables), start=1):
            self.register_buffer(f"parents_{d}", torch.as_tensor(p), persistent=False)
            self.register_buffer(f"variables_{d}", torch.as_tensor(v), persistent=False)
        support = torch.as_tensor(plan.support)
        self._support_is_closure = bool(torch.equal(support, torch.arange(plan.n_terms)))
        self.register_buffer("support", support, persistent=False)
        self.coefficients = nn.Parameter(torch.as_tensor(coefficients, dtype=dtype))
        self.fixed_support = fixed_support
        # a float 0/1 buffer follows the module's dtype and device
        self.register_buffer("support_mask", torch.as_tensor(coefficients != 0, dtype=dtype))

    # ---------------------------------------------------------------- build
    @classmethod
    def from_oavi(
        cls, models: Sequence, kept: Sequence[Sequence[int]], *, dtype: torch.dtype | None = None,
        fixed_support: bool = True,
    ) -> "PolynomialLayer":
        """Layer of the kept generators of fitted :class:`~vinet_utils.oavi.OAVI` models.

        ``kept[j]`` lists generator indices of ``models[j]``; the outputs are class 0's kept
        generators in that order, then class 1's, and so on. Each generator contributes
        its leading term (coefficient ``leading_coefficients_[g]``, which is 1 except for
        some ABM generators) and its nonzero coefficients over ``O``; monomials no kept
        generator uses are dropped, so ``C`` has no all-zero row.
        """
        if len(models) != len(kept):
            raise ValueError(f"got {len(models)} models but {len(kept)} lists of kept generators")
        rows: dict[tuple[int, ...], int] = {}
        columns: list[dict[int, float]] = []
        n = None
        for j, (model, idx) in enumerate(zip(models, kept)):
            if not hasattr(model, "coefficients_"):
                raise ValueError(f"models[{j}] is not fitted")
            if n is None:
                n = model.n_features_in_
            elif model.n_features_in_ != n:
                raise ValueError(f"models[{j}] has {model.n_features_in_} features, models[0] has {n}")
            O = [tuple(int(e) for e in t) for t in model.O_exponents_]
            for g in idx:
                g = int(g)
                if not 0 <= g < model.n_generators_:
                    raise ValueError(f"kept[{j}] has index {g}, but models[{j}] has {model.n_generators_} generators")
                column: dict[int, float] = {}
                lead = tuple(int(e) for e in model.G_leading_exponents_[g])
                column[rows.setdefault(lead, len(rows))] = float(model.leading_coefficients_[g])
                for t, c in zip(O, model.coefficients_[g]):
                    if c != 0.0:
                        column[rows.setdefault(t, len(rows))] = float(c)
                columns.append(column)
        if not columns:
            raise NoGenerators("no generator is kept")
        order = monomials.deglex_sort(rows)  # deglex order of the support
        new_row = {t: r for r, t in enumerate(order)}
        old_to_new = {old: new_row[t] for t, old in rows.items()}
        C = np.zeros((len(order), len(columns)))
        for g, column in enumerate(columns):
            for old, c in column.items():
                C[old_to_new[old], g] = c
        return cls(np.array(order, dtype=np.int64), C, dtype=dtype, fixed_support=fixed_support)

    # -------------------------------------------------------------- forward
    def monomial_features(self, z: torch.Tensor) -> torch.Tensor:
        """``M(z)``: the support monomials at the rows of ``z``, ``(batch, T)``."""
        if z.ndim != 2 or z.shape[1] != self.in_features:
            raise ValueError(f"expected input of shape (batch, {self.in_features}), got {tuple(z.shape)}")
        parents = [getattr(self, f"parents_{d}") for d in range(1, self._n_degrees + 1)]
        variables = [getattr(self, f"variables_{d}") for d in range(1, self._n_degrees + 1)]
        M = monomials.evaluate_recursive(z, parents, variables)
        return M if self._support_is_closure else M.index_select(1, self.support)

    def effective_coefficients(self) -> torch.Tensor:
        """``C`` with the frozen zero pattern applied (when ``fixed_support``)."""
        C = self.coefficients
        return C * self.support_mask if self.fixed_support else C

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``|M(z) C|`` for ``z`` of shape ``(batch, in_features)``."""
        z = z.to(self.coefficients.dtype)
        out = self.monomial_features(z) @ self.effective_coefficients()
        return out.abs() if torch.is_grad_enabled() else out.abs_()

    def count_params(self) -> int:
        """Number of nonzero coefficients of ``C``."""
        return int(torch.count_nonzero(self.effective_coefficients().detach()))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"monomials={self.exponents.shape[0]} (closure {self.closure_size}), nonzeros={self.count_params()}"
        )
