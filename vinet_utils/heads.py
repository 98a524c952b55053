"""Heads that sit on a truncated base's latents: the VI-Net polynomial head and the
ablation heads it is compared with (docs/method.md §6-7).

Every head maps latents (batch, D), the flattened or pooled activation map, to logits
and counts its own parameters, so the same code trains any of them on cached latents
and builds a full network with :class:`vinet_utils.vinet.VINet`. Heads that start
with a :class:`~vinet_utils.latents.Preprocess` count its projection and mean.
"""

from __future__ import annotations

import torch
from torch import nn

from .latents import Preprocess
from .models import count_params
from .polynomial import PolynomialLayer


class PolyHead(nn.Module):
    """Projection/tanh -> polynomial layer G(z) = |p(z)| -> BatchNorm -> linear (VI-Net's head)."""

    def __init__(self, preprocess: Preprocess, poly: PolynomialLayer, num_classes: int,
                 norm: bool = True):
        super().__init__()
        self.preprocess, self.poly = preprocess, poly
        self.norm = nn.BatchNorm1d(poly.out_features) if norm else nn.Identity()
        self.linear = nn.Linear(poly.out_features, num_classes)

    def forward(self, z):
        return self.linear(self.norm(self.poly(self.preprocess(z))))

    def count_params(self) -> int:
        """Nonzero coefficients of C, the PCA projection and mean, the norm and the linear
        head (docs/method.md §6)."""
        return (self.poly.count_params() + self.preprocess.count_params()
                + count_params(self.norm) + count_params(self.linear))


class LinearHead(nn.Module):
    """BatchNorm and a linear layer on the latents: the paper's "linear head on the
    truncated network" on the flattened map, or a linear probe on a pooled one."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features)
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, z):
        return self.linear(self.norm(z))

    def count_params(self) -> int:
        return count_params(self)


class ProjectionHead(nn.Module):
    """Projection/tanh -> BatchNorm -> linear: VI-Net's head without the polynomial layer,
    the head that VI-Net has to beat to show that its polynomials matter."""

    def __init__(self, preprocess: Preprocess, num_classes: int):
        super().__init__()
        self.preprocess = preprocess
        self.norm = nn.BatchNorm1d(preprocess.out_features)
        self.linear = nn.Linear(preprocess.out_features, num_classes)

    def forward(self, z):
        return self.linear(self.norm(self.preprocess(z)))

    def count_params(self) -> int:
        return count_params(self)


class RandomMonomialHead(nn.Module):
    """Projection/tanh -> |random monomials| of the same width as G -> BatchNorm -> linear
    (ablation b: the paper's random-feature baseline). The monomials are drawn with
    the same degrees as the polynomial head's generators and are not trained.

    Each monomial is a product of at most ``max(degrees)`` projected coordinates, taken
    as one gather and a product over that short axis (missing factors point at a
    column of ones): no logarithms, so a coordinate near zero gives a product near zero
    and a finite gradient."""

    def __init__(self, preprocess: Preprocess, degrees, num_classes: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = preprocess.out_features
        degrees = [int(d) for d in degrees]
        factors = torch.full((len(degrees), max(degrees, default=1)), n, dtype=torch.long)
        for r, d in enumerate(degrees):
            factors[r, :d] = torch.randint(0, n, (d,), generator=g)
        self.preprocess = preprocess
        self.register_buffer("factors", factors)  # (width, max degree); n means "times 1"
        self.norm = nn.BatchNorm1d(len(degrees))
        self.linear = nn.Linear(len(degrees), num_classes)

    @property
    def exponents(self) -> torch.Tensor:
        """The monomials as exponent vectors (width, projected dimension)."""
        n = self.preprocess.out_features
        exps = torch.zeros(len(self.factors), n + 1)
        exps.scatter_add_(1, self.factors, torch.ones(self.factors.shape))
        return exps[:, :n]

    def forward(self, z):
        u = self.preprocess(z)
        u = torch.cat([u, torch.ones_like(u[:, :1])], 1)
        return self.linear(self.norm(u[:, self.factors].prod(-1).abs()))

    def count_params(self) -> int:
        return count_params(self)


class MLPHead(nn.Module):
    """A one-hidden-layer MLP sized to about ``target_params`` parameters (ablation c)."""

    def __init__(self, in_features: int, num_classes: int, target_params: int):
        super().__init__()
        hidden = max(1, round((target_params - num_classes) / (in_features + num_classes + 3)))
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden),
                                 nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, z):
        return self.net(z)

    def count_params(self) -> int:
        return count_params(self)
