"""Heads that sit on a truncated base's latents: the VI-Net polynomial head and the
ablation heads it is compared with (method.md §6-7).

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
        head (method.md §6)."""
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
    the same degrees as the polynomial head's generators and are not trained."""

    def __init__(self, preprocess: Preprocess, degrees, num_classes: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = preprocess.out_features
        idx = [torch.randint(0, n, (int(d),), generator=g) for d in degrees]
        exps = torch.zeros(len(idx), n)
        for r, i in enumerate(idx):
            exps[r].index_add_(0, i, torch.ones(len(i)))
        self.preprocess = preprocess
        self.register_buffer("exponents", exps)
        self.norm = nn.BatchNorm1d(len(idx))
        self.linear = nn.Linear(len(idx), num_classes)

    def forward(self, z):
        # |prod_j u_j^e_j| = exp(e . log|u|)
        logs = torch.log(self.preprocess(z).abs().clamp_min(1e-12)) @ self.exponents.T
        return self.linear(self.norm(torch.exp(logs)))

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
