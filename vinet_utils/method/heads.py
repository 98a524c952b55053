"""Heads that sit on a truncated base's latents: the VI-Net polynomial head and the
ablation heads it is compared with (docs/method.md §6-7).

Every head maps latents (batch, D), the flattened or pooled activation map, to logits
and counts its own parameters, so the same code trains any of them on cached latents
and builds a full network with :class:`vinet_utils.method.vinet.VINet`. Heads that start
with a :class:`~vinet_utils.method.latents.Preprocess` count its projection and mean.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from vinet_utils.method.latents import Preprocess
from vinet_utils.network.models import count_params
from vinet_utils.method.polynomial import PolynomialLayer


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
    """Projection/tanh -> random monomials of the same width as G -> BatchNorm -> linear
    (ablation b: the paper's random-feature baseline). The monomials are drawn with the
    same degrees as the polynomial head's generators and are not trained.

    Two choices keep the baseline from being weak by construction (docs/method.md §7):

    - The monomials are taken of the projected coordinates moved from (-1, 1) into
      (0, 1), ``(u + 1) / 2``, the unit cube on which the OAVI papers evaluate monomials.
      On (-1, 1) an even monomial such as u_i u_j cannot tell u from -u, and |u_i u_j|
      loses the sign of every coordinate, while VI-Net's |p(u)| keeps it through p's
      lower-degree terms. On (0, 1) a monomial is positive, so |m| = m, and
      ((1 + u_i)(1 + u_j)) / 4 carries u_i, u_j and u_i u_j.
    - The monomials of one degree are distinct until that degree's monomials run out
      (there are only 528 of degree 2 in 32 coordinates); only then are they repeated,
      so that the width, and with it the head's parameter count, stays G's.

    Each monomial is a product of at most ``max(degrees)`` coordinates, taken as one
    gather and a product over that short axis (missing factors point at a column of
    ones): no logarithms, so every gradient stays finite."""

    def __init__(self, preprocess: Preprocess, degrees, num_classes: int, seed: int = 0):
        super().__init__()
        degrees = [int(d) for d in degrees]
        self.preprocess = preprocess
        # (width, max degree); n means "times 1"
        self.register_buffer("factors", draw_monomials(preprocess.out_features, degrees, seed))
        # u -> (u + 1) / 2: a float buffer, so a cached head of another rescale is not reused
        self.register_buffer("unit_cube", torch.tensor([0.5, 0.5]))
        self.norm = nn.BatchNorm1d(len(degrees))
        self.linear = nn.Linear(len(degrees), num_classes)

    @property
    def exponents(self) -> torch.Tensor:
        """The monomials as exponent vectors (width, projected dimension)."""
        n = self.preprocess.out_features
        exps = torch.zeros(len(self.factors), n + 1)
        exps.scatter_add_(1, self.factors, torch.ones(self.factors.shape))
        return exps[:, :n]

    def coordinates(self, z) -> torch.Tensor:
        """The projected coordinates in (0, 1), the monomials' variables."""
        scale, shift = self.unit_cube
        return self.preprocess(z) * scale + shift

    def forward(self, z):
        u = self.coordinates(z)
        u = torch.cat([u, torch.ones_like(u[:, :1])], 1)
        return self.linear(self.norm(u[:, self.factors].prod(-1)))

    def count_params(self) -> int:
        return count_params(self)


#: Above this many monomials of one degree, draws are independent (repeats are then rare).
ENUMERATE_AT_MOST = 200_000


def draw_monomials(n: int, degrees, seed: int = 0) -> torch.Tensor:
    """Random monomials in ``n`` variables, one of each degree in ``degrees`` (in that
    order), as a ``(len(degrees), max degree)`` index matrix padded with ``n``.

    The monomials of one degree are drawn without replacement from all of that
    degree's monomials, in rounds of a fresh random order when more are asked for than
    exist; with more than :data:`ENUMERATE_AT_MOST` of them, each is drawn
    independently."""
    g = torch.Generator().manual_seed(seed)
    degrees = [int(d) for d in degrees]
    factors = torch.full((len(degrees), max(degrees, default=1)), n, dtype=torch.long)
    for d in sorted(set(degrees) - {0}):  # degree 0: the padding alone, "times 1"
        rows = [r for r, x in enumerate(degrees) if x == d]
        if math.comb(n + d - 1, d) > ENUMERATE_AT_MOST:
            picks = torch.randint(0, n, (len(rows), d), generator=g)
        else:
            pool = torch.tensor(list(itertools.combinations_with_replacement(range(n), d)))
            rounds = -(-len(rows) // len(pool))
            order = torch.cat([torch.randperm(len(pool), generator=g) for _ in range(rounds)])
            picks = pool[order[:len(rows)]]
        factors[rows, :d] = picks
    return factors


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
