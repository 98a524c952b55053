"""Tests of the polynomial layer G(z) = |M(z) C| (docs/method.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vinet_utils.oavi import OAVI
from vinet_utils.method.polynomial import PolynomialLayer
from vinet_utils.method.pruning import prune


def sphere_and_line(seed=0, m=400):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((m, 3))
    sphere = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = rng.uniform(-1, 1, m)
    line = np.c_[0.1 + 0.635 * t, -0.2 + 0.3 * t, 0.3 - 0.5 * t]
    Z = [sphere, line]
    return [z + 0.005 * rng.standard_normal(z.shape) for z in Z]


@pytest.fixture(scope="module")
def fitted():
    Z = sphere_and_line()
    models = [OAVI(psi=0.005).fit(z) for z in Z]
    return models, Z


def test_layer_from_plain_data_is_the_polynomials():
    # circle x0^2 + x1^2 - 1 and the cubic x0*x1^2 - 2 x1 (needs closure terms x0*x1 or x1^2, x1)
    exponents = [[2, 0], [0, 2], [0, 0], [1, 2], [0, 1]]
    C = [[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -2.0]]
    layer = PolynomialLayer(exponents, C, dtype=torch.float64)
    assert layer.in_features == 2 and layer.out_features == 2 and layer.count_params() == 5
    z = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (64, 2)))
    expected = torch.stack([z[:, 0] ** 2 + z[:, 1] ** 2 - 1, z[:, 0] * z[:, 1] ** 2 - 2 * z[:, 1]], 1).abs()
    torch.testing.assert_close(layer(z), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(layer.float()(z.float()), expected.float(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        PolynomialLayer(exponents, C[:3])
    with pytest.raises(ValueError, match="repeated"):
        PolynomialLayer([[1, 0], [1, 0]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="expected input"):
        layer(torch.zeros(3, 5, dtype=torch.float64))


def test_layer_equals_oavi_transform_on_kept_generators(fitted):
    models, Z = fitted
    kept = prune(models, Z, keep_per_class=4).kept
    layer = PolynomialLayer.from_oavi(models, kept, dtype=torch.float64)
    z = np.concatenate(Z)
    expected = np.concatenate([m.transform(z)[:, k] for m, k in zip(models, kept)], axis=1)
    out = layer(torch.as_tensor(z)).detach().numpy()
    assert out.shape == expected.shape == (len(z), sum(len(k) for k in kept))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-8)

    C = layer.coefficients.detach().numpy()
    assert layer.count_params() == np.count_nonzero(C)
    assert (np.abs(C).sum(axis=1) > 0).all(), "a monomial no kept generator uses was not dropped"
    # the support is exactly the union of the kept generators' supports
    support = set()
    for m, k in zip(models, kept):
        for g in k:
            support.add(tuple(m.G_leading_exponents_[g]))
            support.update(tuple(t) for t, c in zip(m.O_exponents_, m.coefficients_[g]) if c != 0)
    assert {tuple(r) for r in layer.exponents} == support
    # every generator contributes exactly 1 + its nonzero coefficients
    nnz = sum(1 + np.count_nonzero(m.coefficients_[g]) for m, k in zip(models, kept) for g in k)
    assert layer.count_params() == nnz


def test_gradients_reach_the_coefficients(fitted):
    models, Z = fitted
    layer = PolynomialLayer.from_oavi(models, [[0, 1], [0]], dtype=torch.float64)
    z = torch.as_tensor(np.concatenate(Z)[:50]).requires_grad_(True)
    loss = layer(z).pow(2).mean()
    loss.backward()
    grad = layer.coefficients.grad
    mask = layer.support_mask.bool()
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad[mask] != 0).any()
    assert (grad[~mask] == 0).all(), "the frozen zero pattern received a gradient"
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # a training step keeps the zero pattern and the parameter count
    before = layer.count_params()
    with torch.no_grad():
        layer.coefficients -= 0.1 * grad + 0.01
    assert layer.count_params() == before


def test_from_oavi_checks_its_input(fitted):
    models, _ = fitted
    with pytest.raises(ValueError, match="kept"):
        PolynomialLayer.from_oavi(models, [[0]])
    with pytest.raises(ValueError, match="index"):
        PolynomialLayer.from_oavi(models, [[0], [10_000]])
    with pytest.raises(ValueError, match="no generator"):
        PolynomialLayer.from_oavi(models, [[], []])
    with pytest.raises(ValueError, match="not fitted"):
        PolynomialLayer.from_oavi([models[0], OAVI()], [[0], [0]])
