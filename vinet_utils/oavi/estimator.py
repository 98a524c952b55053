"""The OAVI estimator: parameters, ``fit``, ``evaluate``/``transform``, and the fitted
attributes, set from one :class:`~vinet_utils.oavi.algorithm.FitResult`."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch

from vinet_utils.oavi import monomials
from vinet_utils.oavi.algorithm import Engine, FitResult, fit_oavi
from vinet_utils.oavi.decisions import Oracle
from vinet_utils.oavi.evaluation import GeneratorEvaluator
from vinet_utils.oavi.arrays import SHARED_WORKSPACE_BYTES, shared_workspace, transposed_points
from vinet_utils.oavi.gram import gram_fit
from vinet_utils.oavi.linalg import BlockedEngine
from vinet_utils.oavi.order import permuted, variable_order
from vinet_utils.oavi.threads import choose_threads, limited_threads
from vinet_utils.oavi.validation import as_points, check_parameters, default_tau

#: Layout of a pickled OAVI (see ``OAVI.__setstate__``): 1 for every version before the
#: package, which stored its evaluator's tensors; 2 stores the fitted arrays only.
STATE_VERSION = 2
_EVALUATOR_STATE_V1 = ("_O_parents", "_O_variables", "_lead_parent", "_lead_variable", "_lead_coef", "_C_T",
                       "_plan", "_W", "_parents", "_variables", "_stats")


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before :meth:`OAVI.fit` (scikit-learn's convention)."""


class OAVI:
    """Oracle Approximate Vanishing Ideal, scikit-learn shaped (docs/method.md §4).

    Args:
        psi: vanishing parameter psi > 0: a generator g satisfies ``mean_i g(x_i)^2 <= psi``.
        max_degree: highest border degree examined.
        tau: l1 bound, ``||c||_1 <= tau - 1`` on the non-leading coefficients (``tau >= 2``,
            ``float("inf")`` allowed for ``"ihb"`` and ``"abm"``); ``None`` means
            ``(3/2)^D``, ``D = ceil(-log(psi)/log 4)`` (see :func:`default_tau`).
        oracle: ``"ihb"``, ``"bpcg"`` (alias ``"fw"``) or ``"abm"`` (see :mod:`vinet_utils.oavi.decisions`).
        device: torch device for the fit and for evaluation (default CPU).
        dtype: floating dtype of the fit (float64 recommended).
        cg_tol: Frank-Wolfe gap at which the ``"bpcg"`` oracle stops (absolute, in units of
            mean squared evaluation, so the returned generator is within ``cg_tol`` of
            the constrained optimum); ``None`` means ``psi / 10``.
        cg_max_iter: iteration cap of the sparse oracle.
        progress: show a tqdm bar over border terms.
        ordering: ``"deglex"``, ``"pearson"`` or ``"rev_pearson"`` (see :mod:`vinet_utils.oavi.order`).
        block_size: border terms per block of the blocked fit (decisions do not depend on it).
        threads: threads of the fit's large products (on the CPU the rest runs on one thread; on
            other devices, torch's threads during the fit); ``None`` chooses (see :mod:`vinet_utils.oavi.threads`).

    Attributes (after :meth:`fit`):
        O_exponents_: ``(|O|, n)`` int array, deglex order, row 0 the constant term.
        G_leading_exponents_: ``(|G|, n)`` leading terms of the generators.
        coefficients_: ``(|G|, |O|)`` float64; row g holds the coefficients of generator g
            over the O terms (zero for O terms added after it). The leading coefficient
            is ``leading_coefficients_[g]``: 1 for ``"ihb"`` and ``"bpcg"``, and for
            ``"abm"`` wherever rescaling to 1 keeps the generator vanishing.
        leading_coefficients_: ``(|G|,)`` float64, see above.
        n_generators_, degrees_, n_features_in_, tau_.
        train_mse_: ``(1/m) sum_i g(x_i)^2`` per generator (the blocked fit computes it from
            the factorisation, ``(||r||^2 + ||lead p + R c||^2) / m``: the residual
            orthogonal to O plus the part in O's span).
        from_sparse_oracle_: per generator, whether its coefficients come from the sparse
            oracle (always for ``"bpcg"``; for ``"ihb"`` only where the bound was active).
        n_border_terms_: border terms examined; n_bound_active_: of those, the ones whose
            least-squares solution vanished but had ``||c||_1 > tau - 1``, so that the
            sparse oracle decided them; n_oracle_calls_, n_oracle_iterations_,
            oracle_time_s_: work done by the sparse oracle; fit_time_s_ (wall time of
            the whole fit) and loop_time_s_ (of its degree loop, engine set-up included:
            the rest is checks, ordering and the fitted attributes); max_degree_reached_.
        oracle_gaps_: per generator, the Frank-Wolfe duality gap at which the sparse
            oracle stopped (0 for closed-form generators); max_oracle_gap_: the largest
            gap over all oracle calls, including terms it rejected.
        variable_order_: the permutation used (internal variable i is user variable
            ``variable_order_[i]``; the identity for ``"deglex"``).
        n_threads_: threads the fit's large products ran with.
        fit_path_: ``"gram"`` where the Gram path of small fits (:mod:`.gram`) decided the
            whole fit, else ``"engine"`` (the degree loop with the blocked engine, or the one given).
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
        block_size: int = 128,  # faster than 64 and 256 on the benchmark's cases (docs/oavi.md)
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

    def _check_params(self) -> None:
        check_parameters(self.psi, self.max_degree, self.tau, self.oracle, self.dtype, self.cg_tol, self.cg_max_iter,
                         self.ordering, self.block_size, self.threads)

    def _resolved_tau(self) -> float:
        return default_tau(self.psi) if self.tau is None else float(self.tau)

    def _oracle(self) -> Oracle:
        psi = float(self.psi)
        return Oracle(kind="bpcg" if self.oracle == "fw" else self.oracle, psi=psi, tau=self._resolved_tau(),
                      cg_tol=psi / 10 if self.cg_tol is None else float(self.cg_tol), cg_max_iter=int(self.cg_max_iter))

    # ------------------------------------------------------------------ fit
    def fit(self, X) -> "OAVI":
        """Fit ``O`` and ``G`` to the points ``X`` (numpy array or torch tensor, m x n)."""
        try:
            return self.fit_with(X, lambda points: BlockedEngine.for_points(points, float(self.psi), self.block_size,
                                                                            product_threads=self.n_threads_),
                                 first=self._gram_path())
        finally:
            shared_workspace().trim(SHARED_WORKSPACE_BYTES)

    def fit_transform(self, X):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def _gram_path(self) -> Callable[[torch.Tensor], FitResult | None] | None:
        """The Gram path of small fits (:mod:`.gram`) where it may decide a fit: the closed form
        (``"ihb"``) on the CPU in float64, without a progress bar."""
        device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        if self.oracle != "ihb" or device.type != "cpu" or self.dtype != torch.float64 or self.progress:
            return None
        work = shared_workspace()
        return lambda points: gram_fit(transposed_points(points, work), float(self.psi), self._resolved_tau(),
                                       int(self.max_degree), work)

    def fit_with(self, X, make_engine: Callable[[torch.Tensor], Engine],
                 first: Callable[[torch.Tensor], FitResult | None] | None = None) -> "OAVI":
        """Check, order the variables, limit the threads, run the degree loop with the
        engine ``make_engine(points)`` (unless ``first(points)``, tried first, decides the
        fit), and set the fitted attributes."""
        start = time.perf_counter()
        self._check_params()
        device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        threads = choose_threads(self.threads, tuple(X.shape) if hasattr(X, "shape") else np.shape(X), device)
        self.n_threads_ = threads if threads is not None else torch.get_num_threads()
        # On the CPU the fit runs on one thread but for its large products (BlockedEngine).
        with limited_threads(1 if device.type == "cpu" else threads):
            X, _ = as_points(X)
            X = X.to(device=device, dtype=self.dtype)
            perm = variable_order(X, self.ordering)
            identity = bool((perm == np.arange(X.shape[1])).all())
            Xi = X if identity else permuted(X, perm)  # in the layout the engine reads: no second copy
            loop_start = time.perf_counter()
            result = first(Xi) if first is not None else None
            self.fit_path_ = "gram" if result is not None else "engine"
            if result is None:
                result = fit_oavi(Xi, make_engine(Xi), self._oracle(), self.max_degree, self.progress)
            self.loop_time_s_ = time.perf_counter() - loop_start
            self._set_fitted(result, X, perm)
        self.fit_time_s_ = time.perf_counter() - start
        return self

    def _set_fitted(self, result: FitResult, X: torch.Tensor, perm: np.ndarray) -> None:
        """The fitted attributes, with exponents mapped back to the user's variable order."""
        n = X.shape[1]
        O_internal = result.O_exponents
        G_internal = result.leading_exponents.reshape(-1, n)
        self.variable_order_ = np.asarray(perm, dtype=np.int64)
        self.O_exponents_ = np.empty_like(O_internal)
        self.O_exponents_[:, perm] = O_internal
        self.G_leading_exponents_ = np.empty_like(G_internal)
        self.G_leading_exponents_[:, perm] = G_internal
        self.n_features_in_ = n
        self.tau_ = self._resolved_tau()
        self.device_ = X.device
        self.coefficients_ = result.coefficients
        self.leading_coefficients_ = result.leading_coefficients
        self.n_generators_ = G_internal.shape[0]
        self.degrees_ = self.G_leading_exponents_.sum(axis=1).astype(np.int64)
        self.train_mse_ = result.train_mse
        self.from_sparse_oracle_ = result.from_sparse_oracle
        self.oracle_gaps_ = result.oracle_gaps
        stats = result.stats
        self.max_oracle_gap_ = float(stats.max_oracle_gap)
        self.n_border_terms_ = stats.border_terms
        self.n_bound_active_ = stats.bound_active
        self.n_oracle_calls_ = stats.oracle_calls
        self.n_oracle_iterations_ = stats.oracle_iterations
        self.oracle_time_s_ = stats.oracle_time_s
        self.max_degree_reached_ = result.max_degree_reached
        self._evaluator = None  # built on first use: a fit that is never evaluated skips it

    # ------------------------------------------------------------ evaluation
    def _check_fitted(self) -> None:
        if not hasattr(self, "coefficients_"):
            raise NotFittedError("This OAVI instance is not fitted yet. Call 'fit' with appropriate arguments first.")

    def _build_evaluator(self) -> None:
        """(Re)build the evaluator from the fitted arrays (after any change to them)."""
        self._evaluator = GeneratorEvaluator(self.O_exponents_, self.G_leading_exponents_, self.coefficients_,
                                             self.leading_coefficients_, self.dtype, self.device_)

    def evaluate(self, X):
        """Signed generator values ``g(x)``: ``(m, |G|)``, a tensor for tensor input (its dtype
        and device) and a float64 numpy array for numpy input."""
        self._check_fitted()
        X, was_numpy = as_points(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this OAVI was fitted with {self.n_features_in_}")
        if self._evaluator is None:  # fitted or unpickled: built on first use
            self._build_evaluator()
        values = self._evaluator(X.to(device=self.device_, dtype=self.dtype))
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

    # ------------------------------------------------------------- pickling
    def __getstate__(self) -> dict:
        """Parameters and fitted arrays; the evaluator is rebuilt on first use."""
        state = {k: v for k, v in self.__dict__.items() if k != "_evaluator"}
        state["_state_version"] = STATE_VERSION
        return state

    def __setstate__(self, state: dict) -> None:
        """Load a pickled OAVI, upgrading the layout of earlier versions (see :data:`STATE_VERSION`)."""
        state = dict(state)
        version = state.pop("_state_version", 1)
        if version > STATE_VERSION:
            raise ValueError(f"this OAVI was pickled with state version {version}, newer than this "
                             f"vinet_utils.oavi reads (state version {STATE_VERSION}); load it with the newer code")
        if version == 1:
            state = _upgrade_state_v1(state)
        self.__dict__.update(state)
        self._evaluator = None


def _upgrade_state_v1(state: dict) -> dict:
    """State version 1 (the single-module ``oavi.py``) to 2: the evaluator's tensors are
    dropped (rebuilt on first use), and the parameters and attributes the first releases
    did not have get the values those releases behaved with."""
    state = {k: v for k, v in state.items() if k not in _EVALUATOR_STATE_V1}
    state.setdefault("ordering", "deglex")
    state.setdefault("block_size", 64)
    state.setdefault("threads", None)
    if "coefficients_" in state:
        n_G = state["coefficients_"].shape[0]
        state.setdefault("variable_order_", np.arange(state["n_features_in_"], dtype=np.int64))
        state.setdefault("oracle_gaps_", np.full(n_G, np.nan))  # not recorded then
        state.setdefault("max_oracle_gap_", float("nan"))
        state.setdefault("n_threads_", None)
    return state
