"""Tests of OAVI (docs/method.md §4) and of the term bookkeeping it relies on.

The expected O/G structures below are derived by hand in each test's docstring from
the deglex order ``1 < x0 < x1 < x2 < x0^2 < x0*x1 < x1^2 < x0*x2 < x1*x2 < x2^2 < ...``
(variables ``x0 < x1 < x2``) and from the mean squared least-squares residual of each
border term on the variety; psi and the sizes are chosen so every decision has a
margin of at least about 1.5x on either side of psi.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

from vinet_utils.oavi import monomials
from vinet_utils.oavi import (
    ORACLES,
    OAVI,
    NotFittedError,
    brute_force_fit,
    check_tau,
    default_tau,
    l1_ball_active_set,
    l1_ball_bpcg,
    pearson_order,
    project_l1_ball,
)

NOISE = 0.005  # noise std; its square, 2.5e-5, is far below every psi used here


# ------------------------------------------------------------------ samplers
def circle(rng, m, r=1.0):
    th = rng.uniform(0, 2 * np.pi, m)
    return np.c_[r * np.cos(th), r * np.sin(th)]


def sphere(rng, m):
    v = rng.standard_normal((m, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def line(rng, m):
    t = rng.uniform(-1, 1, m)
    return np.c_[0.1 + 0.635 * t, -0.2 + 0.3 * t, 0.3 - 0.5 * t]


def twisted_cubic(rng, m):
    t = rng.uniform(-1, 1, m)
    return np.c_[t, t**2, t**3]


def two_circles(rng, m, h=0.5):
    """Unit circles in the planes x2 = h and x2 = -h, half of the points on each."""
    th = rng.uniform(0, 2 * np.pi, m)
    s = np.where(np.arange(m) % 2 == 0, h, -h)
    return np.c_[np.cos(th), np.sin(th), s]


def noisy(sampler, seed, m, **kw):
    rng = np.random.default_rng(seed)
    X = sampler(rng, m, **kw)
    return X + NOISE * rng.standard_normal(X.shape)


def as_set(exponents):
    return {tuple(int(e) for e in row) for row in exponents}


def count_by_degree(exponents):
    return np.bincount(np.asarray(exponents).sum(axis=1), minlength=1).tolist()


def generator(model, leading):
    """Index of the generator with the given leading term."""
    rows = [tuple(r) for r in model.G_leading_exponents_.tolist()]
    return rows.index(tuple(leading))


def coefficient(model, g, term):
    rows = [tuple(r) for r in model.O_exponents_.tolist()]
    return model.coefficients_[g, rows.index(tuple(term))]


def check_vanishing(model, sampler, psi, seed=1234, m=2000, box=1.0, **kw):
    """Generators vanish on fresh samples of the variety; the lowest-degree ones (which
    cut out the variety) do not vanish on uniform random points of the bounding box."""
    fresh = noisy(sampler, seed, m, **kw)
    assert (model.transform(fresh) ** 2).mean(axis=0).max() <= 2 * psi
    rng = np.random.default_rng(seed + 1)
    U = rng.uniform(-box, box, size=(m, model.n_features_in_))
    low = model.degrees_ == model.degrees_.min()
    assert (model.transform(U)[:, low] ** 2).mean(axis=0).min() > 10 * psi


# ============================================================ term bookkeeping
def test_deglex_order_two_and_three_variables():
    two = monomials.deglex_sort(
        [(0, 2), (1, 1), (2, 0), (0, 1), (1, 0), (0, 0), (3, 0)]
    )
    assert two == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0)]
    three = monomials.deglex_sort(t for t in itertools.product(range(3), repeat=3) if sum(t) == 2)
    names = [monomials.term_to_string(t) for t in three]
    assert names == ["x0^2", "x0*x1", "x1^2", "x0*x2", "x1*x2", "x2^2"]
    exps = np.array(three[::-1])
    assert [tuple(r) for r in exps[monomials.deglex_argsort(exps)]] == three


def test_border_of_an_order_ideal():
    """O = {1, x0, x1, x0^2, x0*x1} (x1^2 went to G): the degree-3 border is x0^3 and
    x0^2*x1, the only cubics whose quadratic divisors all lie in O."""
    O = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1)]
    index = {t: i for i, t in enumerate(O)}
    terms, parents, variables = monomials.border([(2, 0), (1, 1)], index, 2)
    assert terms == [(3, 0), (2, 1)]
    for u, p, v in zip(terms, parents, variables):
        assert monomials.multiply(O[p], int(v)) == u


def test_closure_and_recursive_evaluation_match_direct_powers():
    rng = np.random.default_rng(0)
    exps = np.array([[3, 0, 2], [0, 4, 0], [1, 1, 1], [2, 0, 0], [0, 0, 0], [0, 2, 3]])
    plan = monomials.evaluation_plan(exps)
    # every closure term except 1 has its parent one degree lower, times one variable
    closure = [tuple(t) for t in plan.exponents]
    assert closure[0] == (0, 0, 0) and monomials.deglex_sort(closure) == closure
    for d in range(1, plan.max_degree + 1):
        block = plan.exponents[plan.offsets[d] : plan.offsets[d + 1]]
        parent = plan.exponents[plan.offsets[d - 1] + plan.parents[d - 1]]
        expected = parent.copy()
        expected[np.arange(len(block)), plan.variables[d - 1]] += 1
        assert (expected == block).all()
    X = torch.as_tensor(rng.uniform(-1, 1, (7, 3)))
    M = monomials.evaluate_plan(X, plan)[:, torch.as_tensor(plan.support)]
    direct = torch.stack([torch.prod(X ** torch.as_tensor(e), dim=1) for e in exps], dim=1)
    torch.testing.assert_close(M, direct, rtol=1e-12, atol=1e-14)


def test_default_tau_follows_the_spec():
    for psi in (0.05, 0.005, 0.001, 1e-4):
        D = math.ceil(-math.log(psi) / math.log(4))
        assert default_tau(psi) == pytest.approx(max(1.5**D, 2.0))
    assert OAVI(psi=0.005).fit(noisy(circle, 0, 50)).tau_ == pytest.approx(1.5**4)


# ====================================================== known varieties
def test_circle_structure():
    """Unit circle, psi = 0.004. Degree 1: x0, x1 join O (variance 1/2). Degree 2: x0^2
    and x0*x1 carry cos 2t and sin 2t (residual 1/8), x1^2 = 1 - x0^2 vanishes. Degree 3
    border = {x0^3, x0^2*x1} (x0*x1^2 and x1^3 are multiples of x1^2): cos 3t, sin 3t
    leave 1/32, so both join O. Degree 4 border = {x0^4, x0^3*x1}: residual 1/128 =
    0.0078 > psi, both join O. Degree 5 border = {x0^5, x0^4*x1}: residual 1/512 =
    0.0020 < psi, both vanish. No term of degree 5 joined O, so the border of degree 6 is
    empty and OAVI stops: |O| = 9 and G has degrees 2, 5, 5."""
    psi = 0.004
    X = noisy(circle, 0, 600)
    model = OAVI(psi=psi).fit(X)
    assert as_set(model.O_exponents_) == {(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (3, 0), (2, 1), (4, 0), (3, 1)}
    assert [tuple(r) for r in model.O_exponents_] == monomials.deglex_sort(model.O_exponents_)
    assert [tuple(r) for r in model.G_leading_exponents_] == [(0, 2), (5, 0), (4, 1)]
    assert model.degrees_.tolist() == [2, 5, 5]
    assert model.max_degree_reached_ == 5 and model.n_bound_active_ == 0
    g = generator(model, (0, 2))
    assert coefficient(model, g, (2, 0)) == pytest.approx(1.0, abs=0.02)
    assert coefficient(model, g, (0, 0)) == pytest.approx(-1.0, abs=0.02)
    assert np.abs(model.coefficients_[g, [1, 2, 4]]).max() < 0.02
    # x0^5 ~ (5/4) x0^3 - (5/16) x0 on the circle (the cos 5t part is what is left)
    g5 = generator(model, (5, 0))
    assert coefficient(model, g5, (3, 0)) == pytest.approx(-1.25, abs=0.05)
    assert coefficient(model, g5, (1, 0)) == pytest.approx(0.3125, abs=0.05)
    assert model.train_mse_[g5] == pytest.approx(1 / 512, rel=0.25)
    # coefficients of O terms added after a generator are zero
    assert (model.coefficients_[g, 5:] == 0).all()
    check_vanishing(model, circle, psi)
    text = model.generators_as_strings()[0]  # e.g. "x1^2 - 0.001 x0*x1 + 1.000 x0^2 - 0.999"
    assert re.fullmatch(r"x1\^2( [+-] \d\.\d{3} (x0\*x1|x0\^2|x0|x1))* - (0\.99\d|1\.0[01]\d)", text), text
    assert re.search(r"\+ (0\.99\d|1\.0[01]\d) x0\^2", text), text


def test_sphere_structure():
    """Unit sphere, psi = 0.005. Degree 1: all three variables (variance 1/3). Degree 2,
    border order x0^2, x0*x1, x1^2, x0*x2, x1*x2, x2^2: the first five are independent
    (degree-2 harmonics, residuals >= 0.066) and x2^2 = 1 - x0^2 - x1^2 vanishes. Degree 3
    border = the 7 cubics not divisible by x2^2; they span the 7 degree-3 harmonics
    with residuals >= 0.0095, so all join O. Degree 4 border = the 9 quartics not divisible
    by x2^2; each either vanishes or joins O (their residuals lie near psi, so the
    split is not asserted)."""
    psi = 0.005
    model = OAVI(psi=psi).fit(noisy(sphere, 0, 1000))
    counts = count_by_degree(model.O_exponents_)
    assert counts[:4] == [1, 3, 5, 7]
    assert (model.degrees_ == 2).sum() == 1 and model.degrees_.min() == 2 and (model.degrees_ != 3).all()
    g = generator(model, (0, 0, 2))
    for term, value in [((2, 0, 0), 1.0), ((0, 2, 0), 1.0), ((0, 0, 0), -1.0)]:
        assert coefficient(model, g, term) == pytest.approx(value, abs=0.02)
    n_O4 = counts[4] if len(counts) > 4 else 0
    assert int((model.degrees_ == 4).sum()) + n_O4 == 9
    check_vanishing(model, sphere, psi)


def test_line_in_r3_structure():
    """Line x = a + t d, t uniform in [-1, 1], d0 = 0.635. Degree 1: x0 joins O; x1 and
    x2 are affine in x0 and vanish. Degree 2 border = {x0^2}: residual d0^4 * 4/45 =
    0.0145 > psi = 0.005, joins O. Degree 3 border = {x0^3}: residual d0^6 * 4/175 =
    0.0015, vanishes. So O = {1, x0, x0^2}, G degrees 1, 1, 3."""
    psi = 0.005
    model = OAVI(psi=psi).fit(noisy(line, 0, 1000))
    assert [tuple(r) for r in model.O_exponents_] == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert [tuple(r) for r in model.G_leading_exponents_] == [(0, 1, 0), (0, 0, 1), (3, 0, 0)]
    g = generator(model, (0, 1, 0))  # x1 = -0.2 + 0.3 (x0 - 0.1) / 0.635
    assert coefficient(model, g, (1, 0, 0)) == pytest.approx(-0.3 / 0.635, abs=0.01)
    assert coefficient(model, g, (0, 0, 0)) == pytest.approx(0.2 + 0.03 / 0.635, abs=0.01)
    check_vanishing(model, line, psi)


def test_twisted_cubic_structure():
    """(t, t^2, t^3), t uniform in [-1, 1], psi = 0.003. Degree 1: residuals of t, t^2,
    t^3 are 1/3, 4/45, 4/175 (Legendre components): all join O. Degree 2: x0^2 = x1 and
    x0*x1 = x2 vanish; x1^2 = t^4 leaves (8/35)^2/9 = 0.0058 > psi and joins O; then
    x0*x2 = t^4 = x1^2 vanishes, x1*x2 = t^5 leaves 0.0015 and x2^2 = t^6 leaves 0.0004:
    both vanish. Degree 3 border = {x1^3} (divisor x1^2), = t^6, vanishes. So
    O = {1, x0, x1, x2, x1^2} and G has five degree-2 generators and one of degree 3."""
    psi = 0.003
    model = OAVI(psi=psi).fit(noisy(twisted_cubic, 0, 1000))
    assert [tuple(r) for r in model.O_exponents_] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 2, 0)]
    assert [tuple(r) for r in model.G_leading_exponents_] == [
        (2, 0, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1), (0, 0, 2), (0, 3, 0)
    ]
    g = generator(model, (2, 0, 0))  # x0^2 - x1
    assert coefficient(model, g, (0, 1, 0)) == pytest.approx(-1.0, abs=0.02)
    check_vanishing(model, twisted_cubic, psi)


def test_union_of_two_circles_structure():
    """Unit circles at x2 = +-1/2, psi = 0.004. Degree 1: x0, x1, x2 join O. Degree 2: x0^2,
    x0*x1 (harmonics, 1/8), x0*x2, x1*x2 (sign(x2) cos t, ..., h^2/2 = 1/8) join O; x1^2 =
    1 - x0^2 and x2^2 = 1/4 vanish. Degree 3 border {x0^3, x0^2*x1, x0^2*x2, x0*x1*x2}:
    residuals 1/32 and h^2/8 = 1/32, all join O. Degree 4 border {x0^4, x0^3*x1, x0^3*x2,
    x0^2*x1*x2}: 1/128 and h^2/32 = 1/128 = 0.0078 > psi, all join O. Degree 5 border
    {x0^5, x0^4*x1, x0^4*x2, x0^3*x1*x2}: 1/512 and h^2/128 = 1/512 < psi, all vanish.
    So |O| = 16 and G has degrees 2, 2, 5, 5, 5, 5."""
    psi = 0.004
    model = OAVI(psi=psi).fit(noisy(two_circles, 0, 1000))
    assert count_by_degree(model.O_exponents_) == [1, 3, 4, 4, 4]
    assert [tuple(r) for r in model.G_leading_exponents_] == [
        (0, 2, 0), (0, 0, 2), (5, 0, 0), (4, 1, 0), (4, 0, 1), (3, 1, 1)
    ]
    g = generator(model, (0, 0, 2))
    assert coefficient(model, g, (0, 0, 0)) == pytest.approx(-0.25, abs=0.01)
    check_vanishing(model, two_circles, psi)


def test_exact_interpolation_of_generic_points():
    """psi ~ 0: generic distinct points impose independent conditions, so O grows until
    its evaluation matrix is square and invertible, |O| = m, and every generator
    vanishes on the points (to rounding)."""
    for n, m in [(2, 12), (3, 20)]:
        X = np.random.default_rng(n).uniform(-1, 1, (m, n))
        for tau in (float("inf"), 1e6):
            model = OAVI(psi=1e-10, tau=tau).fit(X)
            assert model.O_exponents_.shape[0] == m
            assert np.abs(model.evaluate(X)).max() < 1e-7
            assert model.train_mse_.max() < 1e-14


# ========================================================= equivalence
def reference_fit(X, psi, max_degree=10):
    """Plain OAVI without the l1 bound, written independently of the package: the border
    from all monomials of the degree, a fresh numpy lstsq per border term."""
    m, n = X.shape
    O, cols, G = [(0,) * n], [np.ones(m)], []
    for d in range(1, max_degree + 1):
        Oset = set(O)
        border = []
        for u in itertools.product(range(d + 1), repeat=n):
            if sum(u) != d:
                continue
            divs = [u[:i] + (u[i] - 1,) + u[i + 1 :] for i in range(n) if u[i] > 0]
            if all(t in Oset for t in divs):
                border.append(u)
        border.sort(key=lambda u: (sum(u), u[::-1]))
        if not border:
            break
        added = False
        for u in border:
            b = np.prod(X ** np.array(u), axis=1)
            A = np.stack(cols, axis=1)
            c = np.linalg.lstsq(A, -b, rcond=None)[0]
            if np.mean((A @ c + b) ** 2) <= psi:
                G.append((u, c))
            else:
                O.append(u)
                cols.append(b)
                added = True
        if not added:
            break
    return O, G


@pytest.mark.parametrize("seed", [0, 1])
def test_ihb_matches_brute_force_least_squares(seed):
    rng = np.random.default_rng(seed)
    # noisy points near a quadric surface: a mix of vanishing and non-vanishing terms
    P = rng.uniform(-1, 1, (150, 2))
    X = np.c_[P, 0.5 * P[:, 0] ** 2 - 0.3 * P[:, 0] * P[:, 1]] + 0.02 * rng.standard_normal((150, 3))
    psi = 0.002
    model = OAVI(psi=psi, tau=float("inf")).fit(X)
    O, G = reference_fit(X, psi)
    assert [tuple(r) for r in model.O_exponents_] == O
    assert [tuple(r) for r in model.G_leading_exponents_] == [u for u, _ in G]
    assert len(G) > 5 and len(O) > 10
    for g, (_, c) in enumerate(G):
        np.testing.assert_allclose(model.coefficients_[g, : len(c)], c, rtol=1e-7, atol=1e-8)
    # the package's brute-force reference agrees too, also with an active l1 bound
    for tau in (float("inf"), 3.0):
        fast = OAVI(psi=psi, tau=tau).fit(X)
        slow = brute_force_fit(X, psi=psi, tau=tau)
        assert (fast.O_exponents_ == slow.O_exponents_).all()
        assert (fast.G_leading_exponents_ == slow.G_leading_exponents_).all()
        ls = ~fast.from_sparse_oracle_
        np.testing.assert_allclose(fast.coefficients_[ls], slow.coefficients_[ls], atol=1e-8)
    assert fast.n_bound_active_ > 0 and fast.n_bound_active_ == slow.n_bound_active_


def test_l1_bound_is_respected_when_active():
    X = noisy(twisted_cubic, 3, 500)
    model = OAVI(psi=0.003, tau=2.5).fit(X)  # x1*x2 ~ (10/9) x2 - (5/21) x0 + ... needs l1 ~ 1.35
    assert model.n_bound_active_ > 0
    assert (np.abs(model.coefficients_).sum(axis=1) <= model.tau_ - 1 + 1e-9).all()
    assert (model.train_mse_ <= 0.003 * (1 + 1e-9)).all()


# ============================================================== oracles
def test_bpcg_oracle_is_feasible_close_to_least_squares_and_sparser():
    psi = 0.004
    X = noisy(circle, 5, 600)
    ls = OAVI(psi=psi, tau=20.0).fit(X)
    cg = OAVI(psi=psi, tau=20.0, oracle="bpcg").fit(X)
    assert cg.from_sparse_oracle_.all() and not ls.from_sparse_oracle_.any()
    assert (cg.O_exponents_ == ls.O_exponents_).all()
    assert (cg.G_leading_exponents_ == ls.G_leading_exponents_).all()
    assert (np.abs(cg.coefficients_).sum(axis=1) <= cg.tau_ - 1 + 1e-9).all()
    # the least-squares value is the unconstrained optimum; the FW gap bounds the distance
    assert (cg.train_mse_ >= ls.train_mse_ - 1e-12).all()
    assert (cg.train_mse_ <= ls.train_mse_ + psi / 10 + 1e-12).all()
    assert np.count_nonzero(cg.coefficients_) < np.count_nonzero(ls.coefficients_)
    g = generator(cg, (0, 2))
    assert coefficient(cg, g, (2, 0)) == pytest.approx(1.0, abs=0.05)
    assert "fw" in ORACLES and OAVI(psi=psi, tau=20.0, oracle="fw").fit(X).n_generators_ == cg.n_generators_


def test_l1_ball_bpcg_against_brute_force_minimum():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 4))
    b = A @ np.array([3.0, -2.0, 0.0, 0.0]) + 0.1 * rng.standard_normal(60)
    H, a, bb = A.T @ A, -(A.T @ b), b @ b  # f(c) = ||A c - b||^2 / m
    m, radius = 60, 2.5
    res = l1_ball_bpcg(H, a, bb, m, radius, tol=1e-10, max_iter=100_000)
    assert np.abs(res.coef).sum() <= radius + 1e-9
    f = lambda c: np.mean((A @ c - b) ** 2)
    assert res.value == pytest.approx(f(res.coef), rel=1e-9)
    # compare with the best point of a fine grid on the l1 sphere restricted to 2 coordinates
    s = np.linspace(0, radius, 2001)
    grid = [f(np.array([x, -(radius - x), 0, 0])) for x in s]
    assert res.value <= min(grid) + 1e-8
    assert np.allclose(project_l1_ball(np.array([3.0, -2.0]), 2.5), [1.75, -0.75])


def test_abm_finds_the_circle():
    psi = 0.004
    model = OAVI(psi=psi, oracle="abm").fit(noisy(circle, 0, 600))
    assert model.degrees_.min() == 2 and (model.degrees_ == 2).sum() == 1
    g = generator(model, (0, 2))
    assert coefficient(model, g, (2, 0)) == pytest.approx(1.0, abs=0.02)
    assert coefficient(model, g, (0, 0)) == pytest.approx(-1.0, abs=0.02)
    assert model.leading_coefficients_[g] == 1.0
    # every stored generator vanishes (rescaled to a leading 1 only where that keeps it so)
    assert (model.train_mse_ <= psi * (1 + 1e-9)).all()
    check_vanishing(model, circle, psi)


def test_abm_keeps_generators_vanishing_when_the_leading_coefficient_is_small():
    psi = 0.005
    X = np.random.default_rng(0).uniform(-1, 1, (300, 4))
    model = OAVI(psi=psi, oracle="abm").fit(X)
    lead = model.leading_coefficients_
    assert (model.train_mse_ <= psi * (1 + 1e-9)).all()
    assert ((lead == 1.0) | ((lead < 1) & (lead > 0))).all() and (lead < 1).any()
    np.testing.assert_allclose((model.transform(X) ** 2).mean(axis=0), model.train_mse_, rtol=1e-9)
    ihb = OAVI(psi=psi).fit(X)
    assert (ihb.leading_coefficients_ == 1.0).all()


# =========================================================== consistency
def test_transform_matches_train_mse_and_dtypes():
    X = noisy(sphere, 2, 400)
    model = OAVI(psi=0.005).fit(X)
    T = model.transform(X)
    assert isinstance(T, np.ndarray) and T.shape == (400, model.n_generators_) and (T >= 0).all()
    np.testing.assert_allclose((T**2).mean(axis=0), model.train_mse_, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model.fit_transform(X), T, rtol=1e-12, atol=1e-14)
    E = model.evaluate(X)
    np.testing.assert_allclose(np.abs(E), T)
    X64 = torch.as_tensor(X)
    out64 = model.evaluate(X64)
    assert isinstance(out64, torch.Tensor) and out64.dtype == torch.float64
    out32 = model.evaluate(X64.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=0, atol=1e-5)
    assert model.coefficients_.dtype == np.float64 and model.degrees_.dtype.kind == "i"
    assert model.O_exponents_.dtype.kind == "i" and (model.O_exponents_[0] == 0).all()
    assert model.n_features_in_ == 3 and model.fit_time_s_ > 0
    assert model.n_border_terms_ == model.O_exponents_.shape[0] - 1 + model.n_generators_


def test_devices():
    X = noisy(circle, 0, 300)
    cpu = OAVI(psi=0.004).fit(X)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        model = OAVI(psi=0.004, device=device).fit(torch.as_tensor(X))
        assert (model.O_exponents_ == cpu.O_exponents_).all()
        np.testing.assert_allclose(model.coefficients_, cpu.coefficients_, atol=1e-9)
        out = model.transform(torch.as_tensor(X, device=device))
        assert out.device.type == torch.device(device).type


# ================================================================ errors
def test_errors():
    X = noisy(circle, 0, 50)
    with pytest.raises(ValueError, match="psi"):
        OAVI(psi=0)
    with pytest.raises(ValueError, match="psi"):
        OAVI(psi=-1e-3)
    with pytest.raises(ValueError, match="'ihb', 'bpcg', 'fw', 'abm'"):
        OAVI(oracle="lasso")
    with pytest.raises(ValueError, match="tau"):
        OAVI(tau=1.5)
    with pytest.raises(ValueError, match="max_degree"):
        OAVI(max_degree=0)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        OAVI().fit(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        OAVI().fit(torch.as_tensor(bad))
    with pytest.raises(ValueError, match="empty"):
        OAVI().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="2-D"):
        OAVI().fit(X[:, 0])
    model = OAVI(psi=0.004)
    for call in (model.transform, model.evaluate):
        with pytest.raises(NotFittedError, match="not fitted"):
            call(X)
    with pytest.raises(AttributeError):
        model.generators_as_strings()
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    model.fit(X)
    with pytest.raises(ValueError, match="features"):
        model.transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="names"):
        model.generators_as_strings(names=["a"])
    assert model.generators_as_strings(names=["u", "v"])[0].startswith("v^2")


# ================================================= blocked fit and ordering
def latent_small(m=300, n=8, seed=7):
    """A small version of the benchmark's latent-like data (a smooth image of 3 latents)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(3, n)) / np.sqrt(3)
    S = rng.normal(size=(m, 3)) @ W
    return np.tanh(S + 0.3 * np.sin(S)) + 0.02 * rng.normal(size=(m, n))


def same_decisions(a, b):
    return (a.O_exponents_.shape == b.O_exponents_.shape and (a.O_exponents_ == b.O_exponents_).all()
            and a.G_leading_exponents_.shape == b.G_leading_exponents_.shape
            and (a.G_leading_exponents_ == b.G_leading_exponents_).all())


def test_border_array_matches_border():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        for _ in range(20):
            O = {(0,) * n}
            for _ in range(rng.integers(1, 12)):
                t = [0] * n
                for _ in range(rng.integers(1, 4)):
                    t[rng.integers(n)] += 1
                stack = [tuple(t)]
                while stack:
                    u = stack.pop()
                    if u not in O:
                        O.add(u)
                        stack.extend(v for v, _ in monomials.divisors(u))
            O = monomials.deglex_sort(O)
            index = {t: i for i, t in enumerate(O)}
            for d in range(1, 5):
                prev = [t for t in O if sum(t) == d - 1]
                terms, parents, variables = monomials.border(prev, index, n)
                arr = monomials.border_array(np.array(prev, dtype=np.int64).reshape(-1, n),
                                             np.array([index[t] for t in prev], dtype=np.int64), n)
                assert [tuple(r) for r in arr[0].tolist()] == terms
                assert (arr[1] == parents).all() and (arr[2] == variables).all()
                shuffled = rng.permutation(len(prev))  # the same border from terms in any order
                arr = monomials.border_array(np.array(prev, dtype=np.int64).reshape(-1, n)[shuffled],
                                             np.array([index[t] for t in prev], dtype=np.int64)[shuffled], n)
                assert [tuple(r) for r in arr[0].tolist()] == terms
                assert (arr[1] == parents).all() and (arr[2] == variables).all()


@pytest.mark.parametrize("block_size", [1, 3, 64, 128])
@pytest.mark.parametrize("tau", [1000.0, None, float("inf")])
def test_blocked_fit_matches_brute_force(block_size, tau):
    """Blocks of any size make the sequential decisions: with a loose bound, where the l1
    bound binds (default tau: sparse oracle, rejections inside a block) and without one."""
    X = latent_small()
    fast = OAVI(psi=0.005, tau=tau, max_degree=3, block_size=block_size).fit(X)
    slow = brute_force_fit(X, psi=0.005, tau=tau, max_degree=3)
    assert same_decisions(fast, slow)
    assert fast.n_border_terms_ == slow.n_border_terms_ and fast.n_bound_active_ == slow.n_bound_active_
    assert fast.n_generators_ > 20 and fast.O_exponents_.shape[0] > 20
    closed = ~fast.from_sparse_oracle_
    np.testing.assert_allclose(fast.coefficients_[closed], slow.coefficients_[closed], atol=1e-8)
    # train_mse_ from the factorisation equals the generators' mean square on the points
    np.testing.assert_allclose((fast.evaluate(X) ** 2).mean(axis=0), fast.train_mse_, rtol=1e-8, atol=1e-14)
    assert (fast.train_mse_ <= 0.005 * (1 + 1e-9)).all()
    if tau is None:
        assert fast.n_bound_active_ > 0 and fast.n_oracle_calls_ == slow.n_oracle_calls_
        assert fast.oracle_gaps_.shape == (fast.n_generators_,) and (fast.oracle_gaps_[closed] == 0).all()
        assert np.isfinite(fast.max_oracle_gap_)
        sparse = fast.from_sparse_oracle_
        assert (np.abs(fast.coefficients_[sparse]).sum(axis=1) <= fast.tau_ - 1 + 1e-9).all()


@pytest.mark.parametrize("data,psi", [("latent", 0.005), ("latent", 0.05), ("uniform", 0.005)])
def test_blocked_abm_matches_brute_force(data, psi):
    """ABM on the blocked engine (secular equation) against an SVD of ``[A, b]`` per term,
    including generators kept l2-normalised (uniform points: leading coefficient < 1)."""
    if data == "latent":
        X = latent_small(m=250, n=6, seed=3)
    else:
        X = np.random.default_rng(0).uniform(-1, 1, (300, 4))
    fast = OAVI(psi=psi, max_degree=4, oracle="abm", block_size=5).fit(X)
    slow = brute_force_fit(X, psi=psi, max_degree=4, oracle="abm")
    assert same_decisions(fast, slow) and fast.n_generators_ >= 10
    if data == "uniform":
        assert (fast.leading_coefficients_ < 1).any()
    np.testing.assert_allclose(fast.coefficients_, slow.coefficients_, atol=1e-7)
    np.testing.assert_allclose(fast.leading_coefficients_, slow.leading_coefficients_, atol=1e-9)
    np.testing.assert_allclose(fast.train_mse_, slow.train_mse_, rtol=1e-7, atol=1e-14)


def test_l1_projection_matches_a_bisection_on_the_threshold():
    rng = np.random.default_rng(3)
    for _ in range(20):
        v = rng.normal(scale=rng.uniform(0.1, 1e6), size=int(rng.integers(1, 40)))
        radius = rng.uniform(0.05, 1.5) * np.abs(v).sum()
        lo, hi = 0.0, np.abs(v).max()  # the threshold theta with ||soft(v, theta)||_1 = radius
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.maximum(np.abs(v) - mid, 0).sum() > radius else (lo, mid)
        expected = v.copy() if np.abs(v).sum() <= radius else np.sign(v) * np.maximum(np.abs(v) - hi, 0)
        np.testing.assert_allclose(project_l1_ball(v, radius), expected, rtol=1e-9, atol=1e-9 * np.abs(v).max())


def test_the_face_inverse_follows_joins_and_leaves():
    """The active set's ``H_SS^{-1}``, bordered on a join and downdated on a leave (and
    computed afresh when it reaches REFRESH_EVERY updates), stays the inverse of the
    face's block of ``H`` through a long random walk of joins and leaves."""
    from vinet_utils.oavi import _kernels

    rng = np.random.default_rng(4)
    A = rng.standard_normal((300, 40)) @ np.diag(rng.uniform(0.2, 3.0, 40))
    H = A.T @ A
    c = np.zeros(40)
    c[[3, 7, 11]] = 1.0
    support, inv, count = _kernels._new_face(H, c)
    for step in range(300):
        n = int(count[0])
        outside = np.setdiff1d(np.arange(40), support[:n])
        if n < 3 or (n < 30 and rng.random() < 0.55):
            support, inv = _kernels._face_add(H, support, inv, count, int(rng.choice(outside)))
        else:
            _kernels._face_drop(H, support, inv, count, int(rng.integers(n)))
        S = support[: count[0]]
        np.testing.assert_allclose(inv[: S.size, : S.size] @ H[np.ix_(S, S)], np.eye(S.size), atol=1e-8)
    singular = np.ones((3, 3))  # rank one: no inverse; a ridge makes one, finite
    assert np.isfinite(_kernels._inverse(singular)).all()
    np.testing.assert_allclose(_kernels._inverse(H[:5, :5]), np.linalg.inv(H[:5, :5]), rtol=1e-10)


def test_active_set_oracle_decides_like_an_accurate_solve():
    rng = np.random.default_rng(1)
    for trial in range(30):
        k, m = int(rng.integers(3, 12)), 40
        A = rng.standard_normal((m, k)) @ np.diag(rng.uniform(0.05, 2, k))
        b = A @ rng.normal(scale=3, size=k) + 0.1 * rng.standard_normal(m)
        H, a, bb = A.T @ A, -(A.T @ b), b @ b
        c_ls = np.linalg.solve(H, -a)
        radius = 0.5 * np.abs(c_ls).sum()
        best = l1_ball_bpcg(H, a, bb, m, radius, tol=1e-12, max_iter=200_000).value
        for psi in (best * 0.9, best * 1.1):
            res = l1_ball_active_set(H, a, bb, m, radius, psi, x0=project_l1_ball(c_ls, radius),
                                     residual=bb + a @ c_ls)
            assert (res.value <= psi) == (best <= psi)
            assert np.abs(res.coef).sum() <= radius * (1 + 1e-9)
            assert res.value == pytest.approx(np.mean((A @ res.coef - b) ** 2), rel=1e-9)
            assert res.certified_above == (res.value > psi)


def test_pearson_ordering_round_trip():
    """``ordering="pearson"`` fits the permuted variables and reports everything in the
    user's order: the same as a deglex fit of the permuted columns, mapped back."""
    X = latent_small(m=300, n=6, seed=11)
    X = X * np.array([1.0, 0.3, 1.0, 0.5, 1.0, 0.8])  # make the correlation sums distinct
    perm = pearson_order(X)
    assert sorted(perm.tolist()) == list(range(6))
    model = OAVI(psi=0.005, max_degree=3, ordering="pearson").fit(X)
    direct = OAVI(psi=0.005, max_degree=3).fit(X[:, perm])
    assert (model.variable_order_ == perm).all()
    assert (model.O_exponents_[:, perm] == direct.O_exponents_).all()
    assert (model.G_leading_exponents_[:, perm] == direct.G_leading_exponents_).all()
    np.testing.assert_allclose(model.coefficients_, direct.coefficients_, atol=1e-10)
    np.testing.assert_allclose(model.transform(X), direct.transform(X[:, perm]), atol=1e-10)
    names = [f"v{i}" for i in range(6)]
    for text, lead in zip(model.generators_as_strings(names), model.G_leading_exponents_):
        assert text.split(" ")[0] == monomials.term_to_string(lead, names)
    assert (model.degrees_ == direct.degrees_).all()
    # variables that correlate least with the others come first
    C = np.abs(np.corrcoef(X, rowvar=False))
    np.fill_diagonal(C, 0)
    assert (np.diff(C.sum(axis=1)[perm]) >= -1e-12).all()


def test_pearson_orderings_follow_the_reference_implementation():
    """The reference (avi_at_scale, term_ordering_strategies) sorts the columns by
    increasing sum of absolute Pearson correlation coefficients ("pearson") and offers
    the decreasing order as "rev pearson". Expected orders from numpy's corrcoef (its
    diagonal adds 1 to every sum, which changes no order)."""
    X = latent_small(m=300, n=6, seed=11) * np.array([1.0, 0.3, 1.0, 0.5, 1.0, 0.8])
    X[:, 4] += np.random.default_rng(0).normal(size=300)  # one weakly correlated variable
    score = np.abs(np.corrcoef(X, rowvar=False)).sum(axis=1)
    assert np.diff(np.sort(score)).min() > 1e-6  # no near ties
    increasing = np.argsort(score, kind="stable").tolist()
    assert increasing[0] == 4
    assert pearson_order(X).tolist() == increasing
    assert pearson_order(X, reverse=True).tolist() == increasing[::-1]
    for ordering, expected in [("pearson", increasing), ("rev_pearson", increasing[::-1]), ("deglex", list(range(6)))]:
        model = OAVI(psi=0.01, max_degree=2, ordering=ordering).fit(X)
        assert model.variable_order_.tolist() == expected
        direct = OAVI(psi=0.01, max_degree=2).fit(X[:, expected])
        assert (model.G_leading_exponents_[:, expected] == direct.G_leading_exponents_).all()


def test_pearson_order_on_correlations_worked_by_hand():
    """x = (1, -1, 1, -1) and y = (1, 1, -1, -1) are centred, orthogonal and of equal
    norm; z = x + 2y. So |corr(x, y)| = 0, |corr(x, z)| = 1/sqrt(5), |corr(y, z)| =
    2/sqrt(5), and the sums over the other columns are x: 1/sqrt(5) (0.45), y: 2/sqrt(5)
    (0.89), z: 3/sqrt(5) (1.34). With the columns stored as (z, x, y), increasing sums
    give the order (1, 2, 0), decreasing (0, 2, 1)."""
    x, y = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1])
    X = np.c_[x + 2 * y, x, y]
    assert pearson_order(X).tolist() == [1, 2, 0]
    assert pearson_order(X, reverse=True).tolist() == [0, 2, 1]
    assert OAVI(psi=0.01, max_degree=1, ordering="pearson").fit(X).variable_order_.tolist() == [1, 2, 0]
    assert OAVI(psi=0.01, max_degree=1, ordering="rev_pearson").fit(X).variable_order_.tolist() == [0, 2, 1]


def test_pearson_order_keeps_its_digits_where_the_means_dwarf_the_spread():
    """The ordering takes the centred Gram matrix as ``X^T X - m mean mean^T``; where a variable's
    spread is small against its mean that difference would lose its digits, and the points are
    centred first. Shifted far from the origin, or with a constant variable added, the data
    get the order numpy's corrcoef gives the unshifted data."""
    X = latent_small(m=300, n=5, seed=3) * np.array([1.0, 0.4, 1.0, 0.7, 1.0])
    X[:, 2] += np.random.default_rng(1).normal(size=300)
    score = np.abs(np.corrcoef(X, rowvar=False)).sum(axis=1)
    assert np.diff(np.sort(score)).min() > 1e-6  # no near ties
    expected = np.argsort(score, kind="stable").tolist()
    assert pearson_order(X).tolist() == expected
    assert pearson_order(X + 1e7).tolist() == expected  # the shortcut alone would order noise here
    with_constant = np.c_[X, np.full(300, 0.1)]  # a constant variable counts as uncorrelated: first
    assert pearson_order(with_constant).tolist() == [5, *expected]


def test_permuted_points_are_laid_out_as_the_engine_reads_them():
    """The points with their variables permuted come back transposed in memory (``.T``
    contiguous), equal to indexing the columns, from C- and F-ordered input alike."""
    from vinet_utils.oavi.order import permuted

    X = np.random.default_rng(2).normal(size=(50, 4))
    perm = np.array([2, 0, 3, 1])
    for points in (X, np.asfortranarray(X)):
        out = permuted(torch.from_numpy(points), perm)
        assert out.T.is_contiguous() and out.shape == (50, 4)
        np.testing.assert_array_equal(out.numpy(), X[:, perm])


def test_a_block_where_no_term_may_join_O_makes_its_residuals_only_when_asked():
    """A block whose terms all lie within psi of the span of O is projected without its
    residuals: their squared norms come from ``||u||^2 - ||p||^2``, within the rounding band of
    the explicit ones, and :meth:`residuals` makes the residuals the eager projection makes.
    One term far from the span, and the block makes them at once."""
    from vinet_utils.oavi.arrays import row_norms2
    from vinet_utils.oavi.basis import QRBasis
    from vinet_utils.oavi.linalg import BorderBlock

    rng = np.random.default_rng(4)
    m, k, b = 500, 6, 10
    A = np.c_[np.ones(m), rng.normal(size=(m, k - 1))]
    Q, R = np.linalg.qr(A)
    basis = QRBasis.of_constant(np.zeros((1, m)), capacity=k + b)
    basis.Qt[:k], basis.Et[:k], basis.R[:k, :k], basis.size = Q.T, A.T, R, k
    threshold = 0.005 * m
    near = A @ rng.normal(size=(k, b)) + 0.01 * rng.normal(size=(m, b))  # mean squared residual ~1e-4
    Bt = np.ascontiguousarray(near.T)
    block = BorderBlock.project(basis, Bt, row_norms2(Bt), 0, threshold)
    assert block.Wt is None
    explicit = Bt - (Q.T @ near).T @ Q.T
    np.testing.assert_allclose(block.residuals(), explicit, atol=1e-12)
    assert np.abs(block.w_norm2 - row_norms2(explicit)).max() <= block.band * block.bb.max()
    np.testing.assert_allclose(block.C[:k], -np.linalg.solve(R, Q.T @ near), atol=1e-9)
    Bt[3] = rng.normal(size=m) * 3  # far from the span: this term may join O
    eager = BorderBlock.project(basis, Bt, row_norms2(Bt), 0, threshold)
    assert eager.Wt is not None and eager.twice[3] and not eager.twice[[0, 1, 2]].any()


def test_sphere_generator_under_pearson_ordering():
    X = noisy(sphere, 0, 1000)[:, [2, 0, 1]]
    model = OAVI(psi=0.005, ordering="pearson").fit(X)
    low = np.flatnonzero(model.degrees_ == 2)
    assert low.size == 1
    g = int(low[0])
    lead = tuple(model.G_leading_exponents_[g])
    assert sum(lead) == 2 and max(lead) == 2
    for term in [(2, 0, 0), (0, 2, 0), (0, 0, 2)]:
        if term != lead:
            assert coefficient(model, g, term) == pytest.approx(1.0, abs=0.03)
    assert coefficient(model, g, (0, 0, 0)) == pytest.approx(-1.0, abs=0.03)
    check_vanishing(model, lambda rng, m: sphere(rng, m)[:, [2, 0, 1]], 0.005)


def test_threads_restored_and_pickle_round_trip():
    import pickle

    before = torch.get_num_threads()
    X = latent_small(m=200, n=4)
    model = OAVI(psi=0.01, max_degree=3, threads=1).fit(X)
    assert torch.get_num_threads() == before and model.n_threads_ == 1
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(clone.transform(X), model.transform(X))


# Pickles written before vinet_utils.oavi became a package, each a fit of
# OAVI(psi=0.01, max_degree=3) to 40 noisy points of the unit circle (zlib, base64):
# V1_PICKLE by the single-module oavi.py just before the package (state version 1, with its
# evaluator's tensors), V0_PICKLE by its first release (closure evaluator, no ordering,
# block_size or threads parameters, no oracle gaps).
V0_PICKLE = (
    "eNrlV81vG0UU9+76q3YSTJsguCEhwEXCJI7jGilSQpISwdK0FIlaQmW03h17B613vbuzbpMSKUgkraOROGSACxJSxYETQsANiUiI"
    "/wCuCDjChRyphARvd+34o3abRlxC5+C137x5897vvd973q3oh99nIsFimSYxMUUeJYabs5Qm4Sx68aU3X+F7/Ox7fJNnmdRwCV9d"
    "eH/jt9UvJm+wVF25jjRcczDmssQkqnh8jcUtR1ENzJlE9ApncQ03iYphI6bR9QbIY9RyVJ2zRNWwFFosgH0WV2uIWgZopeGbb5dQ"
    "7PALmWdZsuFYcIXr8haLI5cq1A2ciVcsRwMdOcHGKpZnakhRKWmCKxE2FvqAVMUwXF/waFvgW1UoscxAmm5LKaljvhppL49NmKiK"
    "FerBrYiYiMsii0JwiK8uTi6GYCXCsFA3nE6gEI2kNjy+zS9zNnYR4esNy8QmdUH3MdOrN9ZzSLUcnKt7BiWK4yjroIccrIJX1PFU"
    "6puIBZoAkqmFKnvg8DZfFir8JhjOyoKckMUdrj/TwRUOiaTEW7fCfYkJ83xtbe3Vf2AFH3KE8kpruREZWEJk+OrIxRHyzlMa2BcH"
    "9jlcyyZXkYEVjZi1XkD0p/WsH5b+XCcoIQgq31rODJoLzIyrFq5WiUpGn0/A+ReYWO2BQp8dBkSp9tVHP+6nD/bvfLdU2OVv7f/6"
    "86ffPP/Byv6V3T+ubfz150L24xs/vd3aWBgEJvBkqhPOfT2CH+dby8nw7MFCGIeJatj0a9Fy4JQssDNVx6ojt6E4LkbtuhxhDaKr"
    "zPQm+t2hiRZCR5MhQ0f6Blgn+zB+xEQhtRCQpe57lwhlXY4hnz0g66VZIJs8lHWZFmxM9FANgeiQbexMt4sACRRVxxry20kMNQzF"
    "5Gyqty3VLdOqEwVIzSbONxXDC6645CsedqlThwU2JOJkp762/msaDNbrkWiRsKpVFw/1NBbmJhsZQbd4+5nsswf1MyJycbufV73V"
    "fLe2FGo/PgqN4afudcdNzk41FYcoFQMfxT/hgfwTjuWf0O9fwvUaDcuhw+omPLk4qio6WYkOZCfRfsZ6bvIqTERXoOkHkyMXljZn"
    "p6H8Kx4xNOCd6VoOauahqLNsPFRz4aHUYH5mEMxNDQX9orJOAcw9vjQPDm2Juynj709evvPkO59feiK3JV74XYLPTTuSLfshwyCl"
    "lmoZqIkdF2hjC6BQHocdg1AK5MSmRhTTFm+VUyD0pwpyyQZ2bWnTjmbLfgyuDvjYMVks+xETk9pxOVr2ozYss2Yn5KjnwZ3Zsh94"
    "22U7ogYhpFYsD5L/RihN2UJ5ApReLMzOzM3NFfKlc8XZvB0ahgFqS3JyjdrR18HcVTsyTFdQcp3qf7BefnB3T/fHtRyB/iDscL8z"
    "7sDfjTSAZWA1/L/A0hf9poi1FRKM6LOXIZcw4pOow7mrPKt/mdW/XkqdhGS8BiojUzFbLE33pUIcnYpAF1IhjmigHWiBfP7Aaenf"
    "tqELwTp94sGaKxYLfWBJo8EKdAEs6T7TpgOaNBy0k19hxWK+cNQKC3SPU2GYpVB35vyP+HlupnRk9ALdIegJDwc/pwuF2ekj8rOt"
    "O4SfwsPGz/xcvnTUCgt0j1NhwE/qKPCKXXfxvd6dbl/L/PDZL1Phu1O6Smj3PWLh9sFTG/Pw1l7J/QutIbvL"
)
V1_PICKLE = (
    "eNrll89v40QUx20nTar0V9htkbixCEFWiNCmSZpKiHa3FRWYbdmCIBJaRo49iQ2OHdvjbNulUhfRZVMN4rADXJC4IMSJA+JeIfEH"
    "IMEZxBEktHsECQmePc4mjZJu6K1dH+LkzfObN5/5vhfPXvyTF84J4UXTTcPCBPnEML2srTQNRuMbl954id1hF2+yXZahsYZnsLWl"
    "D3Z+W/tm+gZN1ZUtpOGaizGTYzRGFJ+t04TtKqqJGY0ZeoXRhIabhophYEQj2w2wjxDbVXVGk1XTVkgxD/FpQq0hYpvgNQbfgrgG"
    "wS67kn6ajjZcG6bwPNaio7arYdewamHcmom3GE1VTFt9F3nGDmSxTJNEd7GieRAqZaHoB2KySBPIIwrxwpUkKmEkJifpeMX2LQ0p"
    "KjGaEEGg43wBSFVM0wsMj0SGICWFGLYVWsciKzHqmK0J0eXTqabiGkoFRsIpEKOPWn69sZ1Fqu3ibN03iaG4rrLN6DhysQrhiOur"
    "JMAwEnoCGkvjLndgpn22IlbYh2yTZWRRlvaZ/kSbJTwiGSXWus1HY1R8nq2vr7/8L1zhhywQVmmtpNvpidGdgZmObyC81bAtbBEg"
    "pF/Qnwwm059qT5WUpVtMz7ZWGkLPJQr9r7ZdGmBv32M941K/9KbXkAmbB7t9fJpiO810b7gwzKSFqlghPkgIGRYoQaJxUCpia8vT"
    "y1z5Sa5R1NFmW7UAOKY2fLYPc9EJ1cbVqqEagzNJQibPUKnatSf6c/12pFT79tOfDsfuHV76/nL+gL11ePeXL7579uPVwzcP/ri+"
    "89fdpZnPbvz8dmtnqRdxuKaZNpgHZgQ/rrZWRvmz95bCpycsVMNWoGXb5aVxvuradeQ1FNcLZBvqekA0WF1lrltx7/VVnBhJLApW"
    "UxpD5Betbiqo/86DqFNddJS3m4GxQAWjR3Z/ykK81BEUbz1YbZLbOjWPgmoGW3fZh7bp+7ZO5YcDk12lj7zu/M53WiLUtqLqWENB"
    "b0yhDQR0g21i16D/jIc6y/Jmy+g5cK74hqlBlpZnu6iZA+ll6AR38+Cm1KB1phG0TA2Fu1XZJtgDr8spqJo96SBl/vP5i38//s7X"
    "rz6W3ZOu/B6Dz11HyJSDsoAeSmzVNlETux6swxHBoTwBI6ZBCCwFW5qhWI50u5wCY9Bcwo7qObFdJ54pj4DR022XOCOyVA7K17CI"
    "k5Dj5XgQw7ZqTlKO+z7MmSknA2eesiOo4RJSr4DLa9yWcsTyJLgs5mfnioVCqTCfK8zlHB4Wis2JydI6ceJXIdg1R+jnKypZaUAL"
    "CktVFoI+GSiiBX8otmlilfdtOrYRiAFrq0bYcS9ugko2mf5+Rt8//SBLhdn87JAgue//AKl/dLZgwX2hOCQs7nsSWBj+5DdQ+5Ug"
    "LP4zwm9+MTc3LD/u24ef+JCIbX4htzg0rND3IYZVKORKw7Yx7nsSWEFlBq9R0f9yBE86/Uorzh6FJx6jtMAX4PW+t7ehib3Q6CRn"
    "1m5oZ4VacWFuvjgkNe7bRU18ILUUpxa8rUfE4qeB2Krtwx4PZFYsDa007tvF7P6BZCCzOFpBr0e08qef1nwpny8doZUcXJehL9BK"
    "RpxOfFiM6CZl8Rbjx9NuVRJXgRNx3cPHHc2+up7+4ctfZ/jRcaxqkM6xZ+nmhd0/fxQEv5L9D3jkabg="
)


def direct_values(model, X):
    """The generators evaluated term by term from the fitted arrays."""
    power = lambda e: np.prod(X ** np.asarray(e), axis=1)
    O = np.stack([power(t) for t in model.O_exponents_], axis=1)
    U = np.stack([power(u) for u in model.G_leading_exponents_], axis=1)
    return U * model.leading_coefficients_ + O @ model.coefficients_.T


@pytest.mark.parametrize("blob", [V0_PICKLE, V1_PICKLE], ids=["first-release", "single-module"])
def test_pickles_of_earlier_versions_load(blob):
    import base64
    import pickle
    import zlib

    model = pickle.loads(zlib.decompress(base64.b64decode("".join(blob))))
    assert type(model) is OAVI and model.ordering == "deglex" and model.block_size == 64
    assert (model.variable_order_ == [0, 1]).all() and model.n_generators_ == 1
    assert not {"_stats", "_W", "_plan", "_O_parents", "_C_T"} & set(vars(model))
    X = np.random.default_rng(0).uniform(-1.5, 1.5, (30, 2))
    np.testing.assert_allclose(model.evaluate(X), direct_values(model, X), rtol=1e-12, atol=1e-12)
    assert model.generators_as_strings()[0].startswith("x1^2")
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.transform(X), model.transform(X))


def test_pickle_state_from_a_newer_version_is_refused():
    state = OAVI(psi=0.01).__getstate__()
    assert state["_state_version"] == 2
    state["_state_version"] = 3
    with pytest.raises(ValueError, match="state version 3"):
        OAVI.__new__(OAVI).__setstate__(state)


@pytest.mark.parametrize("tau,allowed", [(1.5, False), (2, True), (2.0, True), (float("inf"), True), (None, True),
                                         (1.0, False), (float("nan"), False), (True, False), ("3", False),
                                         (1e13, True)])
def test_one_tau_rule_for_oavi_and_the_run_parameters(tau, allowed):
    """A run's up-front parameter check (params.validate) and OAVI accept the same tau."""
    from vinet_utils.workflow import params

    def accepts(call):
        try:
            call()
        except ValueError as err:
            assert "tau" in str(err)
            return False
        return True

    assert accepts(lambda: params.validate(tau=tau)) is allowed
    assert accepts(lambda: OAVI(tau=tau)) is allowed
    assert accepts(lambda: check_tau("tau", tau)) is allowed

def test_new_parameter_errors_name_the_parameter():
    with pytest.raises(ValueError, match="ordering"):
        OAVI(ordering="random")
    with pytest.raises(ValueError, match="block_size"):
        OAVI(block_size=0)
    with pytest.raises(ValueError, match="threads"):
        OAVI(threads=0)
    with pytest.raises(ValueError, match="cg_max_iter"):
        OAVI(cg_max_iter=0)


# ============================================================= benchmark
def test_benchmark_cli_smoke(tmp_path):
    import json

    from vinet_utils.experiments import bench

    out = tmp_path / "oavi.json"
    assert bench.main(["oavi", "--classes", "2", "--points", "150", "--dim", "6", "--latent-dim", "2",
                       "--cases", "none", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["summary"]["identical_decisions"] is True
    assert len(result["per_class"]) == 2 and result["parameters"]["dim"] == 6
    assert {"torch_version", "torch_threads", "device", "git_commit", "wall_time_s"} <= set(result["metadata"])
    X = bench.variety_sample(np.random.default_rng(0), 50, 6, 2, 2, 0.0)
    assert X.shape == (50, 6) and np.allclose(X.min(axis=0), -1) and np.allclose(X.max(axis=0), 1)


def test_benchmark_ab_against_a_commit(tmp_path):
    """``bench oavi-ab`` runs each side's own code (the baseline from ``git archive``) and
    reports the median ratio it measured."""
    import json
    import subprocess

    from vinet_utils.experiments import bench
    from vinet_utils.common.results import REPO_ROOT

    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    out = tmp_path / "ab.json"
    assert bench.main(["--threads", "1", "oavi-ab", "--baseline", "HEAD", "--cases", "ABM_L32", "--rounds", "2",
                       "--repeats", "1", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["cases"]["ABM_L32"]
    assert len(row["baseline_rounds_s"]) == len(row["current_rounds_s"]) == 2
    assert row["current_fastest_s"] == min(min(r) for r in row["current_rounds_s"])
    assert row["baseline_median_s"] == pytest.approx(np.median([np.median(r) for r in row["baseline_rounds_s"]]))
    assert row["ratio"] == pytest.approx(row["current_fastest_s"] / row["baseline_fastest_s"])
    assert row["slower"] == (row["ratio"] > bench.AB_SLOWER)


@pytest.mark.parametrize("oracle,tau", [("ihb", 1000.0), ("ihb", None), ("abm", None)])
def test_the_torch_engine_makes_the_numpy_engines_decisions(oracle, tau):
    """On the CPU the blocked fit runs on numpy arrays; on other devices on torch tensors.
    The torch path, run here on the CPU, makes the same decisions with the same coefficients."""
    from vinet_utils.oavi.linalg import BlockedEngine

    X = latent_small(m=300, n=6, seed=5)
    host = OAVI(psi=0.005, tau=tau, max_degree=3, oracle=oracle, block_size=7).fit(X)
    on_torch = OAVI(psi=0.005, tau=tau, max_degree=3, oracle=oracle, block_size=7).fit_with(
        X, lambda points: BlockedEngine.for_points(points, 0.005, 7, host=False))
    assert same_decisions(host, on_torch) and host.n_generators_ >= 10
    # closed-form generators agree to rounding; the sparse oracle stops at the first feasible
    # point, so its generators only have to vanish within the l1 ball on both paths
    closed = ~host.from_sparse_oracle_
    assert (closed == ~on_torch.from_sparse_oracle_).all() and closed.any()
    np.testing.assert_allclose(host.coefficients_[closed], on_torch.coefficients_[closed], atol=1e-9)
    np.testing.assert_allclose(host.train_mse_[closed], on_torch.train_mse_[closed], rtol=1e-9, atol=1e-15)
    for fit in (host, on_torch):
        assert (fit.train_mse_ <= 0.005 * (1 + 1e-9)).all()
        assert (np.abs(fit.coefficients_[~closed]).sum(axis=1) <= fit.tau_ - 1 + 1e-9).all()


def test_abm_eigenpairs_grown_a_column_at_a_time_match_a_fresh_decomposition():
    """ABM's eigenpairs of ``A^T A``, grown a column at a time, agree with numpy's decomposition
    of the whole matrix: the same eigenvalues to rounding, orthonormal vectors that rebuild the
    matrix, also where ``A`` has nearly dependent columns (mixtures of others plus small noise)."""
    from vinet_utils.oavi._kernels import eigen_grow

    rng = np.random.default_rng(5)
    m = 800
    base = rng.normal(size=(m, 20))
    A = np.c_[np.ones(m), base, base @ rng.normal(size=(20, 15)) + 1e-3 * rng.normal(size=(m, 15))]
    H = A.T @ A
    lam, V, grown = eigen_grow(np.array([H[0, 0]]), np.ones((1, 1)), H)
    expected = np.linalg.eigvalsh(H)
    assert grown == 1 and expected[0] < 1e-6 * expected[-1]  # a wide spread of eigenvalues
    np.testing.assert_allclose(lam, expected, rtol=1e-9, atol=1e-12 * expected[-1])
    np.testing.assert_allclose(V.T @ V, np.eye(H.shape[0]), atol=1e-12)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.T, H, atol=1e-12 * expected[-1])


def test_abm_eigenpairs_are_decomposed_afresh_where_growing_needs_deflation():
    """A new column orthogonal to an eigenvector of the old matrix, or a repeated eigenvalue,
    leaves an eigenvalue of the old matrix in the new one: growing declines (it would need
    deflation), and the basis decomposes the matrix afresh, with the same answer."""
    from vinet_utils.oavi._kernels import eigen_grow
    from vinet_utils.oavi.basis import QRBasis

    lam, V = np.array([1.0, 2.0, 4.0]), np.eye(3)
    orthogonal = np.array([[1, 0, 0, 0.5], [0, 2, 0, 0], [0, 0, 4, 0.3], [0.5, 0, 0.3, 3]])
    repeated = np.array([[1, 0, 0, 0.5], [0, 2, 0, 0.2], [0, 0, 2, 0.3], [0.5, 0.2, 0.3, 3]])
    assert eigen_grow(lam, V, orthogonal)[2] == 0
    assert eigen_grow(np.array([1.0, 2.0, 2.0]), V, repeated)[2] == 0
    for H in (orthogonal, repeated):
        R = np.linalg.cholesky(H).T  # H = R^T R, as the basis keeps it
        basis = QRBasis.of_constant(np.zeros((1, 4)))
        basis.R, basis.gram_matrix, basis.gram_size = R, np.zeros((4, 4)), 0
        basis.eigh(3)
        lam4, V4 = basis.eigh(4)
        np.testing.assert_allclose(lam4, np.linalg.eigvalsh(H), atol=1e-12)
        np.testing.assert_allclose(V4 @ np.diag(lam4) @ V4.T, H, atol=1e-12)


def _engine_fit(X, **kw):
    """The fit by the degree loop with the blocked engine, the Gram path of small fits skipped."""
    from vinet_utils.oavi.linalg import BlockedEngine

    model = OAVI(**kw)
    return model.fit_with(X, lambda p: BlockedEngine.for_points(p, float(model.psi), model.block_size))


@pytest.mark.parametrize("data, kw", [
    ("tabular", dict(psi=0.005, tau=1000.0, max_degree=10, ordering="pearson")),
    ("tabular", dict(psi=0.1)),
    ("sphere", dict(psi=0.005, max_degree=4, tau=float("inf"))),
])
def test_the_gram_path_decides_small_fits_as_the_blocked_engine_does(data, kw):
    """Thousands of points in a few variables: the Gram path of small fits decides the whole
    fit (``fit_path_``), with the blocked engine's O and G, coefficients and mean squared
    values to rounding, and brute force's decisions."""
    from vinet_utils.experiments.bench import two_class_tabular

    X = two_class_tabular(points=3000) if data == "tabular" else sphere(np.random.default_rng(3), 2000)
    fast, engine = OAVI(**kw).fit(X), _engine_fit(X, **kw)
    assert (fast.fit_path_, engine.fit_path_) == ("gram", "engine")
    assert same_decisions(fast, engine) and fast.n_generators_ > 0
    np.testing.assert_allclose(fast.coefficients_, engine.coefficients_, atol=1e-9)
    np.testing.assert_allclose(fast.train_mse_, engine.train_mse_, rtol=1e-8, atol=1e-15)
    np.testing.assert_array_equal(fast.variable_order_, engine.variable_order_)
    assert fast.n_border_terms_ == engine.n_border_terms_
    assert fast.max_degree_reached_ == engine.max_degree_reached_
    if "ordering" not in kw:  # brute force fits in the user's variable order
        assert same_decisions(fast, brute_force_fit(X, **kw))
    np.testing.assert_allclose(fast.transform(X[:50]), engine.transform(X[:50]), atol=1e-9)


def test_the_gram_path_hands_back_what_it_cannot_decide():
    """The Gram path hands the fit to the blocked engine, which fits from the start, where
    the l1 bound binds (the sparse oracle decides), where O and a border outgrow it, where
    the points are too few, and for the other oracles: the fits are the engine's."""
    from vinet_utils.experiments.bench import two_class_tabular

    tabular = two_class_tabular(points=3000)
    cases = [(tabular, dict(psi=0.005, tau=2.0, max_degree=3)),  # the l1 bound binds
             (latent_small(m=2000, n=16), dict(psi=0.005, max_degree=3)),  # |O| + border > 64
             (tabular[:500], dict(psi=0.005, max_degree=3)),  # too few points
             (tabular, dict(psi=0.005, max_degree=3, oracle="abm"))]
    for X, kw in cases:
        fit, engine = OAVI(**kw).fit(X), _engine_fit(X, **kw)
        assert fit.fit_path_ == "engine"
        assert same_decisions(fit, engine)
        np.testing.assert_array_equal(fit.coefficients_, engine.coefficients_)
    assert OAVI(psi=0.005, tau=2.0, max_degree=3).fit(tabular).n_bound_active_ > 0


def test_the_gram_path_holds_only_the_rows_a_fit_needs():
    """On many points in few variables the Gram path keeps O's and a border's values only:
    its buffer grows with the fit, not to the most terms it could take."""
    from vinet_utils.oavi.arrays import shared_workspace

    X = np.random.default_rng(0).uniform(size=(20_000, 3))
    shared_workspace().buffers.pop("gram evaluations", None)
    fit = OAVI(psi=0.01, max_degree=3).fit(X)
    held = shared_workspace().buffers["gram evaluations"].shape[0]
    assert fit.fit_path_ == "gram" and held < 16 and held >= fit.O_exponents_.shape[0]


def test_gram_decisions_agree_with_least_squares():
    """One degree decided from inner products alone: each term's squared residual against O
    (including the terms of the degree that joined it before) and its coefficients are those
    of a least-squares solve on the evaluations themselves."""
    from vinet_utils.oavi._kernels import gram_decide, gram_project

    rng = np.random.default_rng(6)
    m, k0 = 400, 4
    A = np.c_[np.ones(m), rng.normal(size=(m, k0 - 1))].T  # O's evaluations, a term a row
    B = np.vstack([rng.normal(size=m), A[1] * 2 - A[2] + 0.01 * rng.normal(size=m), rng.normal(size=m),
                   A[1] + 0.02 * rng.normal(size=m)])
    threshold = 0.005 * m
    L = np.zeros((12, 12))
    L[:k0, :k0] = np.linalg.cholesky(A @ A.T)
    outcome, C, res2, P = np.zeros(4, np.int8), np.zeros((12, 4)), np.zeros(4), np.zeros((12, 4))
    gram_project(L, k0, A @ B.T, P)
    k, status = gram_decide(L, k0, P, B @ B.T, np.arange(4), (B * B).sum(1), threshold, 1e-10, np.inf, outcome, C,
                            res2)
    assert (k, status) == (k0 + 2, 0) and outcome.tolist() == [1, 2, 1, 2]
    rows = A
    for j in range(4):
        c, *_ = np.linalg.lstsq(rows.T, -B[j], rcond=None)
        r2 = float(((rows.T @ c + B[j]) ** 2).sum())
        if outcome[j] == 2:
            np.testing.assert_allclose(C[: rows.shape[0], j], c, atol=1e-9)
            assert res2[j] == pytest.approx(r2, rel=1e-9)
        else:
            assert r2 > threshold
            rows = np.vstack([rows, B[j]])
    np.testing.assert_allclose(L[:k, :k] @ L[:k, :k].T, rows @ rows.T, rtol=1e-10)


def test_the_abm_screen_answers_as_one_term_at_a_time():
    """The block-wide ABM screen (secular equation for many terms against one A) gives each
    term the decision, singular value and vector of the one-term solver."""
    from vinet_utils.oavi.secular import secular_screen, secular_singular_pair

    rng = np.random.default_rng(11)
    m, k, n = 400, 9, 40
    A = np.c_[np.ones(m), rng.normal(size=(m, k - 1))]
    Q, R = np.linalg.qr(A)
    B = A @ rng.normal(size=(k, n)) + rng.normal(size=(m, n)) * rng.uniform(0.01, 0.4, n)
    P = Q.T @ B
    C = -np.linalg.solve(R, P)
    rho2 = ((B - Q @ P) ** 2).sum(0)
    threshold = 0.005 * m
    eigen = np.linalg.eigh(R.T @ R)
    screen = secular_screen(eigen, C, rho2, threshold)
    assert screen["settled"].all() and 0 < screen["vanishes"].sum() < n
    for j in range(n):
        one = secular_singular_pair(eigen, R, C[:, j], rho2[j], P[:, j], threshold)
        assert (one is not None) == screen["vanishes"][j]
        if one is not None:
            assert one[0] == pytest.approx(screen["sigma2"][j], rel=1e-10, abs=1e-12)
            np.testing.assert_allclose(screen["v"][j], one[1], atol=1e-10)
            _, sv, _ = np.linalg.svd(np.c_[A, B[:, j]])  # against the SVD of [A, b] itself
            assert sv[-1] ** 2 == pytest.approx(one[0], rel=1e-8)
    # the screen as the fit asks for it: pairs only up to the first term that may join O
    first_kept = int(np.flatnonzero(~screen["vanishes"])[0])
    short = secular_screen(eigen, C, rho2, threshold, upto_first_kept=True)
    assert short["stop"] == first_kept + 1 and screen["stop"] == n
    np.testing.assert_array_equal(short["vanishes"], screen["vanishes"])
    np.testing.assert_array_equal(short["sigma2"][: first_kept + 1], screen["sigma2"][: first_kept + 1])
    np.testing.assert_allclose(short["v"][: first_kept + 1], screen["v"][: first_kept + 1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("loadavg,busy", [("2.31 2.36 2.11 3/115 31881", 2.0), ("0.99 0.8 0.5 1/100 7", 0.0),
                                          ("0.20 0.1 0.1 4/100 7", 0.2)])
def test_threads_count_only_the_cores_other_processes_hold(loadavg, busy):
    """A fit's own minute of work raises the load average; cores count as busy only while
    other threads run now as well."""
    from vinet_utils.oavi.threads import busy_elsewhere

    assert busy_elsewhere(loadavg) == pytest.approx(busy)


def test_threads_of_this_process_are_not_load_elsewhere():
    """A BLAS thread of this process still running counts as this process's, not as a core
    another process holds: the next fit may take it."""
    import threading

    from vinet_utils.oavi.threads import busy_elsewhere, running_threads_here

    assert busy_elsewhere("1.90 1.5 1.2 3/115 31881", own_running=2) == 0.0
    assert busy_elsewhere("1.90 1.5 1.2 3/115 31881", own_running=1) == pytest.approx(1.0)
    stop, A = threading.Event(), np.random.default_rng(0).normal(size=(400, 400))

    def work():  # numpy releases the GIL in its products: this thread runs beside the test
        while not stop.is_set():
            A @ A

    worker = threading.Thread(target=work)
    worker.start()
    try:
        seen = max(running_threads_here() for _ in range(200))
    finally:
        stop.set()
        worker.join()
    assert seen >= 1


def test_threaded_products_make_the_one_thread_decisions(monkeypatch):
    """A block's large products on two BLAS threads (the rest of the fit on one) decide as
    the fit on one thread does."""
    from vinet_utils.oavi import linalg

    X = latent_small(m=300, n=6, seed=5)
    one = OAVI(psi=0.005, tau=1000.0, max_degree=3, block_size=7, threads=1).fit(X)
    monkeypatch.setattr(linalg, "THREADED_PRODUCT", 1)
    two = OAVI(psi=0.005, tau=1000.0, max_degree=3, block_size=7, threads=2).fit(X)
    assert two.n_threads_ == 2 and same_decisions(one, two) and one.n_generators_ >= 10
    np.testing.assert_allclose(one.coefficients_, two.coefficients_, atol=1e-9)


def test_more_o_terms_than_points_keeps_the_sparse_oracle_bounded():
    """At the papers' default tau the l1 bound sends terms to O that are linearly dependent
    on it, so |O| exceeds the number of points and new basis columns are rounding noise.
    The blocked fit must still hand the sparse oracle a consistent Gram matrix: it needs no
    more oracle iterations than the brute-force reference, which solves every term afresh
    (updating a block through ``u^T q`` instead of ``w^T q`` made it run 9x as many)."""
    from vinet_utils.experiments.oavi_peer import CASES

    X = CASES["L32_default_tau"][0]()[:60]
    fast = OAVI(psi=0.005, tau=None, max_degree=2, threads=1).fit(X)
    slow = brute_force_fit(X, psi=0.005, tau=None, max_degree=2)
    assert fast.O_exponents_.shape[0] > X.shape[0] and fast.n_oracle_calls_ > 100
    assert fast.n_oracle_iterations_ <= slow.n_oracle_iterations_


def test_a_workspace_keeps_its_rows_and_grows():
    """A workspace hands out the same memory while it fits, keeps the rows asked to be kept
    when it grows, gives other array kinds new arrays, and drops everything past its budget."""
    from vinet_utils.oavi.arrays import Workspace

    work, like = Workspace(), np.zeros((0, 5))
    a = work.rows("x", like, 3)
    a[:] = np.arange(15.0).reshape(3, 5)
    assert np.shares_memory(work.rows("x", like, 2), a)
    grown = work.rows("x", like, 7, keep=3)
    assert grown.shape == (7, 5) and not np.shares_memory(grown, a)
    np.testing.assert_array_equal(grown[:3], np.arange(15.0).reshape(3, 5))
    assert work.rows("x", np.zeros((0, 4)), 2).shape == (2, 4)  # another row length: a new buffer
    on_torch = work.rows("y", torch.zeros(0, 5), 2)
    assert isinstance(on_torch, torch.Tensor) and on_torch.shape == (2, 5)
    work.trim(work.nbytes)
    assert work.buffers
    work.trim(work.nbytes - 1)
    assert not work.buffers


def test_fits_that_share_a_workspace_do_not_see_each_other():
    """The thread's workspace outlives a fit; a fit after another on other points (more of
    them, then fewer) makes exactly the first fit's decisions and coefficients."""
    from vinet_utils.oavi.arrays import shared_workspace

    X, Y = latent_small(m=300, n=6, seed=5), latent_small(m=500, n=7, seed=9)
    kwargs = dict(psi=0.005, tau=1000.0, max_degree=3, block_size=5)
    first = OAVI(**kwargs).fit(X)
    assert shared_workspace().buffers  # kept for the next fit
    OAVI(**kwargs).fit(Y)
    again = OAVI(**kwargs).fit(X)
    np.testing.assert_array_equal(again.O_exponents_, first.O_exponents_)
    np.testing.assert_array_equal(again.G_leading_exponents_, first.G_leading_exponents_)
    np.testing.assert_array_equal(again.coefficients_, first.coefficients_)


@pytest.mark.parametrize("oracle,tau", [("ihb", 1000.0), ("ihb", 3.0), ("abm", 1000.0)])
def test_the_compiled_runs_decide_as_the_term_by_term_path(monkeypatch, oracle, tau):
    """The blocked engine decides runs of terms in one compiled loop (BorderBlock.decide_ahead:
    the closed form for "ihb", the screen's settled terms for "abm"); term by term, through
    the oracle and append, the fit makes the same decisions with the same coefficients. At
    tau 3 the l1 bound binds for some terms, which leave the compiled loop for the sparse
    oracle."""
    from vinet_utils.oavi import linalg

    X = latent_small(m=400, n=6, seed=3)
    kwargs = dict(psi=0.005, tau=tau, max_degree=3, block_size=9, oracle=oracle)
    ahead = OAVI(**kwargs).fit(X)
    monkeypatch.setattr(linalg.BorderBlock, "decide_ahead", lambda self, j, oracle: (j, []))
    one_by_one = OAVI(**kwargs).fit(X)
    assert ahead.n_generators_ > 10 and (tau > 100 or ahead.n_bound_active_ > 0)
    np.testing.assert_array_equal(ahead.O_exponents_, one_by_one.O_exponents_)
    np.testing.assert_array_equal(ahead.G_leading_exponents_, one_by_one.G_leading_exponents_)
    np.testing.assert_allclose(ahead.coefficients_, one_by_one.coefficients_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ahead.train_mse_, one_by_one.train_mse_, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ahead.leading_coefficients_, one_by_one.leading_coefficients_, rtol=1e-9)
