"""Linear algebra of the blocked fit: ``A = Q R`` for the evaluations ``A`` of the order
ideal O, and the least-squares data of each border term against ``A``.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from vinet_utils.oavi.decisions import Decision


@dataclass(eq=False)
class QRBasis:
    """``A = Q R`` for the evaluations ``A`` (``m x |O|``) of the order ideal O.

    Attributes:
        m: number of points.
        size: ``|O|``, the committed columns; the columns from ``size`` to the capacity are
            scratch space where a block writes its new ``O`` columns before committing them.
        Et: raw evaluations of O, transposed (``capacity x m``, on the fitting device): a
            column of ``A`` is a contiguous row.
        Qt: the orthonormal basis ``Q``, transposed likewise.
        R: the upper-triangular factor (host float64, ``capacity x capacity``).
        gram_matrix: ``H = R^T R = A^T A``, filled lazily (the sparse oracle needs it) up to
            ``gram_size`` columns.
        eigen: ``(eigenvalues, eigenvectors)`` of ``H[:eigen_size, :eigen_size]`` (ABM), or None.
    """

    m: int
    size: int
    Et: torch.Tensor
    Qt: torch.Tensor
    R: np.ndarray
    gram_matrix: np.ndarray
    gram_size: int = 0
    eigen: tuple[np.ndarray, np.ndarray] | None = None
    eigen_size: int = -1

    @classmethod
    def of_constant(cls, X: torch.Tensor, capacity: int = 16) -> "QRBasis":
        """The basis of ``O = {1}``: ``A`` is the column of ones."""
        m = X.shape[0]
        empty = torch.empty(0, m, dtype=X.dtype, device=X.device)
        basis = cls(m=m, size=0, Et=empty, Qt=empty, R=np.zeros((0, 0)), gram_matrix=np.zeros((0, 0)))
        basis.reserve(capacity)
        basis.Et[0] = 1.0
        basis.Qt[0] = 1.0 / math.sqrt(m)
        basis.R[0, 0] = math.sqrt(m)
        basis.size = 1
        return basis

    @property
    def capacity(self) -> int:
        return self.R.shape[0]

    def reserve(self, columns: int) -> None:
        """Make room for ``columns`` columns (at least doubling the capacity)."""
        old = self.capacity
        if columns <= old:
            return
        capacity = max(columns, 2 * old)
        Et = self.Et.new_empty(capacity, self.m)
        Qt = self.Qt.new_empty(capacity, self.m)
        R = np.zeros((capacity, capacity))
        H = np.zeros((capacity, capacity))
        if old:
            Et[:old] = self.Et
            Qt[:old] = self.Qt
            R[:old, :old] = self.R
            H[:old, :old] = self.gram_matrix
        self.Et, self.Qt, self.R, self.gram_matrix = Et, Qt, R, H

    def gram(self, k: int) -> np.ndarray:
        """``H[:k, :k] = R_k^T R_k``, the Gram matrix of the first ``k`` columns of ``A``."""
        h = self.gram_size
        if h < k:
            Rk = self.R[:k, :k]
            block = Rk.T @ Rk[:, h:k]
            self.gram_matrix[:k, h:k] = block
            self.gram_matrix[h:k, :k] = block.T
            self.gram_size = k
        return self.gram_matrix[:k, :k]

    def eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and eigenvectors of ``H[:k, :k]``, kept for the next term."""
        if self.eigen_size != k:
            self.eigen = np.linalg.eigh(self.gram(k))
            self.eigen_size = k
        return self.eigen


@dataclass(eq=False)
class BlockedEngine:
    """The engine of :meth:`OAVI.fit`: evaluates each degree's border on the points and hands
    it to the degree loop in :class:`BorderBlock` s of ``block_size`` terms."""

    basis: QRBasis
    Xt: torch.Tensor  # the points, transposed: a variable's values are a contiguous row
    threshold: float  # psi * m: a squared residual at or below it vanishes
    block_size: int

    @classmethod
    def for_points(cls, X: torch.Tensor, psi: float, block_size: int) -> "BlockedEngine":
        return cls(basis=QRBasis.of_constant(X), Xt=X.T.contiguous(), threshold=psi * X.shape[0],
                   block_size=int(block_size))

    @property
    def size(self) -> int:
        return self.basis.size

    def border_blocks(self, parents: np.ndarray, variables: np.ndarray) -> Iterator["BorderBlock"]:
        """Border term ``i`` is O term ``parents[i]`` times variable ``variables[i]``."""
        device = self.Xt.device
        Bt = self.basis.Et[torch.as_tensor(parents, device=device)] * self.Xt[torch.as_tensor(variables, device=device)]
        bb = (Bt * Bt).sum(1).cpu().numpy().astype(np.float64)
        for start in range(0, Bt.shape[0], self.block_size):
            stop = min(Bt.shape[0], start + self.block_size)
            yield BorderBlock.project(self.basis, Bt[start:stop], bb[start:stop], start, self.threshold)


@dataclass(eq=False)
class BorderBlock:
    """Consecutive border terms of one degree, projected on ``Q`` as the block began.

    ``k0`` is ``|O|`` when the block began and ``new_O`` the number of its terms that have
    joined O since (basis columns ``k0 .. k0 + new_O - 1``).

    Attributes:
        Bt: evaluations ``u(X)`` of the block's terms, one row per term.
        bb: their squared norms ``||u(X)||^2``.
        Wt: residuals ``w`` of the terms against the first ``k0`` basis columns.
        w_norm2: ``||w||^2``.
        twice: whether ``w`` has had its second Gram-Schmidt pass.
        P: projections ``Q_k0^T u(X)`` (host, ``k0 x b``).
        S: ``S[l, j] = q_l^T w_j`` for the block's ``l``-th new basis column ``q_l`` and terms
            ``j`` after it.
        C: least-squares coefficients of each term on O (rows ``k0..``: the new columns).
        residual2: squared residual of each term against O, downdated as O grows.
        band: relative width, in units of ``||u(X)||^2``, of the band around psi where a
            downdated squared residual is not trusted.
    """

    basis: QRBasis
    start: int
    threshold: float
    band: float
    k0: int
    Bt: torch.Tensor
    bb: np.ndarray
    Wt: torch.Tensor
    w_norm2: np.ndarray
    twice: np.ndarray
    P: np.ndarray
    S: np.ndarray
    C: np.ndarray
    residual2: np.ndarray
    new_O: int = 0

    @classmethod
    def project(cls, basis: QRBasis, Bt: torch.Tensor, bb: np.ndarray, start: int, threshold: float) -> "BorderBlock":
        """Project the terms ``Bt`` on the current basis and solve for their coefficients."""
        b, k0 = Bt.shape[0], basis.size
        basis.reserve(k0 + b)
        Qk = basis.Qt[:k0]
        P = Qk @ Bt.T
        Wt = torch.addmm(Bt, P.T, Qk, alpha=-1.0)
        w_norm2 = (Wt * Wt).sum(1).cpu().numpy().astype(np.float64)
        # Second Gram-Schmidt pass for the terms that may join O: a residual only shrinks
        # as O grows within the block, so terms already at or below psi (beyond rounding)
        # vanish and their single-pass projections suffice.
        band = 1e3 * torch.finfo(Bt.dtype).eps * math.sqrt(k0 + b + 1.0)
        twice = w_norm2 > threshold - 2.0 * band * bb
        candidates = np.flatnonzero(twice)
        if candidates.size:
            idx = torch.as_tensor(candidates, device=Wt.device)
            Wc = Wt[idx]
            for _ in range(2):
                P2 = Qk @ Wc.T
                Wc = torch.addmm(Wc, P2.T, Qk, alpha=-1.0)
                P[:, idx] += P2
                wc = (Wc * Wc).sum(1).cpu().numpy()
                w_norm2[candidates] = wc
                if not (wc < 1e-6 * bb[candidates]).any():  # a third pass only after heavy cancellation
                    break
            Wt[idx] = Wc
        P = P.cpu().numpy().astype(np.float64, copy=True)
        C = np.zeros((k0 + b, b))
        C[:k0] = -torch.linalg.solve_triangular(
            torch.from_numpy(np.ascontiguousarray(basis.R[:k0, :k0])), torch.from_numpy(P), upper=True).numpy()
        return cls(basis=basis, start=start, threshold=threshold, band=band, k0=k0, Bt=Bt, bb=bb, Wt=Wt, w_norm2=w_norm2,
                   twice=twice, P=P, S=np.zeros((b, b)), C=C, residual2=w_norm2.copy())

    @property
    def n_terms(self) -> int:
        return self.Bt.shape[0]

    def term(self, j: int) -> "BlockTerm":
        """Term ``j`` against the current O (including the block's earlier new O terms)."""
        k = self.k0 + self.new_O
        res2 = self.residual2[j]
        if abs(res2 - self.threshold) <= self.band * self.bb[j]:  # within rounding of psi: recompute
            r = self._residual(j, k)
            res2 = float(r @ r)
        return BlockTerm(block=self, position=j, size=k, m=self.basis.m, squared_residual=max(res2, 0.0))

    def _residual(self, j: int, k: int, record: bool = False) -> torch.Tensor:
        """The residual of term ``j`` against the first ``k`` basis columns, from ``w_j`` with a
        second Gram-Schmidt pass where it lacks one. With ``record`` (``j`` joins O) the
        corrections are added to its projections ``P`` and ``S``."""
        basis, k0, t = self.basis, self.k0, k - self.k0
        r = self.Wt[j]
        if not self.twice[j]:
            Qk0 = basis.Qt[:k0]
            corr = Qk0 @ r
            r = r - corr @ Qk0
            if record:
                self.P[:, j] += corr.cpu().numpy()
                self.twice[j] = True
        if t:
            Qin = basis.Qt[k0:k]
            r = r - torch.as_tensor(self.S[:t, j], dtype=r.dtype, device=r.device) @ Qin
            corr = Qin @ r
            r = r - corr @ Qin
            if record:
                self.S[:t, j] += corr.cpu().numpy()
        return r

    def projection(self, j: int, k: int) -> np.ndarray:
        """``Q_k^T u_j(X)``: the projections of term ``j`` on the first ``k`` basis columns."""
        return np.concatenate((self.P[:, j], self.S[: k - self.k0, j]))

    def append(self, j: int) -> None:
        """Term ``j`` joins O: its residual becomes basis column ``k0 + new_O``, and the block's
        later terms are updated against it (projection, residual, coefficients)."""
        basis, k0, t = self.basis, self.k0, self.new_O
        Qt, P, S, C, Wt = basis.Qt, self.P, self.S, self.C, self.Wt
        col = k0 + t
        r = self._residual(j, col, record=True)
        rho = float(torch.linalg.vector_norm(r))
        if rho < 1e-3 * math.sqrt(max(self.w_norm2[j], 0.0)):  # lost digits: one more pass against all of Q
            Qa = Qt[:col]
            corr = Qa @ r
            r = r - corr @ Qa
            corr = corr.cpu().numpy()
            P[:, j] += corr[:k0]
            S[:t, j] += corr[k0:]
            rho = float(torch.linalg.vector_norm(r))
        if not rho > 0:
            raise FloatingPointError("a new O column is linearly dependent on A; psi is too small for this dtype")
        q = r / rho
        Qt[col] = q
        basis.Et[col] = self.Bt[j]
        basis.R[:k0, col] = P[:, j]
        basis.R[k0:col, col] = S[:t, j]
        basis.R[col, col] = rho
        if j + 1 < self.n_terms:
            s = (Wt[j + 1 :] @ q).cpu().numpy()
            S[t, j + 1 :] = s
            self.residual2[j + 1 :] -= s * s
            s = s / rho
            C[:col, j + 1 :] -= np.outer(C[:col, j], s)
            C[col, j + 1 :] = -s
        self.new_O = t + 1

    def finish(self, generators: list[tuple["BlockTerm", Decision]]) -> np.ndarray:
        """Commit the block's new O columns; return the mean squared value on the points of
        each generator found in the block (its leading term and the decision that made it).

        With ``A = Q R``, ``g(X) = lead u(X) + A c = Q (lead p + R c) + lead r`` where ``r``,
        the residual of ``u`` at its decision, is orthogonal to ``Q``: one product for all.
        """
        basis = self.basis
        basis.size = k = self.k0 + self.new_O
        if not generators:
            return np.zeros(0)
        positions = [term.position for term, _ in generators]
        proj = np.zeros((k, len(generators)))
        proj[: self.k0] = self.P[:, positions]
        proj[self.k0 :] = self.S[: self.new_O, positions]
        coef = np.zeros((k, len(generators)))
        for i, (_, decision) in enumerate(generators):
            coef[: decision.coefficients.size, i] = decision.coefficients
        lead = np.array([decision.leading_coefficient for _, decision in generators], dtype=np.float64)
        res2 = np.array([term.squared_residual for term, _ in generators], dtype=np.float64)
        Z = basis.R[:k, :k] @ coef + proj * lead
        return (lead * lead * res2 + (Z * Z).sum(axis=0)) / basis.m


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
        (``||v|| = 1``, ``u``'s entry last), or None when it certainly exceeds ``threshold``."""
        k = self.size
        return secular_singular_pair(self.block.basis, k, self.coefficients, self.squared_residual,
                                     self.block.projection(self.position, k), threshold)


def secular_singular_pair(basis: QRBasis, k: int, c_ls: np.ndarray, rho2: float, p: np.ndarray,
                          threshold: float) -> tuple[float, np.ndarray] | None:
    """Smallest squared singular value ``s`` of ``[A, b]`` and its right singular vector, from
    the least-squares data of ``b`` on ``A = Q_k R_k``: coefficients ``c_ls``, squared residual
    ``rho2``, projections ``p = Q_k^T b``. None when ``s > threshold`` is certain.

    With ``H = A^T A = V diag(lam) V^T`` and ``c' = V^T c_ls``, ``s`` is the root below
    ``min(lam)`` of the secular function ``F(x) = rho2 - x (1 + sum_i lam_i c'_i^2 / (lam_i - x))``
    (no cancellation). ``s <= threshold`` iff ``F(threshold) <= 0``; then Newton's method from
    ``threshold`` converges monotonically to ``s`` (``F`` is concave and decreasing), and the
    singular vector is ``(V (lam c' / (lam - s)), 1)`` up to scale. When ``min(lam)`` is at or
    below the threshold, or ``F(threshold)`` is within rounding of zero, the small SVD of
    ``[[R_k, p], [0, sqrt(rho2)]]`` (the triangular factor of ``[A, b]``) answers instead.
    """
    lam, V = basis.eigh(k)
    mu = threshold
    cp = c_ls @ V
    w = lam * cp * cp
    exact = lam[0] <= mu * (1 + 1e-9)
    if not exact:
        F = rho2 - mu * (1.0 + (w / (lam - mu)).sum())
        scale = rho2 + mu * (1.0 + (w / (lam - mu)).sum())
        exact = abs(F) <= 1e-10 * scale
    if exact:
        T = np.zeros((k + 1, k + 1))
        T[:k, :k] = basis.R[:k, :k]
        T[:k, k] = p
        T[k, k] = math.sqrt(rho2)
        _, sv, Vh = np.linalg.svd(T)
        return float(sv[-1]) ** 2, Vh[-1].copy()
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
    v = np.r_[V @ (lam * cp / (lam - sigma2)), 1.0]
    return sigma2, v / np.linalg.norm(v)

