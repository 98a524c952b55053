"""Linear algebra of the blocked fit: the least-squares data of each border term against the
evaluations ``A = Q R`` of the order ideal O (the basis, :mod:`.basis`), block by block.

A degree's border is cut into blocks of ``block_size`` consecutive terms (deglex
order). A block is projected on the current basis ``Q`` with one matrix product
(:meth:`BorderBlock.project`), giving each term's residual ``w`` orthogonal to ``O`` and its
projections ``p = Q^T u(X)``; the terms that may join ``O`` (residual above psi) get a
second Gram-Schmidt pass. One triangular solve gives every term's least-squares
coefficients on ``O``. Then the terms are decided one after the other, exactly as the
sequential algorithm would: when a term joins ``O`` (:meth:`BorderBlock.append`), its
residual becomes a new basis column ``q`` and the block's later terms are updated by one
product ``W^T q`` and a rank-one correction of their coefficients, so each later term
sees ``O`` including the block's earlier new terms. Squared residuals within rounding
distance of psi are recomputed explicitly (:meth:`BorderBlock.term`).

Work is kept to what the decisions need:

- on the CPU the arrays are numpy arrays (torch tensors on other devices): a fit makes
  thousands of small products, and numpy's cost per call is a fraction of torch's;
- only the terms that may join O (the residual above psi, beyond rounding) get a second
  Gram-Schmidt pass; the later terms of a block are updated through ``w^T q``, not
  ``u^T q``: the two agree only while ``q`` is orthogonal to the basis to working
  precision, which fails where |O| exceeds the number of points and a new column is
  rounding noise (the papers' default tau gets there on a few hundred points);
- with the ``"ihb"`` oracle, runs of terms that the closed form decides (a residual above
  psi joins O; one below it with its coefficients inside the l1 ball leads a generator)
  are decided in one compiled loop (:meth:`BorderBlock.decide_ahead`), not a Python call
  per term; a term near psi or with an active bound leaves it for the oracle;
- ABM screens a block's remaining terms at once (:meth:`BorderBlock.abm_screen`) against the
  eigenpairs of ``A^T A``, grown a column at a time as O grows (:meth:`QRBasis.eigh`), again
  after each term that joins O; the terms a screen settles are decided in one compiled loop;
- the large arrays (the border, the residuals, the basis) live in a workspace that the thread
  keeps from fit to fit (:class:`~.arrays.Workspace`): fresh megabytes cost page faults on
  every fit, which on 9,000 points in 8 variables took longer than the products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from vinet_utils.oavi.arrays import (Array, Workspace, eps_of, indices, initial_capacity, like, minus_product,
                                     row_norms2, rows, shared_workspace, solve_upper, subtract_product, to_host,
                                     transposed_points)
from vinet_utils.oavi import _kernels
from vinet_utils.oavi.algorithm import Generators
from vinet_utils.oavi.basis import QRBasis
from vinet_utils.oavi.decisions import Decision
from vinet_utils.oavi.secular import secular_screen, secular_singular_pair
from vinet_utils.oavi.threads import blas_threads

#: ``|O| * block * m`` from which a block's products run on the fit's threads (about 40 MFLOP;
#: below it, on 2 cores, waking the second thread cost more than it saved).
THREADED_PRODUCT = 20_000_000
DEPENDENT_COLUMN = "a new O column is linearly dependent on A; psi is too small for this dtype"


@dataclass(eq=False)
class BlockedEngine:
    """The engine of :meth:`OAVI.fit`: evaluates each degree's border on the points and hands
    it to the degree loop in :class:`BorderBlock` s of ``block_size`` terms."""

    basis: QRBasis
    Xt: Array  # the points, transposed: a variable's values are a contiguous row
    threshold: float  # psi * m: a squared residual at or below it vanishes
    block_size: int
    product_threads: int = 1  # BLAS threads for a block's products with the basis (numpy arrays)
    work: Workspace = field(default_factory=Workspace)  # shared_workspace() for numpy arrays

    @classmethod
    def for_points(cls, X: torch.Tensor, psi: float, block_size: int, host: bool | None = None,
                   product_threads: int | None = None) -> "BlockedEngine":
        """The engine for the points ``X`` (a tensor), on numpy arrays where ``host`` (default:
        on the CPU), else on torch tensors on ``X``'s device. On numpy arrays, a block's
        products with the basis run on ``product_threads`` BLAS threads where they are large,
        and everything else on the thread count the fit set (one, on the CPU: thousands of
        small products lose more to waking threads than they gain)."""
        if X.device.type == "cpu" if host is None else host:
            work = shared_workspace()
            Xt = transposed_points(X, work)
        else:
            Xt, work = X.T.contiguous(), Workspace()
        return cls(basis=QRBasis.of_constant(Xt, initial_capacity(*X.shape), work), Xt=Xt, threshold=psi * X.shape[0],
                   block_size=int(block_size), product_threads=max(1, int(product_threads or 1)), work=work)

    @property
    def size(self) -> int:
        return self.basis.size

    def border_blocks(self, parents: np.ndarray, variables: np.ndarray) -> Iterator["BorderBlock"]:
        """Border term ``i`` is O term ``parents[i]`` times variable ``variables[i]``."""
        if isinstance(self.Xt, np.ndarray):  # values and squared norms in one compiled pass
            Bt, bb = self.work.rows("border", self.basis.Et, len(parents)), np.empty(len(parents))
            _kernels.border_rows(self.basis.Et, self.Xt, parents, variables, Bt, bb)
        else:
            Bt = rows(self.basis.Et, parents) * rows(self.Xt, variables)
            bb = row_norms2(Bt)
        for start in range(0, Bt.shape[0], self.block_size):
            stop = min(Bt.shape[0], start + self.block_size)
            yield BorderBlock.project(self.basis, Bt[start:stop], bb[start:stop], start, self.threshold,
                                      self.product_threads, self.work)


@dataclass(eq=False)
class BorderBlock:
    """Consecutive border terms of one degree, projected on ``Q`` as the block began.

    ``k0`` is ``|O|`` when the block began and ``new_O`` the number of its terms that have
    joined O since (basis columns ``k0 .. k0 + new_O - 1``).

    Attributes:
        Bt: evaluations ``u(X)`` of the block's terms, one row per term.
        bb: their squared norms ``||u(X)||^2``.
        Wt: residuals ``w`` of the terms against the first ``k0`` basis columns; None (made on
            first need, :meth:`residuals`) where no term of the block may join O.
        w_norm2: ``||w||^2``.
        twice: whether ``w`` has had its second Gram-Schmidt pass.
        P: projections ``Q_k0^T u(X)`` (host, ``k0 x b``).
        S: ``S[l, j] = q_l^T w_j`` for the block's ``l``-th new basis column ``q_l`` and terms
            ``j`` after it.
        C: least-squares coefficients of each term on O (rows ``k0..``: the new columns).
        residual2: squared residual of each term against O, downdated as O grows.
        band: relative width, in units of ``||u(X)||^2``, of the band around psi where a
            downdated squared residual is not trusted.
        screen: the ABM screen of the block's remaining terms at the current ``|O|``, or None.
    """

    basis: QRBasis
    start: int
    threshold: float
    band: float
    k0: int
    Bt: Array
    bb: np.ndarray
    Wt: Array | None
    w_norm2: np.ndarray
    twice: np.ndarray
    P: np.ndarray
    S: np.ndarray
    C: np.ndarray
    residual2: np.ndarray
    new_O: int = 0
    screen: dict | None = None
    outcome: np.ndarray | None = None  # per term decided in decide_ahead: 1 joined O, 2 or 3 led a generator
    size_at: np.ndarray | None = None  # per term decided in decide_ahead: |O| then
    abm_coefficients: np.ndarray | None = None  # ABM's generators decided ahead: coefficients by term
    abm_leading: np.ndarray | None = None  # and their leading coefficients
    work: Workspace | None = None  # where :meth:`residuals` makes ``Wt``

    @classmethod
    def project(cls, basis: QRBasis, Bt: Array, bb: np.ndarray, start: int, threshold: float,
                threads: int = 1, work: Workspace | None = None) -> "BorderBlock":
        """Project the terms ``Bt`` on the current basis and solve for their coefficients (the
        products on ``threads`` BLAS threads where they reach :data:`THREADED_PRODUCT`; the
        residuals in ``work``'s buffers, valid until the next block)."""
        b, k0 = Bt.shape[0], basis.size
        basis.reserve(k0 + b)
        large = threads > 1 and isinstance(Bt, np.ndarray) and k0 * b * basis.m >= THREADED_PRODUCT
        with blas_threads(threads if large else None):
            return cls._project(basis, Bt, bb, start, threshold, work or Workspace())

    @classmethod
    def _project(cls, basis: QRBasis, Bt: Array, bb: np.ndarray, start: int, threshold: float,
                 work: Workspace) -> "BorderBlock":
        b, k0 = Bt.shape[0], basis.size
        Qk = basis.Qt[:k0]
        P = Qk @ Bt.T
        band = 1e3 * eps_of(Bt) * math.sqrt(k0 + b + 1.0)
        if isinstance(Bt, np.ndarray) and Bt.dtype == np.float64 and np.diagonal(basis.R)[:k0].min() ** 2 > threshold:
            # Every O column joined above psi, so Q is orthonormal to working precision and
            # ||w||^2 = ||u||^2 - ||p||^2 to a few roundings of ||u||^2, far inside the band: where
            # no term may join O, the residuals are made only if a term asks (residuals()).
            estimate = bb - np.einsum("ij,ij->j", P, P)
            if not (estimate > threshold - 2.0 * band * bb).any():
                return cls(basis=basis, start=start, threshold=threshold, band=band, k0=k0, Bt=Bt, bb=bb, Wt=None,
                           w_norm2=estimate, twice=np.zeros(b, bool), P=P, S=np.zeros((b, b)),
                           C=cls._coefficients(basis, P, k0, b), residual2=estimate.copy(), work=work)
        Wt = minus_product(Bt, P, Qk, work.rows("residuals", Bt, b) if isinstance(Bt, np.ndarray) else None)
        w_norm2 = row_norms2(Wt)
        P = to_host(P).astype(np.float64, copy=True)
        # Second Gram-Schmidt pass for the terms that may join O: a residual only shrinks
        # as O grows within the block, so terms already at or below psi (beyond rounding)
        # vanish and their single-pass projections suffice.
        twice = w_norm2 > threshold - 2.0 * band * bb
        candidates = np.flatnonzero(twice)
        if candidates.size:
            c, host = candidates.size, isinstance(Wt, np.ndarray)
            every = c == b  # in place; else on a copy of the candidates' rows
            Wc = Wt if every else rows(Wt, candidates, work.rows("candidates", Wt, c) if host else None)
            for _ in range(2):
                P2 = Qk @ Wc.T
                subtract_product(Wc, P2, Qk, work.rows("product", Wt, c) if host else None)
                P[:, candidates] += to_host(P2)
                wc = row_norms2(Wc)
                w_norm2[candidates] = wc
                if not (wc < 1e-6 * bb[candidates]).any():  # a third pass only after heavy cancellation
                    break
            if not every:
                Wt[indices(candidates, Wt)] = Wc
        return cls(basis=basis, start=start, threshold=threshold, band=band, k0=k0, Bt=Bt, bb=bb, Wt=Wt,
                   w_norm2=w_norm2, twice=twice, P=P, S=np.zeros((b, b)), C=cls._coefficients(basis, P, k0, b),
                   residual2=w_norm2.copy())

    @staticmethod
    def _coefficients(basis: QRBasis, P: np.ndarray, k0: int, b: int) -> np.ndarray:
        """Each term's least-squares coefficients on the first ``k0`` columns, rows ``k0..`` zero."""
        C = np.zeros((k0 + b, b))
        C[:k0] = -solve_upper(basis.R[:k0, :k0], P)
        return C

    def residuals(self) -> Array:
        """``Wt``, made now where the block was projected without it (before any term joined O)."""
        if self.Wt is None:
            Qk, work = self.basis.Qt[: self.k0], self.work or Workspace()
            self.Wt = minus_product(self.Bt, self.P, Qk, work.rows("residuals", self.Bt, self.n_terms))
        return self.Wt

    @property
    def n_terms(self) -> int:
        return self.Bt.shape[0]

    def decide_ahead(self, j: int, oracle) -> tuple[int, np.ndarray | list[int]]:
        """Decide the terms from ``j`` on, in one compiled loop, while the closed form of the
        ``"ihb"`` oracle suffices (:func:`~vinet_utils.oavi._kernels.closed_form_run`: the same
        decisions as :meth:`term`, the oracle and :meth:`append`, term by term). Returns the
        first term left undecided and the terms that joined O; the generators found stay in
        the block's arrays until :meth:`finish` (``outcome``; their coefficients are columns of
        ``C``). Other oracles, and arrays other than float64 numpy, decide nothing here."""
        if oracle.kind not in ("ihb", "abm") or not isinstance(self.Bt, np.ndarray) or self.Bt.dtype != np.float64:
            return j, []
        if self.outcome is None:
            self.outcome, self.size_at = np.zeros(self.n_terms, np.int8), np.zeros(self.n_terms, np.int64)
        if oracle.kind == "abm":
            return self._abm_ahead(j, oracle.psi)
        basis = self.basis
        W = self.Bt[:0] if self.Wt is None else self.Wt  # without residuals no term joins O here
        stop, self.new_O, dependent = _kernels.closed_form_run(
            j, W, self.Bt, basis.Qt, basis.Et, basis.R, self.P, self.S, self.C, self.residual2, self.w_norm2,
            self.bb, self.twice, self.k0, self.new_O, self.threshold, self.band, oracle.tau - 1, self.outcome,
            self.size_at)
        if dependent:
            raise FloatingPointError(DEPENDENT_COLUMN)
        return stop, j + np.flatnonzero(self.outcome[j:stop] == 1)

    def _abm_ahead(self, j: int, psi: float) -> tuple[int, np.ndarray]:
        """:meth:`decide_ahead` for ABM: the terms its screen settles, screen after screen
        (:func:`~vinet_utils.oavi._kernels.abm_run`), with :func:`~.decisions.abm_decision`'s
        rules; a term near psi or unsettled is left to the oracle. A generator's coefficients
        and leading coefficient go to ``abm_coefficients`` and ``abm_leading``."""
        basis, m = self.basis, self.basis.m
        if self.abm_coefficients is None:
            self.abm_coefficients = np.zeros((self.n_terms, self.C.shape[0]))
            self.abm_leading = np.zeros(self.n_terms)
        joined = []
        W = self.residuals()  # ABM may send a term below psi to O (no leading term)
        while j < self.n_terms:
            screen = self.abm_screen(j, psi * m)
            start, first = j, screen["first"]
            j, self.new_O, dependent = _kernels.abm_run(
                j, first + screen["stop"], first, screen["rho2"], screen["settled"], screen["vanishes"],
                screen["sigma2"], screen["v"], W, self.Bt, basis.Qt, basis.Et, basis.R, self.P, self.S, self.C,
                self.residual2, self.w_norm2, self.bb, self.twice, self.k0, self.new_O, self.threshold, self.band,
                psi, m, self.outcome, self.size_at)
            if dependent:
                raise FloatingPointError(DEPENDENT_COLUMN)
            outcome = self.outcome[start:j]
            found = np.flatnonzero(outcome >= 2)
            if found.size:
                v = screen["v"][found + (start - first)]  # against the screen's |O|: v[:, -1] is the leading term's
                lead, rescaled = v[:, -1], outcome[found] == 2
                # rescaled to a leading 1, or kept l2-normalised with its leading coefficient made positive
                self.abm_coefficients[found + start, : v.shape[1] - 1] = np.where(
                    rescaled[:, None], v[:, :-1] / lead[:, None], v[:, :-1] * np.sign(lead)[:, None])
                self.abm_leading[found + start] = np.where(rescaled, 1.0, np.abs(lead))
            if found.size < j - start:  # the last term decided joined O (abm_run stops after one)
                joined.append(j - 1)
                self.screen = None
            if self.screen is not None:  # stopped at a term the oracle decides, or at the end
                break
        return j, np.array(joined, dtype=np.int64)

    def term(self, j: int) -> "BlockTerm":
        """Term ``j`` against the current O (including the block's earlier new O terms)."""
        k = self.k0 + self.new_O
        res2 = self.residual2[j]
        if abs(res2 - self.threshold) <= self.band * self.bb[j]:  # within rounding of psi: recompute
            r = self._residual(j, k)
            res2 = float(r @ r)
        return BlockTerm(block=self, position=j, size=k, m=self.basis.m, squared_residual=max(res2, 0.0))

    def _residual(self, j: int, k: int, record: bool = False) -> Array:
        """The residual of term ``j`` against the first ``k`` basis columns, from ``w_j`` with a
        second Gram-Schmidt pass where it lacks one. With ``record`` (``j`` joins O) the
        corrections are added to its projections ``P`` and ``S``."""
        basis, k0, t = self.basis, self.k0, k - self.k0
        r = self.residuals()[j]
        if not self.twice[j]:
            Qk0 = basis.Qt[:k0]
            corr = Qk0 @ r
            r = r - corr @ Qk0
            if record:
                self.P[:, j] += to_host(corr)
                self.twice[j] = True
        if t:
            Qin = basis.Qt[k0:k]
            r = r - like(self.S[:t, j], r) @ Qin
            corr = Qin @ r
            r = r - corr @ Qin
            if record:
                self.S[:t, j] += to_host(corr)
        return r

    def projection(self, j: int, k: int) -> np.ndarray:
        """``Q_k^T u_j(X)``: the projections of term ``j`` on the first ``k`` basis columns."""
        return np.concatenate((self.P[:, j], self.S[: k - self.k0, j]))

    def append(self, j: int) -> None:
        """Term ``j`` joins O: its residual becomes basis column ``k0 + new_O``, and the block's
        later terms are updated against it (projection, residual, coefficients)."""
        basis, k0, t = self.basis, self.k0, self.new_O
        Qt, P, S, C = basis.Qt, self.P, self.S, self.C
        col = k0 + t
        r = self._residual(j, col, record=True)
        rho = math.sqrt(float(r @ r))
        if rho < 1e-3 * math.sqrt(max(self.w_norm2[j], 0.0)):  # lost digits: one more pass against all of Q
            Qa = Qt[:col]
            corr = Qa @ r
            r = r - corr @ Qa
            corr = to_host(corr)
            P[:, j] += corr[:k0]
            S[:t, j] += corr[k0:]
            rho = math.sqrt(float(r @ r))
        if not rho > 0:
            raise FloatingPointError(DEPENDENT_COLUMN)
        q = r / rho
        Qt[col] = q
        basis.Et[col] = self.Bt[j]
        basis.R[:k0, col] = P[:, j]
        basis.R[k0:col, col] = S[:t, j]
        basis.R[col, col] = rho
        if j + 1 < self.n_terms:
            s = to_host(self.Wt[j + 1 :] @ q).astype(np.float64)
            S[t, j + 1 :] = s
            self.residual2[j + 1 :] -= s * s
            s = s / rho
            C[:col, j + 1 :] -= np.outer(C[:col, j], s)
            C[col, j + 1 :] = -s
        self.new_O = t + 1
        self.screen = None

    def abm_screen(self, j: int, threshold: float) -> dict:
        """The ABM screen (:func:`~vinet_utils.oavi.secular.secular_screen`) of terms ``j..`` at
        the current ``|O|``, kept until a term joins O. Singular pairs are solved up to the
        first term that may join O: the terms after it wait for the next screen."""
        k, screen = self.k0 + self.new_O, self.screen
        if screen is None or not screen["first"] <= j < screen["first"] + screen["stop"] or screen["size"] != k:
            later = np.arange(j, self.n_terms)
            self.screen = dict(first=j, size=k, rho2=self.residual2[later].copy(),
                               **secular_screen(self.basis.eigh(k), self.C[:k, later], self.residual2[later], threshold,
                                                upto_first_kept=True))
        return self.screen

    def finish(self, generators: list[tuple["BlockTerm", Decision]]) -> Generators:
        """Commit the block's new O columns; return its generators in term order: those
        :meth:`decide_ahead` found and ``generators`` (the oracle's: term and decision), with
        the mean squared value on the points of each.

        With ``A = Q R``, ``g(X) = lead u(X) + A c = Q (lead p + R c) + lead r`` where ``r``,
        the residual of ``u`` at its decision, is orthogonal to ``Q``: one product for all.
        """
        basis = self.basis
        basis.size = k = self.k0 + self.new_O
        found = Generators.of_decisions(generators, k, np.zeros(len(generators)))
        res2 = np.array([term.squared_residual for term, _ in generators], dtype=np.float64)
        own = np.flatnonzero(self.outcome >= 2) if self.outcome is not None else np.zeros(0, np.int64)
        if own.size:  # decided ahead: ABM's from its screens, the closed form's are columns of C
            abm, none = self.abm_coefficients is not None, np.zeros(own.size)
            ahead = Generators(own, self.abm_coefficients[own, :k] if abm else self.C[:k, own].T,
                               self.abm_leading[own] if abm else none + 1.0, none, none.astype(bool), none)
            found, order = found.merged(ahead) if generators else (ahead, slice(None))
            res2 = np.r_[res2, np.maximum(self.residual2[own], 0.0)][order]
        lead, positions = found.leading_coefficients, found.positions
        proj = np.concatenate((self.P[:, positions], self.S[: self.new_O, positions]))
        Z = basis.R[:k, :k] @ found.coefficients.T + proj * lead
        found.train_mse = (lead * lead * res2 + (Z * Z).sum(axis=0)) / basis.m
        return found


@dataclass(eq=False, slots=True)
class BlockTerm:
    """One border term ``u`` as the blocked engine sees it when it is decided.

    Attributes:
        position: its index in the block.
        size: ``|O|`` now: the number of coefficients of a generator with leading term ``u``.
        m: number of points.
        squared_residual: ``min_c ||A c + u(X)||^2`` without the l1 bound.
    """

    block: BorderBlock
    position: int
    size: int
    m: int
    squared_residual: float

    @property
    def coefficients(self) -> np.ndarray:
        """The least-squares coefficients ``c`` on O (a view, fixed once ``u`` is decided)."""
        return self.block.C[: self.size, self.position]

    def quadratic(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(H, a, bb)`` with ``(1/m) ||A c + u(X)||^2 = (c^T H c + 2 a^T c + bb) / m``."""
        basis, k = self.block.basis, self.size
        a = basis.R[:k, :k].T @ self.block.projection(self.position, k)
        return basis.gram(k), a, float(self.block.bb[self.position])

    def smallest_singular_pair(self, threshold: float) -> tuple[float, np.ndarray] | None:
        """The smallest squared singular value of ``[A, u(X)]`` and its right singular vector
        (``||v|| = 1``, ``u``'s entry last), or None when it certainly exceeds ``threshold``.
        Read from the block's screen where the screen settled it for this term's residual."""
        block, k, j = self.block, self.size, self.position
        screen = block.abm_screen(j, threshold)
        i = j - screen["first"]
        if screen["rho2"][i] == self.squared_residual and screen["settled"][i]:
            return (float(screen["sigma2"][i]), screen["v"][i].copy()) if screen["vanishes"][i] else None
        return secular_singular_pair(block.basis.eigh(k), block.basis.R[:k, :k], self.coefficients,
                                     self.squared_residual, block.projection(j, k), threshold)
