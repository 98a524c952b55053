"""Evaluating the generators ``G(X)`` of a fitted OAVI."""

from __future__ import annotations

import numpy as np
import torch

from vinet_utils.oavi import monomials


class GeneratorEvaluator:
    """``G(X) = lead * U(X) + M_O(X) C^T``, where ``M_O`` evaluates O (an order ideal, in
    degree order) degree by degree, each term as its canonical parent in O times one
    variable, and each leading term ``u`` is likewise its parent in O times one variable.

    Args:
        O_exponents: ``(|O|, n)``, deglex order, row 0 the constant term.
        leading_exponents: ``(|G|, n)`` leading terms; every divisor of each lies in O.
        coefficients: ``(|G|, |O|)``; leading_coefficients: ``(|G|,)``.
    """

    def __init__(self, O_exponents: np.ndarray, leading_exponents: np.ndarray, coefficients: np.ndarray,
                 leading_coefficients: np.ndarray, dtype: torch.dtype, device: torch.device):
        n = O_exponents.shape[1]
        index = {row.tobytes(): i for i, row in enumerate(O_exponents)}

        def parent_of(rows):
            """Each term as (index in O of its parent, variable): the parent divides by the
            last variable the term contains."""
            rows = np.asarray(rows, dtype=np.int64).reshape(-1, n)
            last = n - 1 - np.argmax(rows[:, ::-1] > 0, axis=1) if rows.shape[0] else np.zeros(0, dtype=np.int64)
            parents = rows.copy()
            parents[np.arange(rows.shape[0]), last] -= 1
            return np.array([index[p.tobytes()] for p in parents], dtype=np.int64), last.astype(np.int64)

        degrees = O_exponents.sum(axis=1)
        top = int(degrees.max(initial=0))
        offsets = np.searchsorted(degrees, np.arange(top + 2), side="left")
        parent, variable = parent_of(O_exponents[1:])
        parent, variable = np.r_[-1, parent], np.r_[-1, variable]
        self.n_generators = coefficients.shape[0]
        self.O_parents = [torch.as_tensor(parent[offsets[d] : offsets[d + 1]] - offsets[d - 1], device=device)
                          for d in range(1, top + 1)]
        self.O_variables = [torch.as_tensor(variable[offsets[d] : offsets[d + 1]], device=device)
                            for d in range(1, top + 1)]
        lead_parent, lead_variable = parent_of(leading_exponents)
        self.lead_parent = torch.as_tensor(lead_parent, device=device)
        self.lead_variable = torch.as_tensor(lead_variable, device=device)
        self.lead_coefficients = torch.as_tensor(leading_coefficients, dtype=dtype, device=device)
        self.C_T = torch.as_tensor(np.ascontiguousarray(coefficients.T), dtype=dtype, device=device)

    def __call__(self, X: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """``(m, |G|)`` signed generator values at the points ``X`` (fit's dtype and device)."""
        out = []
        for i in range(0, X.shape[0], chunk):
            Xc = X[i : i + chunk]
            M = monomials.evaluate_recursive(Xc, self.O_parents, self.O_variables)
            lead = M.index_select(1, self.lead_parent) * Xc.index_select(1, self.lead_variable)
            out.append(torch.addmm(lead * self.lead_coefficients, M, self.C_T))
        return torch.cat(out) if out else X.new_zeros(0, self.n_generators)
