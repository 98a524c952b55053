"""Solvers for the sparse oracle of OAVI: the l1-bounded least-squares problem

    min_c f(c) = (1/m) ||A c + u(X)||^2   subject to   ||c||_1 <= radius = tau - 1,

written in the ``k = |O|`` coordinates as ``f(c) = (c^T H c + 2 a^T c + bb) / m`` with
``H = A^T A``, ``a = A^T u(X)`` and ``bb = ||u(X)||^2``, so that no solver touches the ``m``
points.

* :func:`l1_ball_bpcg`: blended pairwise conditional gradients (the ``"bpcg"`` oracle, run
  to a Frank-Wolfe gap; sparse iterates from the origin);
* :func:`l1_ball_active_set`: a primal active-set method on the faces of the l1 sphere,
  run only until it can certify ``min f <= psi`` or ``min f > psi``;
* :func:`l1_ball_decide`: the ``"ihb"`` oracle's decision when the least-squares solution
  lies outside the ball (a few pairwise steps, then the active set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def project_l1_ball(v: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{c : ||c||_1 <= radius}`` (soft thresholding
    at the level that makes the l1 norm equal to ``radius``)."""
    v = np.asarray(v, dtype=np.float64)
    if np.abs(v).sum() <= radius:
        return v.copy()
    scale = np.abs(v).max()  # work in units of max|v|: huge least-squares solutions
    u = np.sort(np.abs(v) / scale)[::-1]  # (ill-conditioned A) must not overflow the sums
    cumulative = np.cumsum(u) - radius / scale
    idx = np.arange(1, u.size + 1)
    above = np.flatnonzero(u * idx > cumulative)
    rho = above[-1] if above.size else 0
    theta = cumulative[rho] / (rho + 1.0) * scale
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0.0)


# ============================================================== sparse oracle
@dataclass
class L1BallResult:
    """Outcome of an l1-ball solver (:func:`l1_ball_bpcg`, :func:`l1_ball_active_set`).

    Attributes:
        coef: the final iterate ``c`` (``||c||_1 <= radius``).
        value: ``f(c) = (1/m) ||A c + b||^2``.
        gap: Frank-Wolfe gap at ``c``; ``value - gap`` is a lower bound of the minimum.
        iterations: number of iterations run.
        certified_above: the run stopped early because a lower bound of the minimum
            (``value - gap`` or sharper) exceeds psi: the term cannot vanish.
    """

    coef: np.ndarray
    value: float
    gap: float
    iterations: int
    certified_above: bool


def _final_result(H: np.ndarray, a: np.ndarray, bb: float, m: int, c: np.ndarray, gap: float, iterations: int,
                  certified: bool) -> L1BallResult:
    """The solvers' outcome at ``c``, with ``f(c)`` computed afresh (no incremental drift)."""
    f = float((c @ (H @ c) + 2.0 * (a @ c) + bb) / m)
    return L1BallResult(coef=c.copy(), value=f, gap=float(gap), iterations=iterations, certified_above=certified)


def l1_ball_bpcg(
    H: np.ndarray,
    a: np.ndarray,
    bb: float,
    m: int,
    radius: float,
    psi: float | None = None,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    stop_when_vanishing: bool = False,
    x0: np.ndarray | None = None,
) -> L1BallResult:
    """Blended pairwise conditional gradients (BPCG) over the l1 ball.

    Minimises ``f(c) = (c^T H c + 2 a^T c + bb) / m`` (that is ``(1/m)||A c + b||^2`` with
    ``H = A^T A``, ``a = A^T b``, ``bb = b^T b``) over ``||c||_1 <= radius``. All work is in
    the ``k = len(a)`` coordinates, independent of the number of points ``m``.

    The iterate is a convex combination of *atoms* (:class:`_AtomicIterate`): ``+radius e_i``,
    ``-radius e_i`` and the origin (a redundant atom, which lets the run start at ``c = 0``
    with nothing selected).

    Each iteration takes either a pairwise step between the worst and the best active
    atom or, when the Frank-Wolfe gap is larger than that local gap, a
    Frank-Wolfe step towards the best vertex of the ball; the step size is the exact
    line-search minimiser of the quadratic. Starting from the origin, every Frank-Wolfe
    step adds at most one coordinate, so early iterates are sparse.

    Stops when the Frank-Wolfe gap is ``<= tol`` (then ``f(c) - min <= tol``), after
    ``max_iter`` iterations, or, if ``psi`` is given, as soon as ``f(c) - gap > psi``, which
    certifies that the minimum exceeds psi. With ``stop_when_vanishing`` it also stops as
    soon as ``f(c) <= psi``, which certifies that the minimum is at most psi: the
    vanishing decision is then exact and ``c`` is a feasible psi-vanishing solution.
    """
    k = a.shape[0]
    if k == 0 or not np.isfinite(radius):
        raise ValueError("l1_ball_bpcg needs at least one coordinate and a finite radius")
    H = _by_rows(H)
    run = _AtomicIterate(H, a, bb, m, radius, x0)
    it = 0
    certified = False
    while True:
        g, gap, fw_atom = run.frank_wolfe_gap()
        if psi is not None and run.f - gap > psi:
            certified = True
            break
        if (stop_when_vanishing and psi is not None and run.f <= psi) or gap <= tol or it >= max_iter:
            break
        run.step(g, gap, fw_atom)
        it += 1
        if it % 100 == 0:  # remove the drift of the incremental H c and f
            run.recompute()
    return _final_result(H, a, bb, m, run.c, gap, it, certified)


class _AtomicIterate:
    """The BPCG iterate ``c = sum_v lam_v v``, a convex combination of the atoms of the l1
    ball, with ``H c`` and ``f(c)`` kept up to date by each step.

    Atom ``v`` is the vector ``atom_coef[v] e_{atom_var[v]}``: atoms ``0..k-1`` are
    ``+radius e_i``, atoms ``k..2k-1`` are ``-radius e_i``, and atom ``2k`` is the origin. A
    feasible start ``x0`` is written as such a combination directly: weight
    ``|x0_i| / radius`` on ``sign(x0_i) radius e_i``, the rest on the origin."""

    def __init__(self, H: np.ndarray, a: np.ndarray, bb: float, m: int, radius: float, x0: np.ndarray | None):
        k = a.shape[0]
        self.H, self.a, self.bb, self.m, self.radius, self.k = H, a, bb, m, radius, k
        self.atom_var = np.concatenate([np.arange(k), np.arange(k), [k - 1]])
        self.atom_coef = np.concatenate([np.full(k, radius), np.full(k, -radius), [0.0]])
        self.origin = 2 * k
        self.lam = lam = np.zeros(2 * k + 1)  # weights of the atoms
        if x0 is None:
            c = np.zeros(k)
        else:
            c = np.array(x0, dtype=np.float64)
            l1 = np.abs(c).sum()
            if l1 > radius * (1 + 1e-9):
                raise ValueError(f"x0 lies outside the l1 ball: ||x0||_1 = {l1} > {radius}")
            c *= min(1.0, radius / l1) if l1 > 0 else 1.0
            lam[:k] = np.maximum(c, 0.0) / radius
            lam[k : 2 * k] = np.maximum(-c, 0.0) / radius
        lam[self.origin] = max(1.0 - lam.sum(), 0.0)
        self.c = c
        self.s2 = 2.0 / m  # f's Hessian is s2 * H
        self.recompute()

    def recompute(self) -> None:
        """``H c`` and ``f(c)`` from scratch."""
        self.Hc = self.H @ self.c
        self.f = (self.c @ (self.Hc + 2.0 * self.a) + self.bb) / self.m

    def frank_wolfe_gap(self) -> tuple[np.ndarray, float, int]:
        """The gradient ``g`` at ``c``, the Frank-Wolfe gap ``max_v <g, c - v>`` over the
        vertices ``v`` of the ball, and the atom of the best vertex."""
        g = self.s2 * (self.Hc + self.a)
        i = int(np.abs(g).argmax())
        fw_val = -self.radius * abs(g[i])  # <g, v> at the best vertex v of the ball
        fw_atom = self.origin if g[i] == 0 else (i if g[i] < 0 else self.k + i)
        gap = max(float(g @ self.c) - fw_val, 0.0)
        return g, gap, fw_atom

    def step(self, g: np.ndarray, gap: float, fw_atom: int) -> None:
        """A pairwise step between the active atoms of largest and smallest ``<g, v>`` when
        their local gap reaches the Frank-Wolfe gap, a Frank-Wolfe step otherwise."""
        active = self.lam.nonzero()[0]
        vals = self.atom_coef[active] * g[self.atom_var[active]]
        ia, il = int(vals.argmax()), int(vals.argmin())
        local_gap = vals[ia] - vals[il]
        if local_gap >= gap:
            self.pairwise_step(active[ia], active[il], local_gap)
        else:
            self.frank_wolfe_step(fw_atom, gap)

    def pairwise_step(self, away: int, local: int, local_gap: float) -> None:
        """Move weight from the ``away`` atom to the ``local`` atom, by the exact line search
        along their difference, or all of the away atom's weight (a drop step)."""
        H, c, lam = self.H, self.c, self.lam
        sl, vl = self.atom_coef[local], self.atom_var[local]
        sa, va = self.atom_coef[away], self.atom_var[away]
        Hd = sl * H[vl] - sa * H[va]
        dHd = sl * Hd[vl] - sa * Hd[va]
        step_max = lam[away]
        step = local_gap / (self.s2 * dHd) if dHd > 0 else step_max
        if step >= step_max * (1.0 - 1e-9):  # drop step: the away atom leaves
            step = step_max
        c[vl] += step * sl
        c[va] -= step * sa
        self.Hc += step * Hd
        lam[local] += step
        lam[away] = 0.0 if step == step_max else lam[away] - step
        self.f += step * (0.5 * step * self.s2 * dHd - local_gap)

    def frank_wolfe_step(self, fw_atom: int, gap: float) -> None:
        """Move towards the best vertex of the ball by the exact line search (at most all the
        way, where ``c`` becomes that vertex); atoms whose weight fades away are forgotten."""
        c, lam = self.c, self.lam
        sw, vw = self.atom_coef[fw_atom], self.atom_var[fw_atom]
        Hw = sw * self.H[vw]
        dHd = sw * Hw[vw] - 2.0 * sw * self.Hc[vw] + c @ self.Hc
        step = gap / (self.s2 * dHd) if dHd > 0 else 1.0
        if step >= 1.0 - 1e-9:  # full step: c becomes the vertex
            step = 1.0
        c *= 1.0 - step
        c[vw] += step * sw
        self.Hc *= 1.0 - step
        self.Hc += step * Hw
        lam *= 1.0 - step
        lam[fw_atom] += step
        lam[lam < 1e-14] = 0.0
        self.f += step * (0.5 * step * self.s2 * dHd - gap)


def l1_ball_active_set(
    H: np.ndarray,
    a: np.ndarray,
    bb: float,
    m: int,
    radius: float,
    psi: float,
    x0: np.ndarray,
    gap_tol: float | None = None,
    max_iter: int = 10_000,
    residual: float | None = None,
) -> L1BallResult:
    """Decide whether ``min f(c) <= psi`` over ``||c||_1 <= radius`` by a primal active-set
    method on the faces of the l1 sphere, ``f(c) = (c^T H c + 2 a^T c + bb) / m``.

    Meant for the case where the unconstrained minimiser lies outside the ball, so the
    constrained one lies on the sphere ``||c||_1 = radius``. ``x0`` must lie on the sphere
    (the l1 projection of the least-squares solution does; see :func:`_start_on_sphere`).
    A face is a support ``S`` with signs ``s``; on it the problem is an equality-constrained
    quadratic, ``min f`` subject to ``s^T c_S = radius``, solved exactly by one linear system
    (:func:`_face_minimiser`). The iterate moves towards that face minimiser until the
    first coefficient reaches zero (:func:`_ratio_test`; that coordinate then leaves
    ``S``); at a face minimiser the coordinate with the largest gradient entry joins ``S``
    with the sign that decreases ``f`` (:meth:`_ActiveSetIterate.step`).

    Every iterate is feasible, so ``f(c) <= psi`` certifies a psi-vanishing generator,
    and ``f(c) - gap > psi`` (``gap``: the Frank-Wolfe duality gap, ``f(c) - gap`` a lower
    bound of the minimum) certifies that the minimum exceeds psi. The run stops only on
    one of these two certificates, or when the gap is ``<= gap_tol`` (default
    ``1e-9 * psi``; then ``f`` is within ``gap_tol`` of the minimum and the decision is
    ``f(c) <= psi``), or after ``max_iter`` iterations; never on a small improvement.

    ``residual``, if given, is ``min_c m f(c)`` without the bound (the squared least-squares
    residual, ``bb - a^T H^{-1} a``). It enables a second, scaled dual lower bound: with
    ``z = A c + b``, ``min f >= (residual + max(0, z^T p - radius ||A^T z||_inf)^2 / ||z||^2) / m``
    (``p`` the projection of ``b`` on the span of ``A``), never weaker than ``f - gap``.
    """
    gap_tol = 1e-9 * psi if gap_tol is None else gap_tol
    H = _by_rows(H)
    a = np.asarray(a, dtype=np.float64)
    run = _ActiveSetIterate(H, a, bb, m, radius, _start_on_sphere(a, radius, x0))
    it = 0
    certified = False
    while True:
        f, gap = run.value_and_gap()
        if f <= psi:
            break
        lower = run.lower_bound(f, gap, residual)
        if lower > psi:
            gap = f - lower
            certified = True
            break
        if gap <= gap_tol or it >= max_iter:
            break
        run.step()
        it += 1
        if it % 50 == 0:  # remove the drift of the incremental H c
            run.recompute()
    return _final_result(H, a, bb, m, run.c, gap, it, certified)


def _start_on_sphere(a: np.ndarray, radius: float, x0: np.ndarray) -> np.ndarray:
    """A copy of ``x0`` scaled onto the sphere ``||c||_1 = radius``; for ``x0 = 0``, the vertex
    ``-sign(a_i) radius e_i`` of the largest ``|a_i|`` (the steepest descent from 0)."""
    c = np.array(x0, dtype=np.float64)
    l1 = np.abs(c).sum()
    if l1 == 0:
        i = int(np.abs(a).argmax())
        c[i] = -radius if a[i] >= 0 else radius
    elif abs(l1 - radius) > 1e-9 * radius:
        c *= radius / l1
    return c


def _face_minimiser(inv: np.ndarray, a_face: np.ndarray, signs: np.ndarray, radius: float) -> np.ndarray:
    """The minimiser of ``f`` on the face's hyperplane ``s^T c_S = radius``:
    ``c_S = nu H_SS^{-1} s - H_SS^{-1} a_S``, the multiplier ``nu`` chosen to meet the
    constraint (``inv`` is ``H_SS^{-1}``)."""
    sol0 = inv @ a_face
    sol1 = inv @ signs
    denom = signs @ sol1
    nu = (signs @ sol0 + radius) / denom if denom != 0 else 0.0
    return nu * sol1 - sol0


def _ratio_test(cs: np.ndarray, d: np.ndarray, signs: np.ndarray) -> tuple[float, int]:
    """How far the face's coefficients ``cs`` may move along ``d`` (at most the full step
    1) before one of them reaches zero; returns the step and the position in the face of
    that blocking coefficient (-1 when the full step is feasible)."""
    shrinking = signs * d < 0
    step, block = 1.0, -1
    if shrinking.any():
        ratios = np.where(shrinking, -cs / np.where(shrinking, d, 1.0), np.inf)
        block = int(ratios.argmin())
        if ratios[block] < 1.0:
            step = max(float(ratios[block]), 0.0)
        else:
            block = -1
    return step, block


class _ActiveSetIterate:
    """The iterate ``c`` of :func:`l1_ball_active_set` on the l1 sphere, its face
    (:class:`_Face`) and ``H c``; whether ``c`` is the minimiser of its face."""

    def __init__(self, H: np.ndarray, a: np.ndarray, bb: float, m: int, radius: float, c: np.ndarray):
        self.H, self.a, self.bb, self.m, self.radius = H, a, bb, m, radius
        self.s2 = 2.0 / m
        self.c = c
        self._enter_face_of_c()

    def _enter_face_of_c(self) -> None:
        """The face of ``c`` (its nonzero coordinates) and ``H c``, from scratch."""
        self.face = _Face(self.H, np.flatnonzero(self.c))
        self.recompute()
        self.at_face_optimum = False

    def recompute(self) -> None:
        """``H c`` from the rows of the face."""
        self.Hc = self.c[self.face.support] @ self.face.rows

    def value_and_gap(self) -> tuple[float, float]:
        """``f(c)`` and the Frank-Wolfe gap ``<g, c> + radius ||g||_inf`` at ``c``; keeps the
        gradient for the step and the lower bound."""
        support = self.face.support
        self.graw = graw = self.Hc + self.a  # the gradient of f, over s2
        self.cs = cs = self.c[support]
        f = (cs @ (self.Hc[support] + 2.0 * self.a[support]) + self.bb) / self.m
        self.best = i = int(np.abs(graw).argmax())
        self.cg = float(graw[support] @ cs)
        self.fw = self.radius * abs(graw[i])
        gap = max(self.s2 * (self.cg + self.fw), 0.0)
        return f, gap

    def lower_bound(self, f: float, gap: float, residual: float | None) -> float:
        """A lower bound of ``min f``: ``f - gap``, or the scaled dual bound (see
        :func:`l1_ball_active_set`) where ``residual`` is known and that is sharper."""
        lower = f - gap
        if residual is not None:
            zz = self.m * f - residual
            x = zz - self.cg - self.fw
            if x > 0 and zz > 0:
                lower = max(lower, (residual + x * x / zz) / self.m)
        return lower

    def step(self) -> None:
        """One iteration: at a face minimiser the best coordinate joins the face; then ``c``
        moves towards the face minimiser, up to the first coefficient that reaches zero
        (which leaves the face). Where this is undefined (the coordinate is already in the
        face, or would join with the wrong sign), one BPCG step instead."""
        cs = self.cs
        signs = np.sign(cs)
        if self.at_face_optimum:  # the best new coordinate joins the face
            i = self.best
            if self.c[i] != 0.0:  # cannot happen in exact arithmetic
                self._bpcg_step()
                return
            self.face.add(i)
            signs = np.append(signs, -1.0 if self.graw[i] > 0 else 1.0)
            cs = self.c[self.face.support]
        d = _face_minimiser(self.face.inv, self.a[self.face.support], signs, self.radius) - cs
        step, block = _ratio_test(cs, d, signs)
        if step == 0.0 and block >= 0 and cs[block] == 0.0:  # the new coordinate has the wrong sign
            self._bpcg_step()
            return
        self._move(cs, step * d, block)

    def _move(self, cs: np.ndarray, delta: np.ndarray, block: int) -> None:
        """``c_S += delta``; the ``block``-th coordinate of the face (if any) is then exactly
        zero and leaves the face."""
        support = self.face.support
        self.c[support] = cs + delta
        self.Hc += delta @ self.face.rows
        if block >= 0:
            jb = support[block]
            self.Hc -= self.c[jb] * self.face.rows[block]
            self.c[jb] = 0.0
            self.face.drop(block)
        self.at_face_optimum = block < 0

    def _bpcg_step(self) -> None:
        """One BPCG step from ``c`` (:func:`l1_ball_bpcg`), and its face."""
        self.c = l1_ball_bpcg(self.H, self.a, self.bb, self.m, self.radius, tol=0.0, max_iter=1, x0=self.c).coef
        self._enter_face_of_c()


class _Face:
    """A support ``S`` of :func:`l1_ball_active_set` (in the order its coordinates joined),
    with the rows ``H[S]`` and the inverse of ``H[S, S]``.

    The rows live in a buffer that doubles when full, so a coordinate joins in ``O(k)``;
    the inverse is bordered when a coordinate joins and downdated by the Schur complement
    when one leaves, and recomputed from scratch every 32 updates or when a pivot is
    tiny. The inverse only steers the steps; every decision is certified from the
    iterate itself, so its rounding cannot change an outcome."""

    def __init__(self, H: np.ndarray, support: np.ndarray):
        self.H = H
        self.support = np.asarray(support, dtype=np.int64)
        self._rows = np.empty((max(16, 2 * self.support.size), H.shape[1]))
        self._rows[: self.support.size] = H[self.support]
        self._refresh()

    @property
    def rows(self) -> np.ndarray:
        """``H[S]``, one row per coordinate of the support."""
        return self._rows[: self.support.size]

    def _refresh(self) -> None:
        S = self.support
        HS = self.rows[:, S]
        try:
            self.inv = np.linalg.inv(HS) if S.size else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            self.inv = np.linalg.pinv(HS)
        self.updates = 0

    def add(self, i: int) -> None:
        n = self.support.size
        h = self.rows[:, i]
        u = self.inv @ h
        delta = self.H[i, i] - h @ u
        if n == self._rows.shape[0]:
            self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
        self._rows[n] = self.H[i]
        self.support = np.append(self.support, i)
        self.updates += 1
        if not delta > 1e-12 * self.H[i, i] or self.updates >= 32:
            self._refresh()
            return
        inv = np.empty((n + 1, n + 1))
        inv[:n, :n] = self.inv + u[:, None] * (u / delta)
        inv[:n, n] = inv[n, :n] = -u / delta
        inv[n, n] = 1.0 / delta
        self.inv = inv

    def drop(self, p: int) -> None:
        n = self.support.size
        self.support = np.concatenate((self.support[:p], self.support[p + 1 :]))
        self._rows[p : n - 1] = self._rows[p + 1 : n]
        self.updates += 1
        pivot = self.inv[p, p]
        if not abs(pivot) > 0 or self.updates >= 32:
            self._refresh()
            return
        col = np.concatenate((self.inv[:p, p], self.inv[p + 1 :, p]))
        inv = _without(self.inv, p)
        inv -= col[:, None] * (col / pivot)
        self.inv = inv


def _without(M: np.ndarray, p: int) -> np.ndarray:
    """``M`` without its row and column ``p``."""
    n = M.shape[0]
    out = np.empty((n - 1, n - 1))
    out[:p, :p] = M[:p, :p]
    out[:p, p:] = M[:p, p + 1 :]
    out[p:, :p] = M[p + 1 :, :p]
    out[p:, p:] = M[p + 1 :, p + 1 :]
    return out


def _by_rows(H) -> np.ndarray:
    """``H`` as float64 with contiguous rows, copied only if need be: the solvers read the
    symmetric ``H`` by rows, and a view into a larger matrix (the Gram matrix of the first
    columns of ``A``) serves as it is."""
    H = np.asarray(H, dtype=np.float64)
    return H if H.strides[1] == H.itemsize else np.ascontiguousarray(H)


def l1_ball_decide(H: np.ndarray, a: np.ndarray, bb: float, m: int, radius: float, psi: float, c_ls: np.ndarray,
                   max_iter: int = 10_000, residual: float | None = None) -> L1BallResult:
    """Decide whether ``min f(c) <= psi`` over ``||c||_1 <= radius`` when the least-squares
    solution ``c_ls`` lies outside the ball (the ``"ihb"`` oracle with an active l1 bound).

    Starts at the l1 projection of ``c_ls``. Up to 20 pairwise steps
    (:func:`l1_ball_bpcg`, stopping at the first ``f(c) <= psi`` or certificate) settle the
    easy cases cheaply; :func:`l1_ball_active_set` continues from there otherwise, with
    the remaining iteration budget. ``residual`` is the squared least-squares residual
    (see :func:`l1_ball_active_set`). The iterations of both stages are counted.
    """
    x0 = project_l1_ball(c_ls, radius)
    result = l1_ball_bpcg(H, a, bb, m, radius, psi=psi, tol=0.0, max_iter=min(20, max_iter),
                          stop_when_vanishing=True, x0=x0)
    if result.value <= psi or result.certified_above:
        return result
    first = result.iterations
    result = l1_ball_active_set(H, a, bb, m, radius, psi, x0=result.coef, max_iter=max(max_iter - first, 1),
                                residual=residual)
    result.iterations += first
    return result
