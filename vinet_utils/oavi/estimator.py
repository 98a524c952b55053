"""The OAVI estimator."""

from __future__ import annotations

import math
import numbers
import os
import time
from typing import Callable, Sequence

import numpy as np
import torch

from .. import monomials
from .linalg import _BlockedQR
from .order import ORDERINGS, pearson_order
from .solvers import CGResult, l1_ball_active_set, l1_ball_bpcg, project_l1_ball
from .threads import SMALL_FIT_WORK, _threads

ORACLES = ("ihb", "bpcg", "fw", "abm")


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`OAVI.fit` (scikit-learn's convention)."""


def default_tau(psi: float) -> float:
    """``tau = (3/2)^D`` with ``D = ceil(-log(psi) / log 4)``, clamped to at least 2."""
    D = math.ceil(-math.log(psi) / math.log(4.0))
    return max(1.5 ** D, 2.0)



# ====================================================== least-squares engines
class _LstsqReference:
    """Brute-force reference: a fresh ``torch.linalg.lstsq`` on the current ``A`` per term.

    The engine :meth:`OAVI._fit` drives one border term at a time; used by
    :func:`brute_force_fit` to check that the blocked fit makes the same decisions, and
    to time it.
    """

    def __init__(self, X: torch.Tensor):
        self.X = X
        self.m = X.shape[0]
        self.A = torch.ones(self.m, 1, dtype=X.dtype, device=X.device)

    @property
    def k(self) -> int:
        return self.A.shape[1]

    def O_evaluations(self) -> torch.Tensor:
        return self.A

    def begin_degree(self, B: torch.Tensor) -> None:
        self.B = B

    def least_squares(self, j: int, threshold: float | None = None) -> tuple[float, np.ndarray]:
        b = self.B[:, j]
        c = torch.linalg.lstsq(self.A, -b[:, None]).solution[:, 0]
        r = self.A @ c + b
        return float(r @ r) / self.m, c.cpu().numpy()

    def quadratic(self, j: int) -> tuple[np.ndarray, np.ndarray, float]:
        b = self.B[:, j]
        return (self.A.T @ self.A).cpu().numpy(), (self.A.T @ b).cpu().numpy(), float(b @ b)

    def smallest_singular_pair(self, j: int) -> tuple[float, np.ndarray]:
        _, S, Vh = torch.linalg.svd(torch.cat([self.A, self.B[:, j : j + 1]], dim=1), full_matrices=False)
        return float(S[-1]) ** 2, Vh[-1].cpu().numpy().copy()

    def append(self, j: int) -> None:
        self.A = torch.cat([self.A, self.B[:, j : j + 1]], dim=1)



# ===================================================================== OAVI
def _as_tensor(X, name: str = "X") -> tuple[torch.Tensor, bool]:
    """Validate a point array; returns ``(tensor, was_numpy)``."""
    was_numpy = not isinstance(X, torch.Tensor)
    if was_numpy:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a numeric array of shape (m, n)") from err
        if arr.ndim == 2 and arr.size and not np.isfinite(arr).all():  # numpy: no torch threads
            raise ValueError(f"{name} contains NaN or infinite values")
        X = torch.from_numpy(arr)
        if X.ndim == 2 and X.numel():
            return X, was_numpy
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (m, n) (points x features); got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(X.shape)}")
    if not (X.is_floating_point() or X.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X, was_numpy


class OAVI:
    """Oracle Approximate Vanishing Ideal, scikit-learn shaped (method.md §4).

    Args:
        psi: vanishing parameter psi > 0: a generator g satisfies ``mean_i g(x_i)^2 <= psi``.
        max_degree: highest border degree examined.
        tau: l1 bound, ``||c||_1 <= tau - 1`` on the non-leading coefficients (``tau >= 2``,
            ``float("inf")`` allowed for ``"ihb"`` and ``"abm"``); ``None`` means
            ``(3/2)^D``, ``D = ceil(-log(psi)/log 4)`` (see :func:`default_tau`).
        oracle: ``"ihb"``, ``"bpcg"`` (alias ``"fw"``) or ``"abm"`` (see the module docstring).
        device: torch device for the fit and for evaluation (default CPU).
        dtype: floating dtype of the fit (float64 recommended).
        cg_tol: Frank-Wolfe gap at which the ``"bpcg"`` oracle stops (absolute, in units of
            mean squared evaluation, so the returned generator is within ``cg_tol`` of
            the constrained optimum); ``None`` means ``psi / 10``.
        cg_max_iter: iteration cap of the sparse oracle.
        progress: show a tqdm bar over border terms.
        ordering: ``"deglex"`` or ``"pearson"`` (see "Variable order" in the module docstring).
        block_size: border terms per block of the blocked fit (decisions do not depend on it).
        threads: torch/OpenBLAS threads during the fit; ``None`` chooses (see "Threads").

    Attributes (after :meth:`fit`):
        O_exponents_: ``(|O|, n)`` int array, deglex order, row 0 the constant term.
        G_leading_exponents_: ``(|G|, n)`` leading terms of the generators.
        coefficients_: ``(|G|, |O|)`` float64; row g holds the coefficients of generator g
            over the O terms (zero for O terms added after it). The leading coefficient
            is ``leading_coefficients_[g]``: 1 for ``"ihb"`` and ``"bpcg"``, and for
            ``"abm"`` wherever rescaling to 1 keeps the generator vanishing.
        leading_coefficients_: ``(|G|,)`` float64, see above.
        n_generators_, degrees_, train_mse_, n_features_in_, tau_.
        from_sparse_oracle_: per generator, whether its coefficients come from the sparse
            oracle (always for ``"bpcg"``; for ``"ihb"`` only where the bound was active).
        n_border_terms_: border terms examined; n_bound_active_: of those, the ones whose
            least-squares solution vanished but had ``||c||_1 > tau - 1``, so that the
            sparse oracle decided them; n_oracle_calls_, n_oracle_iterations_,
            oracle_time_s_: work done by the sparse oracle; fit_time_s_ (wall time of
            the whole fit); max_degree_reached_.
        oracle_gaps_: per generator, the Frank-Wolfe duality gap at which the sparse
            oracle stopped (0 for closed-form generators); max_oracle_gap_: the largest
            gap over all oracle calls, including terms it rejected.
        variable_order_: the permutation used (internal variable i is user variable
            ``variable_order_[i]``; the identity for ``"deglex"``).
        n_threads_: threads the fit ran with.
        train_mse_ is computed from the factorisation, ``(||r||^2 + ||lead p + R c||^2) / m``
        (residual orthogonal to O plus the part in O's span), for the blocked fit.
    """

    def __init__(
        self,
        psi: float = 0.005,
        max_degree: int = 10,
        tau: float | None = None,
        oracle: str = "ihb",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float64,
        *,
        cg_tol: float | None = None,
        cg_max_iter: int = 10_000,
        progress: bool = False,
        ordering: str = "deglex",
        block_size: int = 64,
        threads: int | None = None,
    ):
        self.psi = psi
        self.max_degree = max_degree
        self.tau = tau
        self.oracle = oracle
        self.device = device
        self.dtype = dtype
        self.cg_tol = cg_tol
        self.cg_max_iter = cg_max_iter
        self.progress = progress
        self.ordering = ordering
        self.block_size = block_size
        self.threads = threads
        self._check_params()

    # ------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        psi = self.psi
        if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi) or psi <= 0:
            raise ValueError(f"psi must be a finite number > 0, got {psi!r}")
        if isinstance(self.max_degree, bool) or not isinstance(self.max_degree, (int, np.integer)) or self.max_degree < 1:
            raise ValueError(f"max_degree must be an int >= 1, got {self.max_degree!r}")
        if self.oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {', '.join(map(repr, ORACLES))}; got {self.oracle!r}")
        if self.tau is not None:
            if isinstance(self.tau, bool) or not isinstance(self.tau, numbers.Real) or math.isnan(self.tau) or self.tau < 2:
                raise ValueError(f"tau must be a number >= 2 (the bound is ||c||_1 <= tau - 1) or None, got {self.tau!r}")
            if math.isinf(self.tau) and self.oracle in ("bpcg", "fw"):
                raise ValueError(f"oracle {self.oracle!r} needs a finite tau (it works on the l1 ball of radius tau - 1)")
        if self.cg_tol is not None and not (isinstance(self.cg_tol, numbers.Real) and self.cg_tol > 0):
            raise ValueError(f"cg_tol must be > 0 or None, got {self.cg_tol!r}")
        if not isinstance(self.cg_max_iter, (int, np.integer)) or self.cg_max_iter < 1:
            raise ValueError(f"cg_max_iter must be an int >= 1, got {self.cg_max_iter!r}")
        if getattr(self, "ordering", "deglex") not in ORDERINGS:
            raise ValueError(f"ordering must be one of {', '.join(map(repr, ORDERINGS))}; got {self.ordering!r}")
        block = getattr(self, "block_size", 64)
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block!r}")
        threads = getattr(self, "threads", None)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch dtype, got {self.dtype!r}")

    def _resolved_tau(self) -> float:
        return default_tau(self.psi) if self.tau is None else float(self.tau)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coefficients_"):
            raise NotFittedError("This OAVI instance is not fitted yet. Call 'fit' with appropriate arguments first.")

    # ------------------------------------------------------------------ fit
    def fit(self, X) -> "OAVI":
        """Fit ``O`` and ``G`` to the points ``X`` (numpy array or torch tensor, m x n)."""
        return self._fit_entry(X, None)

    def _fit_entry(self, X, engine) -> "OAVI":
        """Validate, order the variables, limit threads, run the fit (blocked, or the
        per-term loop with ``engine``), and store the attributes."""
        start = time.perf_counter()
        self._check_params()
        device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
        threads = self._choose_threads(shape, device)
        self.n_threads_ = threads if threads is not None else torch.get_num_threads()
        with _threads(threads):
            X, _ = _as_tensor(X)
            X = X.to(device=device, dtype=self.dtype)
            m, n = X.shape
            if getattr(self, "ordering", "deglex") == "pearson":
                perm = pearson_order(X.cpu().numpy())
            else:
                perm = np.arange(n, dtype=np.int64)
            identity = bool((perm == np.arange(n)).all())
            Xi = X if identity else X[:, torch.as_tensor(perm, device=X.device)].contiguous()
            out = self._fit_blocked(Xi) if engine is None else self._fit(Xi, engine)
            self._finish(out, X, perm)
        self.fit_time_s_ = time.perf_counter() - start
        return self

    def _choose_threads(self, shape, device: torch.device) -> int | None:
        """Torch CPU threads for this fit (None: leave torch's setting).

        ``threads`` if given. Otherwise one thread for small fits (``m * n^2`` below
        :data:`SMALL_FIT_WORK`, where per-call overhead dominates) and, for larger fits, no
        more threads than there are idle cores by the 1-minute load average: OpenMP
        threads that wait for a core held by another busy process make every parallel
        region slow, which costs far more than the lost parallelism."""
        threads = getattr(self, "threads", None)
        if threads is not None or device.type != "cpu":
            return threads if device.type == "cpu" else None
        m, n = (shape + (1, 1))[:2] if len(shape) < 2 else shape[:2]
        if m * n * n < SMALL_FIT_WORK:
            return 1
        current = torch.get_num_threads()
        try:
            cores = len(os.sched_getaffinity(0))
            idle = cores - os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
        return max(1, min(current, int(math.floor(idle + 0.5))))

    def fit_transform(self, X):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def _fit(self, X: torch.Tensor, engine: Callable[[torch.Tensor], object]) -> dict:
        """The algorithm of method.md §4 one border term at a time, with ``engine`` doing the
        linear algebra (the brute-force reference, and ABM)."""
        from tqdm.auto import tqdm

        m, n = X.shape
        tau = self._resolved_tau()
        psi = float(self.psi)
        cg_tol = psi / 10 if self.cg_tol is None else float(self.cg_tol)
        solver = engine(X)

        O: list[monomials.Exponent] = [monomials.constant_term(n)]
        O_index = {O[0]: 0}
        O_by_degree = [[O[0]]]
        G_leading: list[monomials.Exponent] = []
        G_coef: list[np.ndarray] = []
        G_by_oracle: list[bool] = []
        G_gap: list[float] = []
        O_size_at: list[int] = []  # |O| when each generator was found
        self._stats = dict(border=0, bound_active=0, oracle_calls=0, oracle_iterations=0, oracle_time=0.0)
        max_degree_reached = 0
        bar = tqdm(disable=not self.progress, desc="OAVI", unit="term")
        for d in range(1, self.max_degree + 1):
            terms, parents, variables = monomials.border(O_by_degree[-1], O_index, n)
            if not terms:
                break
            max_degree_reached = d
            A = solver.O_evaluations()
            B = A[:, torch.as_tensor(parents, device=X.device)] * X[:, torch.as_tensor(variables, device=X.device)]
            solver.begin_degree(B)
            new_O = []
            for j, u in enumerate(terms):
                vanishes, coef, by_oracle, gap = self._oracle_decision(solver, j, m, psi, tau, cg_tol)
                if vanishes:  # g = u + sum_j c_j t_j joins G
                    G_leading.append(u)
                    G_coef.append(coef)
                    O_size_at.append(len(O))
                    G_by_oracle.append(by_oracle)
                    G_gap.append(gap)
                else:  # u joins O, its column joins A
                    solver.append(j)
                    O_index[u] = len(O)
                    O.append(u)
                    new_O.append(u)
                bar.update(1)
            self._stats["border"] += len(terms)
            if not new_O:
                break
            O_by_degree.append(new_O)
        bar.close()
        return dict(O=[np.array(O, dtype=np.int64).reshape(len(O), n)], G_leading=G_leading, G_coef=G_coef,
                    O_size_at=O_size_at, G_by_oracle=G_by_oracle, G_gap=G_gap, G_mse=None,
                    max_degree_reached=max_degree_reached)

    def _finish(self, out: dict, X: torch.Tensor, perm: np.ndarray) -> None:
        """Store the fitted attributes, with exponents in the user's variable order."""
        n = X.shape[1]
        O_internal = np.vstack(out["O"]).astype(np.int64)
        G_internal = np.array(out["G_leading"], dtype=np.int64).reshape(len(out["G_leading"]), n)
        self.variable_order_ = np.asarray(perm, dtype=np.int64)
        self.O_exponents_ = np.empty_like(O_internal)
        self.O_exponents_[:, perm] = O_internal
        self.G_leading_exponents_ = np.empty_like(G_internal)
        self.G_leading_exponents_[:, perm] = G_internal
        self.n_features_in_ = n
        self.tau_ = self._resolved_tau()
        self.device_ = X.device
        n_O, n_G = O_internal.shape[0], G_internal.shape[0]
        coefficients = np.zeros((n_G, n_O))
        leading = np.ones(n_G)
        for g, c in enumerate(out["G_coef"]):
            k = out["O_size_at"][g]
            if len(c) == k + 1:  # ABM vector kept l2-normalised: its last entry leads
                c, leading[g] = c[:k], c[k]
            coefficients[g, :k] = c
        self.coefficients_ = coefficients
        self.leading_coefficients_ = leading
        self.n_generators_ = n_G
        self.from_sparse_oracle_ = np.array(out["G_by_oracle"], dtype=bool)
        self.oracle_gaps_ = np.array(out["G_gap"], dtype=np.float64)
        gaps = self._stats.get("gaps", [])
        self.max_oracle_gap_ = float(max(gaps)) if gaps else 0.0
        self.degrees_ = self.G_leading_exponents_.sum(axis=1).astype(np.int64)
        self.n_border_terms_ = self._stats["border"]
        self.n_bound_active_ = self._stats["bound_active"]
        self.n_oracle_calls_ = self._stats["oracle_calls"]
        self.n_oracle_iterations_ = self._stats["oracle_iterations"]
        self.oracle_time_s_ = self._stats["oracle_time"]
        self.max_degree_reached_ = out["max_degree_reached"]
        self._stats.pop("gaps", None)
        self._build_evaluator()
        if out.get("G_mse") is not None:
            self.train_mse_ = np.array(out["G_mse"], dtype=np.float64).reshape(n_G)
        else:
            values = self._evaluate_tensor(X)
            self.train_mse_ = (values * values).mean(0).cpu().numpy().astype(np.float64)

    def _oracle_decision(
        self, solver, j: int, m: int, psi: float, tau: float, cg_tol: float
    ) -> tuple[bool, np.ndarray | None, bool, float]:
        """Vanishing test of border column ``j``: ``(vanishes, coefficients over O, decided
        by the sparse oracle, duality gap reached)``."""
        if self.oracle == "abm":
            sigma2, v = solver.smallest_singular_pair(j)
            if sigma2 / m > psi or abs(v[-1]) < 1e-12:
                return False, None, False, 0.0
            if sigma2 / (m * v[-1] ** 2) <= psi:  # rescaling to a leading 1 keeps it vanishing
                return True, v[:-1] / v[-1], False, 0.0
            return True, v * np.sign(v[-1]), False, 0.0  # coefficients, then the (positive) leading one
        mse, c = solver.least_squares(j, threshold=psi)
        if mse > psi:  # even the unconstrained minimum is above psi
            return False, None, False, 0.0
        bound_active = np.abs(c).sum() > tau - 1
        self._stats["bound_active"] += int(bound_active)
        if self.oracle == "ihb" and not bound_active:
            return True, c, False, 0.0
        H, a, bb = solver.quadratic(j)
        result = self._sparse_oracle(H, a, bb, m, psi, tau, cg_tol, c)
        if result.value <= psi:
            return True, result.coef, True, result.gap
        return False, None, True, result.gap

    # ------------------------------------------------------------ blocked fit
    def _fit_blocked(self, X: torch.Tensor) -> dict:
        """The algorithm of method.md §4, a block of border terms at a time (see
        :meth:`_block`). Returns the pieces :meth:`_finish` turns into attributes."""
        m, n = X.shape
        tau = self._resolved_tau()
        psi = float(self.psi)
        cg_tol = psi / 10 if self.cg_tol is None else float(self.cg_tol)
        eng = _BlockedQR(X)
        out = dict(O=[np.zeros((1, n), dtype=np.int64)], G_leading=[], G_coef=[], O_size_at=[], G_by_oracle=[],
                   G_mse=[], G_gap=[], max_degree_reached=0)
        self._stats = dict(border=0, bound_active=0, oracle_calls=0, oracle_iterations=0, oracle_time=0.0)
        previous, previous_index = out["O"][0], np.zeros(1, dtype=np.int64)
        bs = int(self.block_size)
        Xt = X.T.contiguous()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(desc="OAVI", unit="term")
        for d in range(1, self.max_degree + 1):
            terms, parents, variables = monomials.border_array(previous, previous_index, n)
            nb = terms.shape[0]
            if nb == 0:
                break
            out["max_degree_reached"] = d
            Bt = eng.Et[torch.as_tensor(parents, device=X.device)] * Xt[torch.as_tensor(variables, device=X.device)]
            bb = (Bt * Bt).sum(1).cpu().numpy().astype(np.float64)
            k_before = eng.k
            is_O = np.zeros(nb, dtype=bool)
            for s in range(0, nb, bs):
                e = min(nb, s + bs)
                O_pos, G = self._block(eng, Bt[s:e], bb[s:e], m, psi, tau, cg_tol)
                if bar is not None:
                    bar.update(e - s)
                is_O[s + np.asarray(O_pos, dtype=np.int64)] = True
                for j, coef, mse, by_oracle, gap, kg in G:
                    out["G_leading"].append(terms[s + j])
                    out["G_coef"].append(coef)
                    out["O_size_at"].append(kg)
                    out["G_mse"].append(mse)
                    out["G_by_oracle"].append(by_oracle)
                    out["G_gap"].append(gap)
            self._stats["border"] += nb
            if not is_O.any():
                break
            previous = terms[is_O]
            previous_index = np.arange(k_before, eng.k, dtype=np.int64)
            out["O"].append(previous)
        if bar is not None:
            bar.close()
        return out

    def _block(self, eng: _BlockedQR, Bt: torch.Tensor, bb: np.ndarray, m: int, psi: float, tau: float,
               cg_tol: float) -> tuple[list[int], list[tuple]]:
        """Decide the border terms ``Bt`` (one row of evaluations per term, consecutive in
        deglex order) exactly as the sequential algorithm would, and commit the new ``O``
        columns.

        The block is projected on the current basis ``Q`` with one matrix product, giving
        the residuals ``W`` and projections ``P``; the columns that may join ``O`` (residual
        above psi) get a second Gram-Schmidt pass (two more products). One triangular
        solve gives every column's least-squares coefficients on the current ``O``.
        Then the terms are taken in order. The squared residual of term ``j`` against
        ``O``, including the block's earlier new ``O`` terms, is ``||w_j||^2`` minus the
        squared projections on the block's new basis columns (recomputed explicitly
        within rounding distance of psi). Each new ``O`` term costs one product
        ``W^T q`` over the rest of the block plus a rank-one update of the rest's
        coefficients. Where the l1 bound is active (or the oracle is sparse) the sparse
        oracle decides on the spot, so decisions and coefficients are those of the
        sequential algorithm.
        """
        b = Bt.shape[0]
        k0 = eng.k
        eng.reserve(k0 + b)
        Qt = eng.Qt
        Qk = Qt[:k0]
        thr = psi * m
        band_scale = 1e3 * eng.eps * math.sqrt(k0 + b + 1.0)
        P = Qk @ Bt.T
        Wt = torch.addmm(Bt, P.T, Qk, alpha=-1.0)
        wn = (Wt * Wt).sum(1).cpu().numpy().astype(np.float64)
        # Re-orthogonalise (second Gram-Schmidt pass) the columns that may join O: the
        # residual only shrinks within the block, so columns already at or below psi
        # (beyond rounding) are generators and their single-pass projections suffice.
        twice = wn > thr - 2.0 * band_scale * bb
        cand = np.flatnonzero(twice)
        if cand.size:
            idx = torch.as_tensor(cand, device=Wt.device)
            Wc = Wt[idx]
            for _ in range(2):
                P2 = Qk @ Wc.T
                Wc = torch.addmm(Wc, P2.T, Qk, alpha=-1.0)
                P[:, idx] += P2
                wc = (Wc * Wc).sum(1).cpu().numpy()
                weak = wc < 1e-6 * bb[cand]
                wn[cand] = wc
                if not weak.any():  # a third pass only after heavy cancellation
                    break
            Wt[idx] = Wc
        Ph = P.cpu().numpy().astype(np.float64, copy=True)
        # least-squares coefficients of every block column on the current O, updated by a
        # rank-one correction per new O column of the block (rows k0.. are the new columns)
        C = np.zeros((k0 + b, b))
        C[:k0] = -torch.linalg.solve_triangular(
            torch.from_numpy(np.ascontiguousarray(eng.R[:k0, :k0])), torch.from_numpy(Ph), upper=True).numpy()
        S = np.zeros((b, b))  # S[l, j] = q_l^T w_j for the block's l-th new O column, j after it
        cur = wn.copy()
        O_pos: list[int] = []
        G_pos: list[int] = []
        G_res: list[float] = []
        G_oracle: dict[int, CGResult] = {}
        G_abm: dict[int, tuple[np.ndarray, float]] = {}  # ABM: coefficients over O, leading coefficient
        sparse_all = self.oracle in ("bpcg", "fw")
        finite = math.isfinite(tau)
        twice_t = twice
        for j in range(b):
            t = len(O_pos)
            kk = k0 + t
            res2 = cur[j]
            if abs(res2 - thr) <= band_scale * bb[j]:  # within rounding of psi: recompute
                r = Wt[j]
                if not twice_t[j]:
                    r = r - (Qk @ r) @ Qk
                if t:
                    Qin = Qt[k0:kk]
                    r = r - torch.as_tensor(S[:t, j], dtype=Wt.dtype, device=Wt.device) @ Qin
                    r = r - (Qin @ r) @ Qin
                res2 = float(r @ r)
            if self.oracle == "abm":
                abm = self._abm_decision(eng, kk, C[:kk, j], max(res2, 0.0), np.r_[Ph[:, j], S[:t, j]], thr)
                if abm is None:
                    self._block_append(eng, Bt, Wt, Ph, S, cur, wn, k0, t, j, twice_t, C)
                    O_pos.append(j)
                else:
                    G_pos.append(j)
                    G_res.append(max(res2, 0.0))
                    G_abm[j] = abm
                continue
            vanishes = res2 <= thr
            if vanishes:
                c = C[:kk, j]
                ls_active = finite and float(np.abs(c).sum()) > tau - 1
                self._stats["bound_active"] += int(ls_active)
                if ls_active or sparse_all:
                    a = eng.R[:kk, :kk].T @ np.r_[Ph[:, j], S[:t, j]]
                    result = self._sparse_oracle(eng.gram(kk), a, float(bb[j]), m, psi, tau, cg_tol, c,
                                                 residual=max(res2, 0.0))
                    vanishes = result.value <= psi
                    if vanishes:
                        G_oracle[j] = result
            if vanishes:
                G_pos.append(j)
                G_res.append(max(res2, 0.0))
            else:
                self._block_append(eng, Bt, Wt, Ph, S, cur, wn, k0, t, j, twice_t, C)
                O_pos.append(j)
        eng.k = k0 + len(O_pos)
        G = []
        if G_pos:
            kk = eng.k
            Pf = np.zeros((kk, len(G_pos)))
            Pf[:k0] = Ph[:, G_pos]
            Pf[k0:] = S[: kk - k0, G_pos]
            Cg = C[:kk, G_pos].copy()
            from_oracle = np.zeros(len(G_pos), dtype=bool)
            for gi, j in enumerate(G_pos):
                if j in G_oracle:
                    coef = G_oracle[j].coef
                    Cg[: coef.size, gi] = coef
                    from_oracle[gi] = True
            lead = np.ones(len(G_pos))
            for gi, j in enumerate(G_pos):
                if j in G_abm:
                    coef, lead[gi] = G_abm[j]
                    Cg[:, gi] = 0.0
                    Cg[: coef.size, gi] = coef
            # g(X) = lead * b + A c = Q (lead p + R c) + lead r with r orthogonal to Q
            Z = eng.R[:kk, :kk] @ Cg + Pf * lead
            mse = (lead * lead * np.asarray(G_res) + (Z * Z).sum(axis=0)) / m
            sizes = k0 + np.searchsorted(np.asarray(O_pos, dtype=np.int64), np.asarray(G_pos))
            for gi, j in enumerate(G_pos):
                kg = int(sizes[gi])
                gap = G_oracle[j].gap if from_oracle[gi] else 0.0
                coef = Cg[:kg, gi].copy()
                if lead[gi] != 1.0:  # ABM vector kept l2-normalised: the leading entry goes last
                    coef = np.r_[coef, lead[gi]]
                G.append((j, coef, float(mse[gi]), bool(from_oracle[gi]), gap, kg))
        return O_pos, G

    def _abm_decision(self, eng: _BlockedQR, kk: int, c_ls: np.ndarray, rho2: float, p: np.ndarray,
                      thr: float) -> tuple[np.ndarray, float] | None:
        """ABM test of a border term from its least-squares data: ``None`` if it joins ``O``,
        else ``(coefficients over O, leading coefficient)`` as :meth:`_oracle_decision` stores them.

        With ``A = Q R``, ``H = A^T A = V diag(lam) V^T`` and ``c' = V^T c_ls``, the smallest
        squared singular value ``s`` of ``[A, b]`` is the root below ``min(lam)`` of the
        secular function ``F(x) = rho^2 - x (1 + sum_i lam_i c'_i^2 / (lam_i - x))`` (``rho^2``:
        the squared least-squares residual; ``F`` has no cancellation). The term vanishes
        iff ``F(psi m) <= 0``; then Newton's method from ``psi m`` converges monotonically
        to ``s`` (``F`` is concave and decreasing), and the singular vector is
        ``(V (lam c' / (lam - s)), 1)`` up to scale. When ``min(lam) <= psi m`` or ``F(psi m)``
        is within rounding of zero, the small SVD of the triangular factor decides, as
        in the per-term engine.
        """
        m = eng.m
        key = getattr(eng, "_eig_k", None)
        if key != kk:
            eng._eig = np.linalg.eigh(eng.gram(kk))
            eng._eig_k = kk
        lam, V = eng._eig
        mu = thr
        cp = c_ls @ V
        w = lam * cp * cp
        exact = lam[0] <= mu * (1 + 1e-9)
        if not exact:
            F = rho2 - mu * (1.0 + (w / (lam - mu)).sum())
            scale = rho2 + mu * (1.0 + (w / (lam - mu)).sum())
            exact = abs(F) <= 1e-10 * scale
        if exact:
            T = np.zeros((kk + 1, kk + 1))
            T[:kk, :kk] = eng.R[:kk, :kk]
            T[:kk, kk] = p
            T[kk, kk] = math.sqrt(rho2)
            _, sv, Vh = np.linalg.svd(T)
            sigma2, v = float(sv[-1]) ** 2, Vh[-1].copy()
        else:
            if F > 0:
                return None
            x = mu
            for _ in range(100):
                q = w / (lam - x)
                Fx = rho2 - x * (1.0 + q.sum())
                dF = -1.0 - (q * lam / (lam - x)).sum()
                step = Fx / dF
                x_new = x - step
                if not x_new < x or abs(step) <= 1e-15 * abs(x):
                    x = min(x, x_new) if x_new >= 0 else x
                    break
                x = x_new
            sigma2 = max(x, 0.0)
            vO = V @ (lam * cp / (lam - sigma2))
            v = np.r_[vO, 1.0]
            v /= np.linalg.norm(v)
        if sigma2 / m > self.psi or abs(v[-1]) < 1e-12:
            return None
        if sigma2 / (m * v[-1] ** 2) <= self.psi:
            return v[:-1] / v[-1], 1.0
        v = v * np.sign(v[-1])
        return v[:-1], float(v[-1])

    def _block_append(self, eng, Bt, Wt, Ph, S, cur, wn, k0, t, j, twice, C) -> None:
        """Block column ``j`` joins ``O`` as basis column ``k0 + t``."""
        Qt = eng.Qt
        col = k0 + t
        r = Wt[j]
        if not twice[j]:  # only projected once so far (a term the sparse oracle rejected)
            corr = Qt[:k0] @ r
            r = r - corr @ Qt[:k0]
            Ph[:, j] += corr.cpu().numpy()
            twice[j] = True
        if t:
            Qin = Qt[k0:col]
            r = r - torch.as_tensor(S[:t, j], dtype=Wt.dtype, device=Wt.device) @ Qin
            corr = Qin @ r
            r = r - corr @ Qin
            S[:t, j] += corr.cpu().numpy()
        rho = float(torch.linalg.vector_norm(r))
        if rho < 1e-3 * math.sqrt(max(wn[j], 0.0)):  # lost digits: one more pass against all of Q
            Qa = Qt[:col]
            corr = Qa @ r
            r = r - corr @ Qa
            corr = corr.cpu().numpy()
            Ph[:, j] += corr[:k0]
            S[:t, j] += corr[k0:]
            rho = float(torch.linalg.vector_norm(r))
        if not rho > 0:
            raise FloatingPointError("a new O column is linearly dependent on A; psi is too small for this dtype")
        q = r / rho
        Qt[col] = q
        eng.Et[col] = Bt[j]
        eng.R[:k0, col] = Ph[:, j]
        eng.R[k0:col, col] = S[:t, j]
        eng.R[col, col] = rho
        if j + 1 < Wt.shape[0]:
            s = (Wt[j + 1 :] @ q).cpu().numpy()
            S[t, j + 1 :] = s
            cur[j + 1 :] -= s * s
            s = s / rho
            C[:col, j + 1 :] -= np.outer(C[:col, j], s)
            C[col, j + 1 :] = -s

    def _sparse_oracle(self, H, a, bb, m, psi, tau, cg_tol, c_ls, residual=None) -> CGResult:
        """Run the sparse oracle on ``f(c) = (c^T H c + 2 a^T c + bb) / m``: for ``"ihb"`` the
        active-set decision (:func:`l1_ball_active_set`) from the l1 projection of the
        least-squares solution ``c_ls``; for ``"bpcg"`` BPCG from the origin down to a
        Frank-Wolfe gap of ``cg_tol``."""
        tic = time.perf_counter()
        if self.oracle == "ihb":
            # a few cheap pairwise steps settle the easy cases; the active set the rest
            x0 = project_l1_ball(c_ls, tau - 1)
            result = l1_ball_bpcg(H, a, bb, m, tau - 1, psi=psi, tol=0.0, max_iter=min(20, self.cg_max_iter),
                                  stop_when_vanishing=True, x0=x0)
            if not (result.value <= psi or result.certified_above):
                first = result.iterations
                result = l1_ball_active_set(H, a, bb, m, tau - 1, psi, x0=result.coef,
                                            max_iter=max(self.cg_max_iter - first, 1), residual=residual)
                result.iterations += first
        else:
            result = l1_ball_bpcg(H, a, bb, m, tau - 1, psi=psi, tol=cg_tol, max_iter=self.cg_max_iter)
        result.ls_l1 = float(np.abs(c_ls).sum())
        self._stats["oracle_time"] += time.perf_counter() - tic
        self._stats["oracle_calls"] += 1
        self._stats["oracle_iterations"] += result.iterations
        self._stats.setdefault("gaps", []).append(result.gap)
        return result

    # ------------------------------------------------------------ evaluation
    def _build_evaluator(self) -> None:
        """Plan the evaluation: ``O`` (an order ideal, in degree order) degree by degree, each
        term as its canonical parent in ``O`` times one variable; each leading term the same
        way; then ``G(X) = lead * U(X) + M_O(X) C^T``."""
        O = self.O_exponents_
        n = self.n_features_in_
        index = {row.tobytes(): i for i, row in enumerate(O)}

        def parent_of(rows):
            rows = np.asarray(rows, dtype=np.int64).reshape(-1, n)
            last = n - 1 - np.argmax(rows[:, ::-1] > 0, axis=1) if rows.shape[0] else np.zeros(0, dtype=np.int64)
            parents = rows.copy()
            parents[np.arange(rows.shape[0]), last] -= 1
            return np.array([index[p.tobytes()] for p in parents], dtype=np.int64), last.astype(np.int64)

        degrees = O.sum(axis=1)
        top = int(degrees.max(initial=0))
        offsets = np.searchsorted(degrees, np.arange(top + 2), side="left")
        par, var = parent_of(O[1:])
        par = np.r_[-1, par]
        var = np.r_[-1, var]
        dev = self.device_
        self._O_parents = [torch.as_tensor(par[offsets[d]:offsets[d + 1]] - offsets[d - 1], device=dev)
                           for d in range(1, top + 1)]
        self._O_variables = [torch.as_tensor(var[offsets[d]:offsets[d + 1]], device=dev) for d in range(1, top + 1)]
        lp, lv = parent_of(self.G_leading_exponents_)
        self._lead_parent = torch.as_tensor(lp, device=dev)
        self._lead_variable = torch.as_tensor(lv, device=dev)
        self._lead_coef = torch.as_tensor(self.leading_coefficients_, dtype=self.dtype, device=dev)
        self._C_T = torch.as_tensor(np.ascontiguousarray(self.coefficients_.T), dtype=self.dtype, device=dev)

    def _build_closure_evaluator(self) -> None:
        """The evaluator of earlier versions (closure of O and the leading terms)."""
        terms = np.vstack([self.O_exponents_, self.G_leading_exponents_])
        plan = monomials.evaluation_plan(terms, self.n_features_in_)
        n_O = self.O_exponents_.shape[0]
        W = np.zeros((plan.n_terms, self.n_generators_))
        W[plan.support[:n_O]] = self.coefficients_.T
        W[plan.support[n_O:], np.arange(self.n_generators_)] = self.leading_coefficients_
        self._plan = plan
        self._W = torch.as_tensor(W, dtype=self.dtype, device=self.device_)
        self._parents = [torch.as_tensor(p, device=self.device_) for p in plan.parents]
        self._variables = [torch.as_tensor(v, device=self.device_) for v in plan.variables]

    def _evaluate_tensor(self, X: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        if not hasattr(self, "_O_parents"):
            if not hasattr(self, "_W"):  # unpickled from a version without either
                self._build_evaluator()
            else:
                out = []
                for i in range(0, X.shape[0], chunk):
                    M = monomials.evaluate_recursive(X[i : i + chunk], self._parents, self._variables)
                    out.append(M @ self._W)
                return torch.cat(out) if out else X.new_zeros(0, self.n_generators_)
        out = []
        for i in range(0, X.shape[0], chunk):
            Xc = X[i : i + chunk]
            M = monomials.evaluate_recursive(Xc, self._O_parents, self._O_variables)
            lead = M.index_select(1, self._lead_parent) * Xc.index_select(1, self._lead_variable)
            out.append(torch.addmm(lead * self._lead_coef, M, self._C_T))
        return torch.cat(out) if out else X.new_zeros(0, self.n_generators_)

    def evaluate(self, X):
        """Signed generator values ``g(x)``: ``(m, |G|)``, a tensor for tensor input (its dtype
        and device) and a float64 numpy array for numpy input."""
        self._check_fitted()
        X, was_numpy = _as_tensor(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this OAVI was fitted with {self.n_features_in_}")
        values = self._evaluate_tensor(X.to(device=self.device_, dtype=self.dtype))
        if was_numpy:
            return values.cpu().numpy().astype(np.float64)
        out_dtype = X.dtype if X.is_floating_point() else self.dtype
        return values.to(device=X.device, dtype=out_dtype)

    def transform(self, X):
        """``|G(X)|``: absolute generator values, the VI-Net features."""
        values = self.evaluate(X)
        return np.abs(values) if isinstance(values, np.ndarray) else values.abs()

    # ------------------------------------------------------------- inspection
    def generators_as_strings(self, names: Sequence[str] | None = None, precision: int = 3) -> list[str]:
        """Readable generators, e.g. ``"x1^2 + 1.000 x0^2 - 0.999"``."""
        self._check_fitted()
        if names is not None and len(names) != self.n_features_in_:
            raise ValueError(f"names has {len(names)} entries, expected {self.n_features_in_}")
        O = [tuple(t) for t in self.O_exponents_]
        return [
            monomials.polynomial_to_string(
                tuple(u), O, self.coefficients_[g], names, precision, leading_coefficient=self.leading_coefficients_[g]
            )
            for g, u in enumerate(self.G_leading_exponents_)
        ]

    def __repr__(self) -> str:
        return (
            f"OAVI(psi={self.psi!r}, max_degree={self.max_degree!r}, tau={self.tau!r}, "
            f"oracle={self.oracle!r}, device={self.device!r}, dtype={self.dtype!r})"
        )


def brute_force_fit(X, psi: float = 0.005, max_degree: int = 10, tau: float | None = None, oracle: str = "ihb", **kwargs) -> OAVI:
    """Reference OAVI fit that solves a fresh ``torch.linalg.lstsq`` on the current ``A`` for
    every border term, one term at a time (same decision logic, same sparse oracle when
    the l1 bound is active). Used by the tests and :mod:`vinet_utils.bench` to check and
    time :class:`OAVI`."""
    model = OAVI(psi=psi, max_degree=max_degree, tau=tau, oracle=oracle, **kwargs)
    return model._fit_entry(X, _LstsqReference)

