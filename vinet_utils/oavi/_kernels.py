"""The compiled loops of the l1-ball solvers (:mod:`.solvers` documents the methods) and of
ABM's secular equation (:func:`secular_roots`; :mod:`.secular` documents it).

Every function here is compiled by numba on first use and cached beside this file, so
a fresh checkout compiles once. They work in place on float64 arrays, read the
symmetric ``H`` by rows (row ``j`` of ``H`` is ``H e_j``), and never touch the ``m``
points: ``f(c) = (c^T H c + 2 a^T c + bb) / m``, whose gradient is ``s2 (H c + a)`` with
``s2 = 2 / m``.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)
#: For loops over the ``m`` points whose sums may be reassociated (vectorised): the order of
#: the additions changes the last bits, never a decision.
_jit_sums = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


# ---------------------------------------------------------------- shared pieces
@_jit
def objective(H, a, bb, m, c):
    """``f(c)``, computed afresh (:func:`_refresh`)."""
    return _refresh(H, a, bb, m, c)[1]


@_jit
def _H_times(H, c, support, n):
    """``H c`` for a ``c`` whose nonzeros lie in ``support[:n]``."""
    Hc = np.zeros(c.size)
    for p in range(n):
        _axpy_row(Hc, c[support[p]], H, support[p])
    return Hc


@_jit
def _axpy_row(y, alpha, H, j):
    """``y += alpha H[j, :y.size]``."""
    _axpy(y, alpha, H[j])


@_jit
def _axpy(y, alpha, x):
    """``y += alpha x[:y.size]`` (a loop over 1-d arrays, which LLVM vectorises)."""
    for i in range(y.size):
        y[i] += alpha * x[i]


@_jit
def _dot(x, y):
    """``x^T y``."""
    s = 0.0
    for i in range(x.size):
        s += x[i] * y[i]
    return s


@_jit
def _largest_entry_of_sum(x, y):
    """The index of the largest ``|x_i + y_i|`` (the first, on ties)."""
    best, value = 0, -1.0
    for i in range(x.size):
        v = abs(x[i] + y[i])
        if v > value:
            best, value = i, v
    return best


@_jit
def _largest_entry(g):
    """The index of the largest ``|g_i|`` (the first, on ties)."""
    best, value = 0, -1.0
    for i in range(g.size):
        if abs(g[i]) > value:
            best, value = i, abs(g[i])
    return best


# ---------------------------------------------------------------- the decision
@_jit
def decide(H, a, bb, m, radius, psi, c_ls, max_iter, residual):
    """:func:`.solvers.l1_ball_decide`: from the l1 projection of ``c_ls``, up to 20 BPCG
    steps, then the active set with the remaining budget. Returns ``(c, gap, iterations,
    certified)``."""
    c = project_l1_ball(c_ls, radius)
    gap, first, certified = bpcg(H, a, bb, m, radius, psi, 0.0, min(20, max_iter), True, c)
    if certified or objective(H, a, bb, m, c) <= psi:
        return c, gap, first, certified
    gap, it, certified = active_set(H, a, bb, m, radius, psi, c, 1e-9 * psi, max(max_iter - first, 1), residual)
    return c, gap, first + it, certified


@_jit
def project_l1_ball(v, radius):
    """:func:`.solvers.project_l1_ball` (a new array)."""
    if np.abs(v).sum() <= radius:
        return v.copy()
    scale = np.abs(v).max()  # work in units of max|v|: huge least-squares solutions
    u = np.sort(np.abs(v) / scale)[::-1]  # (ill-conditioned A) must not overflow the sums
    cumulative = np.cumsum(u) - radius / scale
    rho = 0
    for i in range(u.size):
        if u[i] * (i + 1) > cumulative[i]:
            rho = i
    theta = cumulative[rho] / (rho + 1.0) * scale
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0.0)


# ---------------------------------------------------------------- BPCG
@_jit
def bpcg(H, a, bb, m, radius, psi, tol, max_iter, stop_when_vanishing, c):
    """The loop of :func:`.solvers.l1_ball_bpcg` from the feasible ``c`` (moved in place);
    ``psi`` is NaN when not given. Returns ``(gap, iterations, certified)``."""
    k = a.size
    lam = _atoms_of(c, radius)
    s2 = 2.0 / m
    has_psi = not np.isnan(psi)
    Hc, f = _refresh(H, a, bb, m, c)
    it, certified, gap = 0, False, 0.0
    while True:
        g = s2 * (Hc + a)
        i = _largest_entry(g)
        fw_atom = 2 * k if g[i] == 0.0 else (i if g[i] < 0.0 else k + i)
        gap = max(_dot(g, c) + radius * abs(g[i]), 0.0)  # <g, c - v> at the best vertex v
        if has_psi and f - gap > psi:
            certified = True
            break
        if (stop_when_vanishing and has_psi and f <= psi) or gap <= tol or it >= max_iter:
            break
        away, local, local_gap = _away_and_local(lam, g, radius, k)
        if local_gap >= gap:
            f += _pairwise_step(H, c, Hc, lam, away, local, local_gap, s2, radius, k)
        else:
            f += _frank_wolfe_step(H, c, Hc, lam, fw_atom, gap, s2, radius, k)
        it += 1
        if it % 100 == 0:  # remove the drift of the incremental H c and f
            Hc, f = _refresh(H, a, bb, m, c)
    return gap, it, certified


@_jit
def _refresh(H, a, bb, m, c):
    """``H c`` and ``f(c)`` from scratch."""
    support = np.flatnonzero(c)
    Hc = _H_times(H, c, support, support.size)
    return Hc, (_dot(c, Hc + 2.0 * a) + bb) / m


@_jit
def _atoms_of(c, radius):
    """The weights of the atoms that write ``c`` (scaled into the ball): atoms ``0..k-1``
    are ``+radius e_i``, ``k..2k-1`` are ``-radius e_i``, atom ``2k`` the origin."""
    k = c.size
    l1 = np.abs(c).sum()
    if l1 > radius:
        c *= radius / l1
    lam = np.zeros(2 * k + 1)
    for i in range(k):
        lam[i] = max(c[i], 0.0) / radius
        lam[k + i] = max(-c[i], 0.0) / radius
    lam[2 * k] = max(1.0 - lam.sum(), 0.0)
    return lam


@_jit
def _atom(v, radius, k):
    """Atom ``v`` as ``(coordinate, coefficient)`` (the origin: coefficient 0)."""
    if v == 2 * k:
        return k - 1, 0.0
    return (v, radius) if v < k else (v - k, -radius)


@_jit
def _away_and_local(lam, g, radius, k):
    """Among the active atoms, the one of largest ``<g, v>`` (away), the one of smallest
    (local), and their difference (the local gap)."""
    away, local, hi, lo = -1, -1, -np.inf, np.inf
    for v in range(lam.size):
        if lam[v] != 0.0:
            i, s = _atom(v, radius, k)
            val = s * g[i]
            if val > hi:
                away, hi = v, val
            if val < lo:
                local, lo = v, val
    return away, local, hi - lo


@_jit
def _pairwise_step(H, c, Hc, lam, away, local, local_gap, s2, radius, k):
    """Move weight from the ``away`` atom to the ``local`` atom, by the exact line search
    along their difference, or all of the away atom's weight (a drop step); returns the
    change of ``f``."""
    vl, sl = _atom(local, radius, k)
    va, sa = _atom(away, radius, k)
    dHd = sl * (sl * H[vl, vl] - sa * H[va, vl]) - sa * (sl * H[vl, va] - sa * H[va, va])
    step_max = lam[away]
    step = local_gap / (s2 * dHd) if dHd > 0 else step_max
    if step >= step_max * (1.0 - 1e-9):  # drop step: the away atom leaves
        step = step_max
    c[vl] += step * sl
    c[va] -= step * sa
    _axpy_row(Hc, step * sl, H, vl)
    _axpy_row(Hc, -step * sa, H, va)
    lam[local] += step
    lam[away] = 0.0 if step == step_max else lam[away] - step
    return step * (0.5 * step * s2 * dHd - local_gap)


@_jit
def _frank_wolfe_step(H, c, Hc, lam, fw_atom, gap, s2, radius, k):
    """Move towards the best vertex of the ball by the exact line search (at most all the
    way, where ``c`` becomes that vertex); atoms whose weight fades away are forgotten.
    Returns the change of ``f``."""
    vw, sw = _atom(fw_atom, radius, k)
    dHd = sw * sw * H[vw, vw] - 2.0 * sw * Hc[vw] + _dot(c, Hc)
    step = gap / (s2 * dHd) if dHd > 0 else 1.0
    if step >= 1.0 - 1e-9:  # full step: c becomes the vertex
        step = 1.0
    c *= 1.0 - step
    c[vw] += step * sw
    Hc *= 1.0 - step
    _axpy_row(Hc, step * sw, H, vw)
    lam *= 1.0 - step
    lam[fw_atom] += step
    for v in range(lam.size):
        if lam[v] < 1e-14:
            lam[v] = 0.0
    return step * (0.5 * step * s2 * dHd - gap)


# ---------------------------------------------------------------- active set
@_jit
def active_set(H, a, bb, m, radius, psi, c, gap_tol, max_iter, residual):
    """The loop of :func:`.solvers.l1_ball_active_set` from ``c`` (moved in place; scaled onto
    the sphere first); ``residual`` is NaN when not known. Returns ``(gap, iterations,
    certified)``.

    The face is ``support[:n]`` (in the order its coordinates joined) with ``inv[:n, :n]
    = H_SS^{-1}``, ``count = [n, updates since the inverse was last computed afresh]``."""
    _onto_sphere(c, a, radius)
    support, inv, count = _new_face(H, c)
    Hc = _H_times(H, c, support, count[0])
    at_face_optimum = False
    s2 = 2.0 / m
    it, certified, gap = 0, False, 0.0
    while True:
        f, cg = _on_face(c, Hc, a, bb, m, support, count[0])  # f(c), <gradient / s2, c>
        if f <= psi:
            break
        best = _largest_entry_of_sum(Hc, a)  # of H c + a, the gradient of f over s2
        g_best = Hc[best] + a[best]
        fw = radius * abs(g_best)
        gap = max(s2 * (cg + fw), 0.0)
        lower = _lower_bound(f, gap, cg, fw, residual, m)
        if lower > psi:
            gap, certified = f - lower, True
            break
        if gap <= gap_tol or it >= max_iter:
            break
        block = -2  # the step is undefined unless a move below says otherwise
        if not (at_face_optimum and c[best] != 0.0):  # (it cannot be, in exact arithmetic)
            joining = 0.0
            if at_face_optimum:  # the best new coordinate joins, with the sign that decreases f
                support, inv = _face_add(H, support, inv, count, best)
                joining = -1.0 if g_best > 0 else 1.0
            block = _move_on_face(H, a, c, Hc, support, inv, count, joining, radius)
        if block == -2:  # one BPCG step instead, and the face of where it lands
            bpcg(H, a, bb, m, radius, np.nan, 0.0, 1, False, c)
            support, inv, count = _new_face(H, c)
            Hc = _H_times(H, c, support, count[0])
        at_face_optimum = block == -1
        it += 1
        if it % 50 == 0:  # remove the drift of the incremental H c
            Hc = _H_times(H, c, support, count[0])
    return gap, it, certified


@_jit
def _onto_sphere(c, a, radius):
    """Scale ``c`` onto the sphere ``||c||_1 = radius``; for ``c = 0``, the vertex
    ``-sign(a_i) radius e_i`` of the largest ``|a_i|`` (the steepest descent from 0)."""
    l1 = np.abs(c).sum()
    if l1 == 0.0:
        i = _largest_entry(a)
        c[i] = -radius if a[i] >= 0 else radius
    elif abs(l1 - radius) > 1e-9 * radius:
        c *= radius / l1


@_jit
def _on_face(c, Hc, a, bb, m, support, n):
    """``f(c)`` and ``<H c + a, c>``, summed over the face (where ``c`` is nonzero)."""
    quad, lin = 0.0, 0.0
    for p in range(n):
        j = support[p]
        quad += c[j] * Hc[j]
        lin += c[j] * a[j]
    return (quad + 2.0 * lin + bb) / m, quad + lin


@_jit
def _lower_bound(f, gap, cg, fw, residual, m):
    """A lower bound of ``min f``: ``f - gap``, or the scaled dual bound (see
    :func:`.solvers.l1_ball_active_set`) where ``residual`` is known and that is sharper."""
    lower = f - gap
    if not np.isnan(residual):
        zz = m * f - residual
        x = zz - cg - fw
        if x > 0 and zz > 0:
            lower = max(lower, (residual + x * x / zz) / m)
    return lower


@_jit
def _move_on_face(H, a, c, Hc, support, inv, count, joining, radius):
    """Move ``c`` towards the minimiser of its face, up to the first coefficient that
    reaches zero, which leaves the face. ``joining`` is the sign of the coordinate that
    just joined (last in the face), 0 when none did. Returns the position the blocking
    coefficient had (-1: the face minimiser was reached; -2: nothing moved, since the
    joining coordinate would take the wrong sign)."""
    n = count[0]
    cs, signs, a_face = np.empty(n), np.empty(n), np.empty(n)
    for p in range(n):
        cs[p], signs[p], a_face[p] = c[support[p]], np.sign(c[support[p]]), a[support[p]]
    if joining != 0.0:
        signs[n - 1] = joining
    d = _face_minimiser(inv, a_face, signs, radius, n) - cs
    step, block = _ratio_test(cs, d, signs)
    if step == 0.0 and block >= 0 and cs[block] == 0.0:
        return -2
    for p in range(n):
        c[support[p]] = cs[p] + step * d[p]
        _axpy_row(Hc, step * d[p], H, support[p])
    if block >= 0:  # exactly zero, and out of the face
        jb = support[block]
        _axpy_row(Hc, -c[jb], H, jb)
        c[jb] = 0.0
        _face_drop(H, support, inv, count, block)
    return block


@_jit
def _face_minimiser(inv, a_face, signs, radius, n):
    """The minimiser of ``f`` on the face's hyperplane ``s^T c_S = radius``:
    ``c_S = nu H_SS^{-1} s - H_SS^{-1} a_S``, the multiplier ``nu`` chosen to meet the
    constraint (``inv[:n, :n]`` is ``H_SS^{-1}``)."""
    sol0 = _symmetric_times(inv, a_face, n)
    sol1 = _symmetric_times(inv, signs, n)
    denom = _dot(signs, sol1)
    nu = (_dot(signs, sol0) + radius) / denom if denom != 0 else 0.0
    return nu * sol1 - sol0


@_jit
def _symmetric_times(M, v, n):
    """``M[:n, :n] v`` for a symmetric ``M``, as a sum of its rows (which vectorises)."""
    out = np.zeros(n)
    for q in range(n):
        _axpy(out, v[q], M[q])
    return out


@_jit
def _ratio_test(cs, d, signs):
    """How far the face's coefficients ``cs`` may move along ``d`` (at most the full step
    1) before one of them reaches zero; returns the step and the position in the face of
    that blocking coefficient (-1 when the full step is feasible)."""
    block, smallest = -1, np.inf
    for p in range(cs.size):
        if signs[p] * d[p] < 0:
            ratio = -cs[p] / d[p]
            if ratio < smallest:
                block, smallest = p, ratio
    if block >= 0 and smallest < 1.0:
        return max(smallest, 0.0), block
    return 1.0, -1


# ---------------------------------------------------------------- the face's inverse
# The inverse only steers the steps; every decision is certified from the iterate
# itself, so its rounding cannot change an outcome. It is bordered when a coordinate
# joins and downdated by the Schur complement when one leaves, both exact in exact
# arithmetic and O(n^2); it is computed afresh (O(n^3)) when a pivot is tiny, and after
# REFRESH_EVERY updates to bound the drift of their rounding. Most decisions take far
# fewer updates than that; on L32 at the papers' default tau (bench.CASES), refreshing
# every 32 or 256 updates, or never, gave the same iterates.
REFRESH_EVERY = 256
@_jit
def _new_face(H, c):
    """The face of ``c`` (its nonzero coordinates): ``(support, inv, count)``, the buffers
    with room to grow."""
    nonzero = np.flatnonzero(c)
    n = nonzero.size
    cap = max(16, 2 * n)
    support = np.empty(cap, np.int64)
    support[:n] = nonzero
    inv = np.empty((cap, cap))
    count = np.zeros(2, np.int64)
    count[0] = n
    _refresh_inverse(H, support, inv, count)
    return support, inv, count


@_jit
def _refresh_inverse(H, support, inv, count):
    n = count[0]
    HS = np.empty((n, n))
    for p in range(n):
        for q in range(n):
            HS[p, q] = H[support[p], support[q]]
    inv[:n, :n] = _inverse(HS)
    count[1] = 0


@_jit
def _inverse(M):
    """``M^{-1}`` by Gauss-Jordan elimination with partial pivoting. A singular ``M`` (an
    exactly zero pivot) is inverted with a small ridge, ``M + eps I``."""
    n = M.shape[0]
    ridge = 0.0
    while True:
        A, X = M.copy(), np.eye(n)
        for p in range(n):
            A[p, p] += ridge
        if _gauss_jordan(A, X):
            return X
        ridge = 1e-12 * max(np.abs(np.diag(M)).max(), 1e-300) if ridge == 0.0 else 100.0 * ridge


@_jit
def _gauss_jordan(A, X):
    """Reduce ``A`` to the identity by row operations, applying them to ``X`` as well (so an
    identity ``X`` becomes ``A^{-1}``); False at an exactly zero pivot."""
    n = A.shape[0]
    for col in range(n):
        piv = col
        for r in range(col + 1, n):
            if abs(A[r, col]) > abs(A[piv, col]):
                piv = r
        if A[piv, col] == 0.0:
            return False
        for q in range(n):  # swap the rows col and piv, and scale the pivot row
            A[col, q], A[piv, q] = A[piv, q], A[col, q]
            X[col, q], X[piv, q] = X[piv, q], X[col, q]
        scale = 1.0 / A[col, col]
        for q in range(n):
            A[col, q] *= scale
            X[col, q] *= scale
        for r in range(n):
            factor = A[r, col]
            if r != col and factor != 0.0:
                _axpy(A[r], -factor, A[col])
                _axpy(X[r], -factor, X[col])
    return True


@_jit
def _face_add(H, support, inv, count, i):
    """Coordinate ``i`` joins the face (last); returns the buffers, grown if they were full."""
    n = count[0]
    if n == support.size:
        grown = np.empty(2 * n, np.int64)
        grown[:n] = support[:n]
        bigger = np.empty((2 * n, 2 * n))
        bigger[:n, :n] = inv[:n, :n]
        support, inv = grown, bigger
    h = np.empty(n)
    for q in range(n):
        h[q] = H[support[q], i]
    u = _symmetric_times(inv, h, n)  # H_SS^{-1} h, h = H[S, i]
    delta = H[i, i] - _dot(h, u)
    support[n] = i
    count[0] = n + 1
    count[1] += 1
    if not delta > 1e-12 * H[i, i] or count[1] >= REFRESH_EVERY:
        _refresh_inverse(H, support, inv, count)
        return support, inv
    w = u / delta
    for p in range(n):
        _axpy(inv[p, :n], u[p], w)
        inv[p, n] = inv[n, p] = -w[p]
    inv[n, n] = 1.0 / delta
    return support, inv


@_jit
def _face_drop(H, support, inv, count, p):
    """The face's ``p``-th coordinate leaves it."""
    n = count[0]
    pivot = inv[p, p]
    col = np.empty(n - 1)
    for r in range(n - 1):
        col[r] = inv[r if r < p else r + 1, p]
    support[p : n - 1] = support[p + 1 : n].copy()
    count[0] = n - 1
    count[1] += 1
    if not abs(pivot) > 0 or count[1] >= REFRESH_EVERY:
        _refresh_inverse(H, support, inv, count)
        return
    w = col / pivot
    for r in range(n - 1):  # in place: every source lies at or after its destination
        source = inv[r if r < p else r + 1]
        row = inv[r]
        row[:p] = source[:p]
        row[p : n - 1] = source[p + 1 : n]
        _axpy(row[: n - 1], -col[r], w)


# ---------------------------------------------------------------- the border
@_jit
def _revlex(a, b):
    """-1, 0 or 1 as the term ``a`` comes before, is, or comes after ``b`` in the deglex order
    among terms of one degree (the higher variables compare first)."""
    for i in range(a.size - 1, -1, -1):
        if a[i] != b[i]:
            return -1 if a[i] < b[i] else 1
    return 0


@_jit
def _find(rows, keys, order, u, key):
    """Whether ``u`` is a row of ``rows``: a binary search for its hash ``key`` in the sorted
    ``keys[order]`` (the rows' hashes), then a comparison with each row of that hash."""
    lo, hi = 0, order.size
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[order[mid]] < key:
            lo = mid + 1
        else:
            hi = mid
    while lo < order.size and keys[order[lo]] == key:
        if _revlex(rows[order[lo]], u) == 0:
            return True
        lo += 1
    return False


@_jit
def border_terms(previous, previous_index):
    """The border of the degree after ``previous`` (``p x n`` distinct int64 terms of one
    degree in deglex order, ``previous_index`` their columns in ``A``), in deglex order: each
    term ``u = t x_i`` once, from its canonical parent ``t`` (``i`` at least ``t``'s highest
    variable), kept when every divisor ``u / x_j`` is in ``previous``. Made variable by
    variable, parents in order, the terms come out in deglex order: ``u``'s highest variable
    is ``i``, and multiplying by ``x_i`` keeps the parents' order. Returns ``(terms, parents,
    variables, count)``, or empty arrays and ``count`` -1 when ``previous`` is not in
    deglex order."""
    p, n = previous.shape
    rows = np.empty(p * n, np.int64)  # the parent's row in ``previous`` of each term kept
    variables = np.empty(p * n, np.int64)
    for a in range(p - 1):
        if _revlex(previous[a], previous[a + 1]) >= 0:
            return np.empty((0, n), np.int64), rows[:0], variables[:0], -1
    last = np.empty(p, np.int64)  # each parent's highest variable (-1: the constant term)
    for a in range(p):
        last[a] = n - 1
        while last[a] >= 0 and previous[a, last[a]] == 0:
            last[a] -= 1
    weight = np.empty(n, np.uint64)  # a term's hash: sum_k u_k weight_k, modulo 2**64
    w = np.uint64(0x9E3779B97F4A7C15)
    for k in range(n):
        w = w * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
        weight[k] = w | np.uint64(1)
    keys = np.zeros(p, np.uint64)
    for a in range(p):
        for k in range(n):
            keys[a] += np.uint64(previous[a, k]) * weight[k]
    order = np.argsort(keys)
    count = 0
    v = np.empty(n, np.int64)
    for i in range(n):
        for a in range(p):
            if last[a] > i:
                continue
            inside = True
            for j in range(i):  # u / x_i is the parent; u / x_j for u's other variables
                if previous[a, j] > 0:
                    v[:] = previous[a]
                    v[i] += 1
                    v[j] -= 1
                    if not _find(previous, keys, order, v, keys[a] + weight[i] - weight[j]):
                        inside = False
                        break
            if inside:
                rows[count] = a
                variables[count] = i
                count += 1
    terms = np.empty((count, n), np.int64)
    parents = np.empty(count, np.int64)
    for c in range(count):
        terms[c] = previous[rows[c]]
        terms[c, variables[c]] += 1
        parents[c] = previous_index[rows[c]]
    return terms, parents, variables[:count].copy(), count


# ---------------------------------------------------------------- ABM's secular equation
@_jit
def secular_roots(W, lam, rho2, x0, out):
    """For each row ``t``: Newton's method from ``x0[t]`` on the secular function
    ``F(x) = rho2[t] - x (1 + sum_i W[t, i] / (lam_i - x))``, stopping when a step no longer
    decreases ``x`` or moves it by at most ``1e-15 |x|`` (at most 100 steps); ``out[t]``
    is the root found, at least 0. Returns ``out``."""
    for t in range(rho2.size):
        x = x0[t]
        for _ in range(100):
            q_sum = 0.0
            d_sum = 0.0
            for i in range(lam.size):
                d = lam[i] - x
                q = W[t, i] / d
                q_sum += q
                d_sum += q * lam[i] / d
            step = (rho2[t] - x * (1.0 + q_sum)) / (-1.0 - d_sum)
            x_new = x - step
            if not x_new < x or abs(step) <= 1e-15 * abs(x):
                if x_new >= 0:
                    x = min(x, x_new)
                break
            x = x_new
        out[t] = max(x, 0.0)
    return out


@_jit
def secular_screen(lam, V, C, rho2, mu, upto_first_kept):
    """:func:`~vinet_utils.oavi.secular.secular_screen` in one compiled call (it documents
    the arguments and the outcome): ``(settled, vanishes, sigma2, v, stop)``."""
    k, n = C.shape
    settled, vanishes = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    sigma2, v = np.zeros(n), np.zeros((n, k + 1))
    if n == 0 or lam[0] <= mu * (1 + 1e-9):  # min(lam) at or below the threshold: the SVD answers
        return settled, vanishes, sigma2, v, n
    cp = np.dot(np.ascontiguousarray(C.T), V)
    W = np.empty((n, k))
    stop = n
    for t in range(n):
        total = 1.0
        for i in range(k):
            W[t, i] = lam[i] * cp[t, i] * cp[t, i]
            total += W[t, i] / (lam[i] - mu)
        F, scale = rho2[t] - mu * total, rho2[t] + mu * total
        settled[t] = not abs(F) <= 1e-10 * scale
        vanishes[t] = settled[t] and F <= 0
        if upto_first_kept and not vanishes[t] and stop == n:
            stop = t + 1
    live = np.flatnonzero(vanishes[:stop])
    if live.size == 0:
        return settled, vanishes, sigma2, v, stop
    x0 = np.empty(live.size)
    for a in range(live.size):
        t = live[a]
        x0[a] = min(mu, rho2[t] / (1.0 + np.dot(cp[t], cp[t])))
    roots = secular_roots(np.ascontiguousarray(W[live]), lam, rho2[live], x0, np.empty(live.size))
    scaled = np.empty((live.size, k))
    for a in range(live.size):
        t = live[a]
        sigma2[t] = roots[a]
        for i in range(k):
            scaled[a, i] = lam[i] * cp[t, i] / (lam[i] - roots[a])
    vecs = np.dot(scaled, np.ascontiguousarray(V.T))
    for a in range(live.size):
        t = live[a]
        v[t, :k] = vecs[a]
        v[t, k] = 1.0
        v[t] /= np.sqrt(np.dot(v[t], v[t]))
    return settled, vanishes, sigma2, v, stop


# ---------------------------------------------------------------- the blocked engine's closed form
@_jit
def closed_form_run(j, W, B, Q, E, R, P, S, C, residual2, w_norm2, bb, twice, k0, new_O, threshold, band,
                    radius, outcome, size_at):
    """Decide a block's terms from ``j`` on, in order, while the closed form suffices (the
    ``"ihb"`` oracle; :class:`~vinet_utils.oavi.linalg.BorderBlock` names the arrays): a
    squared residual above ``threshold`` joins O (:func:`_append_column`), one at or below it
    with ``||c||_1 <= radius`` leads a generator. Stops at the first term that needs more: a
    residual within ``band * bb`` of the threshold (recomputed by the caller) or an active l1
    bound (the sparse oracle). ``outcome[i]`` becomes 1 (joins O) or 2 (leads a generator) and
    ``size_at[i]`` the ``|O|`` it was decided against. Returns ``(first undecided term,
    new_O, 0)``, or ``(term, new_O, 1)`` when its new column is linearly dependent on ``A``."""
    n = residual2.size
    while j < n:
        res2 = residual2[j]
        if abs(res2 - threshold) <= band * bb[j]:
            return j, new_O, 0
        k = k0 + new_O
        if not max(res2, 0.0) > threshold:
            l1 = 0.0
            for i in range(k):
                l1 += abs(C[i, j])
            if l1 > radius:
                return j, new_O, 0
            outcome[j] = 2
        else:
            if _append_column(j, W, B, Q, E, R, P, S, C, residual2, w_norm2, twice, k0, new_O):
                return j, new_O, 1
            outcome[j] = 1
            new_O += 1
        size_at[j] = k
        j += 1
    return j, new_O, 0


@_jit
def _append_column(j, W, B, Q, E, R, P, S, C, residual2, w_norm2, twice, k0, t):
    """Term ``j`` joins O as basis column ``k0 + t``: its residual against every column (a
    second Gram-Schmidt pass where it lacks one, the corrections recorded in ``P`` and ``S``)
    becomes ``q``, ``R`` gets its column, and the block's later terms their projection on
    ``q``, downdated squared residual and coefficients. Returns 1 when the residual is 0."""
    n, col = residual2.size, k0 + t
    r = W[j].copy()
    if not twice[j]:
        corr = np.dot(Q[:k0], r)
        r -= np.dot(corr, Q[:k0])
        P[:, j] += corr
        twice[j] = True
    if t:
        r -= np.dot(np.ascontiguousarray(S[:t, j]), Q[k0:col])
        corr = np.dot(Q[k0:col], r)
        r -= np.dot(corr, Q[k0:col])
        S[:t, j] += corr
    rho = np.sqrt(np.dot(r, r))
    if rho < 1e-3 * np.sqrt(max(w_norm2[j], 0.0)):  # lost digits: one more pass against all of Q
        corr = np.dot(Q[:col], r)
        r -= np.dot(corr, Q[:col])
        P[:, j] += corr[:k0]
        S[:t, j] += corr[k0:]
        rho = np.sqrt(np.dot(r, r))
    if not rho > 0:
        return 1
    Q[col] = r / rho
    E[col] = B[j]
    R[:k0, col] = P[:, j]
    R[k0:col, col] = S[:t, j]
    R[col, col] = rho
    if j + 1 < n:
        s = np.dot(W[j + 1:], Q[col])
        S[t, j + 1:] = s
        residual2[j + 1:] -= s * s
        s = s / rho
        for a in range(col):
            c = C[a, j]
            for b in range(j + 1, n):
                C[a, b] -= c * s[b - j - 1]
        C[col, j + 1:] = -s
    return 0


@_jit
def abm_run(j, stop, first, screen_rho2, settled, vanishes, sigma2, v, W, B, Q, E, R, P, S, C, residual2, w_norm2,
            bb, twice, k0, new_O, threshold, band, psi, m, outcome, size_at):
    """ABM's decisions for a block's terms from ``j`` to before ``stop``, read from the block's
    screen (``first`` its first term; ``screen_rho2``, ``settled``, ``vanishes``, ``sigma2``,
    ``v`` as :func:`~vinet_utils.oavi.secular.secular_screen` returns them), in order: a
    vanishing term leads a generator (``outcome`` 2 when rescaled to a leading 1, 3 when kept
    l2-normalised), any other joins O (``outcome`` 1, :func:`_append_column`), after which
    the screen is stale and the loop returns. It also returns at a term whose squared residual
    lies within ``band * bb`` of ``threshold`` or that the screen did not settle (the caller
    decides those). Returns ``(first undecided term, new_O, 0)``, or 1 as the last value when a
    new column is linearly dependent on ``A``."""
    while j < stop:
        res2 = residual2[j]
        if abs(res2 - threshold) <= band * bb[j]:
            return j, new_O, 0
        i = j - first
        if not (screen_rho2[i] == max(res2, 0.0) and settled[i]):
            return j, new_O, 0
        k = k0 + new_O
        size_at[j] = k
        if vanishes[i]:
            s2, lead = sigma2[i], v[i, k]
            if not (s2 / m > psi or abs(lead) < 1e-12):
                outcome[j] = 2 if s2 / (m * lead ** 2) <= psi else 3
                j += 1
                continue
        if _append_column(j, W, B, Q, E, R, P, S, C, residual2, w_norm2, twice, k0, new_O):
            return j, new_O, 1
        outcome[j] = 1
        return j + 1, new_O + 1, 0
    return j, new_O, 0


# ---------------------------------------------------------------- ABM's eigendecomposition, grown
EPS = np.finfo(np.float64).eps


@_jit
def eigen_grow(lam, V, H):
    """The eigendecomposition of ``H`` from that of its leading ``lam.size`` rows and columns,
    one column at a time (:func:`eigen_append`). Returns ``(lam', V', 1)``, or ``(lam, V, 0)``
    where a step needs deflation: the caller then decomposes ``H`` afresh."""
    for size in range(lam.size, H.shape[0]):
        lam, V, ok = eigen_append(lam, V, np.ascontiguousarray(H[:size, size]), H[size, size])
        if not ok:
            return lam, V, 0
    return lam, V, 1


@_jit
def eigen_append(lam, V, h, eta):
    """The eigendecomposition of ``[[H, h], [h^T, eta]]`` from ``H = V diag(lam) V^T`` (``lam``
    ascending, ``k >= 1``): in the basis ``diag(V, 1)`` the matrix is an arrowhead with shaft
    ``diag(lam)`` and arm ``z = V^T h``, whose eigenvalues interlace ``lam``. Each is the root of
    ``f(mu) = eta - mu - sum_i z_i^2 / (lam_i - mu)`` in its interval, found in coordinates
    shifted to the nearer pole (:func:`_arrow_root`); the arm is then recomputed from the roots
    (Gu and Eisenstat's formula), so that the eigenvectors are orthogonal to working precision,
    and multiplied by ``diag(V, 1)``. ``O(k^2)`` for the roots against ``O(k^3)`` with a large
    constant for a fresh decomposition. Returns ``(lam', V', 1)``, or ``(lam, V, 0)`` where the
    arrowhead would need deflation (an arm entry or a gap of ``lam`` at rounding, or a root that
    falls on its pole): the caller then decomposes afresh."""
    k = lam.size
    z = np.zeros(k)
    for r in range(k):
        for i in range(k):
            z[i] += V[r, i] * h[r]
    z_abs = 0.0
    for i in range(k):
        z_abs += abs(z[i])
    scale = max(abs(lam[0]), abs(lam[k - 1]), abs(eta)) + z_abs
    for i in range(k):  # an arm entry or a gap at rounding: the pole is an eigenvalue (deflation)
        if abs(z[i]) <= 64 * EPS * scale or (i and lam[i] - lam[i - 1] <= 64 * EPS * scale):
            return lam, V, 0
    lo, hi = eta - z_abs, eta + z_abs
    for i in range(k):
        lo, hi = min(lo, lam[i] - abs(z[i])), max(hi, lam[i] + abs(z[i]))
    origin = np.empty(k + 1, np.int64)  # the pole each root is measured from
    tau = np.empty(k + 1)  # root r = lam[origin[r]] + tau[r]
    z2 = z * z
    for r in range(k + 1):
        left = lam[r - 1] if r else lo
        right = lam[r] if r < k else hi
        if r == 0:
            p = 0
        elif r == k:
            p = k - 1
        else:  # the nearer pole: f decreases from +inf to -inf across the interval
            p = r if _arrow_f(lam, z2, eta, r, 0.5 * (left + right) - lam[r]) > 0 else r - 1
        origin[r] = p
        q = -1 if r == 0 or r == k else (r - 1 if p == r else r)
        tau[r] = _arrow_root(lam, z2, eta, p, q, left - lam[p], right - lam[p])
    # the arm recomputed from the roots, then each eigenvector (z_i / (mu - lam_i), 1), normalised
    zhat = np.empty(k)
    for i in range(k):
        prod = -((lam[i] - lam[origin[i]]) - tau[i]) * ((lam[i] - lam[origin[k]]) - tau[k])
        for j in range(k):
            if j != i:
                prod *= ((lam[i] - lam[origin[j]]) - tau[j]) / (lam[i] - lam[j])
        if not prod > 0:
            return lam, V, 0
        zhat[i] = np.sqrt(prod) if z[i] >= 0 else -np.sqrt(prod)
    X = np.empty((k + 1, k + 1))
    mu = np.empty(k + 1)
    for r in range(k + 1):
        mu[r] = lam[origin[r]] + tau[r]
        norm2 = 1.0
        for i in range(k):
            X[i, r] = zhat[i] / (tau[r] - (lam[i] - lam[origin[r]]))
            norm2 += X[i, r] * X[i, r]
        X[k, r] = 1.0
        inv = 1.0 / np.sqrt(norm2)
        for i in range(k + 1):
            X[i, r] *= inv
    out = np.empty((k + 1, k + 1))
    out[:k] = np.dot(np.ascontiguousarray(V), np.ascontiguousarray(X[:k]))
    out[k] = X[k]
    return mu, out, 1


@_jit
def _arrow_f(lam, z2, eta, p, t):
    """``f(lam[p] + t)`` of :func:`eigen_append`, the differences to the poles taken from ``lam[p]``."""
    s = eta - lam[p] - t
    for i in range(lam.size):
        s -= z2[i] / ((lam[i] - lam[p]) - t)
    return s


@_jit
def _arrow_root(lam, z2, eta, p, q, a, b):
    """The root ``t`` in ``(a, b)`` of ``f(lam[p] + t)`` (:func:`eigen_append`), which falls from
    positive to negative across the interval; ``t = 0`` is the pole ``p`` at one end, and ``q``
    the pole at the other (``-1`` for the outer intervals). It starts where the interval's own
    poles, with the other terms frozen at the middle, put the root, then runs Newton's method
    on ``g = f (lam_p - mu) (lam_q - mu)``, which has no pole in the interval, kept inside the
    bracket (bisection where a step leaves it), until a step moves ``t`` by at most two units
    of rounding or the bracket closes."""
    dq = lam[q] - lam[p] if q >= 0 else 0.0
    t = 0.5 * (a + b)
    c = _arrow_rest(lam, z2, eta, p, q, t)[0]
    if q >= 0:  # c t^2 + (z2_p + z2_q - c dq) t - z2_p dq = 0
        B, C = z2[p] + z2[q] - c * dq, -z2[p] * dq
        disc = B * B - 4.0 * c * C
        if c != 0 and disc >= 0:
            root = -0.5 * (B + (np.sqrt(disc) if B >= 0 else -np.sqrt(disc)))  # no cancellation
            for guess in (root / c, C / root if root != 0 else t):
                if a < guess < b:
                    t = guess
    elif c != 0 and a < -z2[p] / c < b:  # c + z2_p / t = 0
        t = -z2[p] / c
    for _ in range(100):
        psi, dpsi = _arrow_rest(lam, z2, eta, p, q, t)
        if q >= 0:
            dp, dqt = -t, dq - t
            g = psi * dp * dqt - z2[p] * dqt - z2[q] * dp
            dg = dpsi * dp * dqt - psi * (dp + dqt) + z2[p] + z2[q]
            f_sign = -g if dp * dqt < 0 else g
        else:
            g = -psi * t - z2[p]
            dg = -dpsi * t - psi
            f_sign = g if t < 0 else -g
        if f_sign > 0:
            a = t
        elif f_sign < 0:
            b = t
        else:
            return t
        t_new = t - g / dg if dg != 0 else 0.5 * (a + b)
        if abs(t_new - t) <= 4.5e-16 * abs(t):  # converged (a step that rounds to nothing)
            return t_new
        if not a < t_new < b:
            t_new = 0.5 * (a + b)
            if not a < t_new < b:  # the bracket has closed
                return t_new
        t = t_new
    return t


@_jit
def _arrow_rest(lam, z2, eta, p, q, t):
    """``f(lam[p] + t)`` of :func:`eigen_append` without the terms of poles ``p`` and ``q``, and
    its derivative in ``t``."""
    psi, dpsi = eta - lam[p] - t, -1.0
    for i in range(lam.size):
        if i != p and i != q:
            d = (lam[i] - lam[p]) - t
            w = z2[i] / d
            psi -= w
            dpsi -= w / d
    return psi, dpsi


# ---------------------------------------------------------------- the points, the border, small solves
@_jit
def transposed_columns(X, columns, out):
    """``out[j] = X[:, columns[j]]``: the chosen variables of the points ``X`` (``m x n``), one
    row each, so that a variable's values are contiguous."""
    for i in range(X.shape[0]):
        for j in range(columns.size):
            out[j, i] = X[i, columns[j]]


@_jit_sums
def border_rows(E, X, parents, variables, out, norms2):
    """``out[i] = E[parents[i]] * X[variables[i]]`` (a border term's values: an O term's times a
    variable's) and ``norms2[i] = ||out[i]||^2``, in one pass over the points."""
    for i in range(parents.size):
        e, x, o = E[parents[i]], X[variables[i]], out[i]
        total = 0.0
        for c in range(o.size):
            v = e[c] * x[c]
            o[c] = v
            total += v * v
        norms2[i] = total


@_jit
def solve_upper(R, P):
    """``R^{-1} P`` for the upper-triangular ``R`` (``k x k``, ``P`` ``k x b``), by back substitution
    along the rows of ``P``."""
    k, b = P.shape
    X = np.empty((k, b))
    for i in range(k - 1, -1, -1):
        for c in range(b):
            X[i, c] = P[i, c]
        for j in range(i + 1, k):
            r = R[i, j]
            for c in range(b):
                X[i, c] -= r * X[j, c]
        d = R[i, i]
        for c in range(b):
            X[i, c] /= d
    return X


# ---------------------------------------------------------------- the Gram path of small fits
@_jit
def gram_project(L, k, G, P):
    """``P[:k] = L[:k, :k]^{-1} G`` by forward substitution (``L`` lower-triangular): each border
    term's projections on the orthonormal basis of O's ``k`` evaluations, from their inner
    products ``G`` with them."""
    for j in range(G.shape[1]):
        for i in range(k):
            s = G[i, j]
            for a in range(i):
                s -= L[i, a] * P[a, j]
            P[i, j] = s / L[i, i]


@_jit
def gram_decide(L, k0, P, H, h_row, bb, threshold, band, radius, outcome, C, res2):
    """The closed-form ("ihb") decisions of one degree's border from inner products alone
    (:mod:`~vinet_utils.oavi.gram` documents the path): ``L`` is the lower Cholesky factor of
    ``A A^T`` for the ``k0`` O terms so far (rows of ``A`` the evaluations), ``P[:k0]`` the
    border's projections (:func:`gram_project`), ``bb`` their squared norms, and row
    ``h_row[j]`` of ``H`` term ``j``'s inner products with the whole border (``-1`` where it
    cannot join O). In order, a term's squared residual is ``bb - ||p||^2``: above
    ``threshold`` it joins O (``L`` gains the row ``(p, sqrt(residual))`` and the later terms
    their projection on it, ``(H[j, l] - p_j . p_l) / rho``; ``outcome`` 1), else it leads a
    generator with coefficients ``c = -L^{-T} p`` (``C[:, j]``, ``outcome`` 2, ``res2[j]`` its
    squared residual). Returns ``(|O| after, 0)``, or ``(term, 1)`` at a squared residual within
    ``band * bb`` of the threshold (or above it without a row of ``H``) and ``(term, 2)`` at one
    whose ``||c||_1`` exceeds ``radius``: those need the blocked engine or the sparse oracle."""
    b = bb.size
    k = k0
    for j in range(b):
        r2 = bb[j]
        for i in range(k):
            r2 -= P[i, j] * P[i, j]
        if abs(r2 - threshold) <= band * bb[j]:
            return j, 1
        if r2 > threshold:
            if h_row[j] < 0:
                return j, 1
            rho = np.sqrt(r2)
            for i in range(k):
                L[k, i] = P[i, j]
            L[k, k] = rho
            for l in range(j + 1, b):
                s = H[h_row[j], l]
                for i in range(k):
                    s -= P[i, j] * P[i, l]
                P[k, l] = s / rho
            outcome[j] = 1
            k += 1
        else:
            l1 = 0.0
            for i in range(k - 1, -1, -1):  # back substitution: L^T c = -p
                s = -P[i, j]
                for a in range(i + 1, k):
                    s -= L[a, i] * C[a, j]
                C[i, j] = s / L[i, i]
                l1 += abs(C[i, j])
            if l1 > radius:
                return j, 2
            outcome[j] = 2
            res2[j] = max(r2, 0.0)
    return k, 0
