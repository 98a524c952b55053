"""Latent features of a truncated network, and their preprocessing (method.md §3).

``extract`` runs the truncated base over a split and global-average-pools each
C x H x W activation to C numbers. ``cached_latents`` does it once per cut and keeps
the result with the run. ``Preprocess`` is the torch module that maps pooled
latents into [-1, 1]: PCA to ``pca_dim`` components (fitted on the training latents
of all classes together), standardisation, then tanh. The standardisation is folded
into the projection, so its parameters are exactly the PCA projection and mean.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from .progress import tqdm

from . import data as D
from . import models as M
from .results import save_torch


@torch.no_grad()
def extract(base: nn.Module, x: torch.Tensor, mean, std, batch_size: int = 500,
            device="cpu", progress: bool = True, desc: str = "latents") -> torch.Tensor:
    """Pooled activations (N, C) of ``base`` on the uint8 images ``x``."""
    base.eval().to(device)
    out = []
    for xb, _ in tqdm(D.batches(x, torch.zeros(len(x), dtype=torch.long), batch_size, mean, std,
                                device=device, channels_last=True),
                      total=D.n_batches(len(x), batch_size), desc=desc, disable=not progress,
                      leave=False):
        out.append(base(xb).float().mean((2, 3)).cpu())
    return torch.cat(out)


def cached_latents(model: M.ResNet, arch: str, cut: str, ds: D.Dataset, run_dir,
                   device="cpu", progress: bool = True) -> dict:
    """``{"train", "test", "train_y", "test_y"}`` pooled latents at ``cut``, computed once
    per run and kept in ``<run_dir>/latents/<cut>.pt``."""
    path = Path(run_dir) / "latents" / f"{M.resolve_cut(arch, cut)}.pt"
    key = {"n_train": len(ds.train_x), "n_test": len(ds.test_x),
           "label_sum": int(ds.train_y.sum()), "weights": _fingerprint(model)}
    if path.exists():
        cached = torch.load(path, weights_only=False)
        if cached.get("key") == key:
            return cached
    base = M.truncate(model, cut)
    z = {"train": extract(base, ds.train_x, ds.mean, ds.std, device=device, progress=progress,
                          desc=f"{cut} train"),
         "test": extract(base, ds.test_x, ds.mean, ds.std, device=device, progress=progress,
                         desc=f"{cut} test"),
         "train_y": ds.train_y.clone(), "test_y": ds.test_y.clone(), "key": key}
    save_torch(path, z)
    return z


def explained_variance_ratio(z: torch.Tensor) -> torch.Tensor:
    """The PCA spectrum of ``z``: each component's share of the total variance."""
    evals = torch.linalg.eigvalsh(torch.cov(z.double().T)).flip(0).clamp_min(0)
    return evals / evals.sum()


def _fingerprint(model: nn.Module) -> float:
    """A cheap checksum of the weights, so latents of another model are not reused."""
    return round(float(sum(p.detach().double().abs().sum() for p in model.parameters())), 6)


class Preprocess(nn.Module):
    """z -> tanh(((z - mean) @ V) / s): PCA to ``pca_dim``, standardise, squash to [-1, 1].

    Fit with :meth:`fit` on the pooled training latents of all classes; afterwards the
    projection (with 1/s folded in) and the mean are fixed buffers."""

    def __init__(self, in_features: int, pca_dim: int):
        super().__init__()
        if not 1 <= pca_dim <= in_features:
            raise ValueError(f"pca_dim must be between 1 and the latent dimension "
                             f"{in_features} (got {pca_dim})")
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("projection", torch.eye(in_features)[:, :pca_dim].clone())
        self.register_buffer("explained_variance_ratio", torch.zeros(pca_dim))
        self.in_features, self.out_features = in_features, pca_dim

    @torch.no_grad()
    def fit(self, z: torch.Tensor) -> "Preprocess":
        z = z.double()
        mean = z.mean(0)
        cov = torch.cov((z - mean).T)
        evals, evecs = torch.linalg.eigh(cov)
        total = evals.clamp_min(0).sum()
        order = torch.argsort(evals, descending=True)[: self.out_features]
        evals, evecs = evals[order].clamp_min(1e-12), evecs[:, order]
        evecs = evecs * torch.sign(evecs[evecs.abs().argmax(0), torch.arange(evecs.shape[1])])
        self.mean.copy_(mean.float())
        self.projection.copy_((evecs / evals.sqrt()).float())
        self.explained_variance_ratio.copy_((evals / total).float())
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh((z - self.mean.to(z.dtype)) @ self.projection.to(z.dtype))

    def count_params(self) -> int:
        """The PCA projection and mean (method.md §6)."""
        return self.projection.numel() + self.mean.numel()
