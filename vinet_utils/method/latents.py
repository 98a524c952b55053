"""Latent features of a truncated network, and their preprocessing (docs/method.md §3).

``Pool`` turns a truncated base's C x H x W activation map into one vector per image:
``flatten`` keeps the whole map (D = C*H*W numbers, the paper), ``gap`` averages each
channel (D = C), and ``2x2``/``4x4`` average-pool to a small grid first (ablations).
``cached_latents`` runs the base once per cut and pool and keeps the result with the
run, in half precision (the flattened map of the early cuts is large).

``Preprocess`` maps those vectors into [-1, 1]: a projection initialised by PCA to
``pca_dim`` components (fitted with a seeded randomized range finder, so a D of 32768
never needs a D x D eigendecomposition), standardisation folded into the projection,
then tanh. The projection and its mean are parameters of the VI-Net head; whether
fine-tuning trains them is up to the caller (:meth:`Preprocess.trainable`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vinet_utils.network import data as D
from vinet_utils.network import models as M
from vinet_utils.common.progress import tqdm
from vinet_utils.common.results import checksum, load_or_make
from vinet_utils.common.seeds import derive_seed

POOLS = ("flatten", "gap", "2x2", "4x4")


def check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)} (got {pool!r})")
    return pool


class Pool(nn.Module):
    """(N, C, H, W) -> (N, D): ``flatten`` (D = CHW), ``gap`` (D = C) or ``kxk`` (D = Ckk)."""

    def __init__(self, pool: str = "flatten"):
        super().__init__()
        self.pool = check_pool(pool)
        grid = re.fullmatch(r"(\d+)x\1", pool)
        self.grid = int(grid.group(1)) if grid else None

    def forward(self, x):
        if self.pool == "gap":
            return x.mean((2, 3))
        if self.grid:
            x = F.adaptive_avg_pool2d(x, self.grid)
        return x.flatten(1)

    def extra_repr(self) -> str:
        return self.pool


@torch.no_grad()
def extract(base: nn.Module, x: torch.Tensor, mean, std, pool: str = "flatten",
            batch_size: int = 500, device="cpu", progress: bool = True,
            desc: str = "latents") -> torch.Tensor:
    """Pooled activations ``(N, D)`` of ``base`` on the uint8 images ``x``, float16."""
    base.eval().to(device)
    pooler = Pool(pool)
    out, done = None, 0  # filled in place: no second copy of the latents at the end
    for xb, _ in tqdm(D.batches(x, torch.zeros(len(x), dtype=torch.long), batch_size, mean, std,
                                device=device, channels_last=True),
                      total=D.n_batches(len(x), batch_size), desc=desc, disable=not progress,
                      leave=False):
        z = pooler(base(xb).float()).half().cpu()
        if out is None:
            out = torch.empty(len(x), z.shape[1], dtype=torch.float16)
        out[done:done + len(z)] = z
        done += len(z)
    return out


def cached_latents(model: M.ResNet, arch: str, cut: str, ds: D.Dataset, run_dir,
                   pool: str = "flatten", device="cpu", progress: bool = True,
                   holdout: bool = False) -> dict:
    """``{"train", "test", "train_y", "test_y"}`` latents at ``cut`` (float16), computed
    once per run, cut and pool and kept in ``<run_dir>/latents/<layer>-<pool>.pt``.

    With ``holdout``, ``{"holdout", "holdout_y"}``: the latents of the images the run
    held out of all training (``ds.holdout_x``), kept in ``<layer>-<pool>-holdout.pt``."""
    check_pool(pool)
    if holdout and ds.holdout_x is None:
        raise ValueError("this run holds no images out (holdout_frac=0): there are no "
                         "held-out latents to read")
    layer = M.resolve_cut(arch, cut)
    splits = (("holdout", ds.holdout_x, ds.holdout_y),) if holdout else (
        ("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y))
    path = Path(run_dir) / "latents" / (f"{layer}-{pool}" + ("-holdout" if holdout else "") + ".pt")
    key = {**{f"n_{name}": len(x) for name, x, _ in splits}, "pool": pool,
           **{("label_sum" if name == "train" else f"{name}_label_sum"): int(y.sum())
              for name, _, y in splits if name != "test"},
           "weights": checksum(model.parameters())}
    if ds.fingerprint:
        key["data"] = ds.fingerprint
    base = M.truncate(model, cut)

    def make():
        z = {split: extract(base, x, ds.mean, ds.std, pool, device=device, progress=progress,
                            desc=f"{cut} {split}")
             for split, x, _ in splits}
        for split, zs in z.items():
            if not torch.isfinite(zs).all():
                raise FloatingPointError(
                    f"the {split} latents at cut {cut!r} are not all finite (beyond float16's "
                    f"range, 65504, or NaN): the baseline of {Path(run_dir).name!r} has most "
                    f"likely diverged (see its test accuracy in 01_baseline.json); retrain it "
                    f"with a lower lr or more epochs")
        return {**z, **{f"{split}_y": y.clone() for split, _, y in splits}}

    return load_or_make(path, key, make)


def latent_dims(arch: str, width: float, variants, pool: str = "flatten",
                in_channels: int = 3, size: int = 32) -> dict:
    """Each cut's latent dimension D for ``arch`` at ``width`` (shapes only: the network
    is built on the meta device, nothing is computed)."""
    with torch.device("meta"):
        model = M.build(arch, 10, in_channels, width)
        x = torch.zeros(1, in_channels, size, size)
        return {v: Pool(pool)(M.truncate(model, v)(x)).shape[1] for v in variants}


def latent_bytes(arch: str, width: float, variants, n_images: int, pool: str = "flatten") -> int:
    """Bytes of the float16 latents that stages 02-06 keep in memory for ``n_images``
    (training plus test) at every cut of ``variants``."""
    return 2 * n_images * sum(latent_dims(arch, width, variants, pool).values())


def _chunks(n: int, size: int = 2048):
    """Row ranges of ``size``: the float32 working copies of a chunk stay small (0.25
    GiB at D = 32768) whatever the number of latents."""
    return ((i, min(i + size, n)) for i in range(0, n, size))


@torch.no_grad()
def column_moments(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and the total variance of ``z`` (any float dtype), in float64."""
    s = torch.zeros(z.shape[1], dtype=torch.float64, device=z.device)
    s2 = torch.zeros((), dtype=torch.float64, device=z.device)
    for a, b in _chunks(len(z)):
        zc = z[a:b].double()
        s += zc.sum(0)
        s2 += (zc * zc).sum()
    mean = s / len(z)
    total = (s2 - len(z) * (mean * mean).sum()) / max(len(z) - 1, 1)
    return mean, total


@torch.no_grad()
def randomized_pca(z: torch.Tensor, k: int, seed: int = 0, oversample: int = 10,
                   n_iter: int = 4, device=None) -> dict:
    """The top ``k`` principal directions of ``z`` (N x D, any float dtype).

    A seeded randomized range finder with ``n_iter`` power iterations on the implicitly
    centred data, processed in row chunks in float32: memory O((N + D) k), no D x D
    matrix; on ``device`` when given (a GPU takes the products, the last small SVD
    stays on the host in float64). Returns, on the host, ``mean`` (D), ``components``
    (D x k, orthonormal, sign-fixed), ``variance`` (k, per component) and
    ``explained_variance_ratio`` (k)."""
    z = z.to(device) if device is not None else z
    n, d = z.shape
    q = min(k + oversample, n, d)
    mean64, total = column_moments(z)
    mean = mean64.float()
    g = torch.Generator().manual_seed(seed)
    omega = torch.randn(d, q, generator=g).to(z.device)

    def right(w):   # (z - mean) @ w, (N, q)
        return torch.cat([z[a:b].float() @ w for a, b in _chunks(n)]) - mean @ w

    def left(u):    # (z - mean).T @ u, (D, q)
        out = sum(z[a:b].float().T @ u[a:b] for a, b in _chunks(n))
        return out - torch.outer(mean, u.sum(0))

    y = right(omega)
    for _ in range(n_iter):
        y = left(torch.linalg.qr(y).Q)
        y = right(torch.linalg.qr(y).Q)
    qy = torch.linalg.qr(y).Q
    b = left(qy).double().T.cpu()                 # (q, D) = Q^T (z - mean)
    mean64, total = mean64.cpu(), total.cpu()
    _, s, vt = torch.linalg.svd(b, full_matrices=False)
    comps = vt[:k].T                              # (D, k)
    comps = comps * torch.sign(comps[comps.abs().argmax(0), torch.arange(comps.shape[1])])
    var = s[:k] ** 2 / max(n - 1, 1)
    return {"mean": mean64, "components": comps, "variance": var,
            "explained_variance_ratio": var / total}


def explained_variance_ratio(z: torch.Tensor, k: int = 64, seed: int = 0,
                             device=None) -> torch.Tensor:
    """Each of the top ``min(k, D)`` components' share of the total variance of ``z``."""
    return randomized_pca(z, min(k, *z.shape), seed, device=device)["explained_variance_ratio"]


#: How fine-tuning treats the projection (the ``train_projection`` parameter): kept as
#: fitted; trained with the head; trained at :data:`SLOW_PROJECTION_LR` times the head's
#: learning rate; or trained with a BatchNorm (no affine part) between the projection
#: and tanh, so that tanh's inputs stay standardised however the projection grows.
PROJECTION_MODES = (False, True, "slow", "normalized")
SLOW_PROJECTION_LR = 0.1


class Preprocess(nn.Module):
    """z -> tanh((z - mean) @ P): PCA to ``pca_dim``, standardise, squash to [-1, 1].

    :meth:`fit` initialises ``P`` with the top principal directions of the training
    latents divided by their standard deviations. ``mean`` and ``projection`` are
    parameters, frozen unless :meth:`trainable` says otherwise (one of
    :data:`PROJECTION_MODES`). ``lr_scale`` is the share of the head's learning rate
    that its parameters train at."""

    def __init__(self, in_features: int, pca_dim: int):
        super().__init__()
        if not 1 <= pca_dim <= in_features:
            raise ValueError(f"pca_dim must be between 1 and the latent dimension "
                             f"{in_features} (got {pca_dim})")
        first = torch.zeros(in_features, pca_dim)  # the first pca_dim coordinates until fitted
        first[:pca_dim].copy_(torch.eye(pca_dim))  # (never a D x D identity: 4 GiB at D=32768)
        self.mean = nn.Parameter(torch.zeros(in_features), requires_grad=False)
        self.projection = nn.Parameter(first, requires_grad=False)
        self.register_buffer("explained_variance_ratio", torch.zeros(pca_dim))
        self.in_features, self.out_features = in_features, pca_dim
        self.lr_scale = 1.0

    @torch.no_grad()
    def fit(self, z: torch.Tensor, seed: int = 0, device=None) -> "Preprocess":
        pca = randomized_pca(z, self.out_features, seed, device=device)
        std = pca["variance"].clamp_min(1e-12).sqrt()
        self.mean.copy_(pca["mean"].float())
        self.projection.copy_((pca["components"] / std).float())
        self.explained_variance_ratio.copy_(pca["explained_variance_ratio"].float())
        return self

    def trainable(self, mode: bool | str = True) -> "Preprocess":
        """How fine-tuning treats the projection and mean: ``mode`` is one of
        :data:`PROJECTION_MODES` (``False``: frozen; ``True``: trained; ``"slow"``:
        trained at a tenth of the learning rate; ``"normalized"``: trained, behind a
        BatchNorm that starts as the identity on the fitted, standardised components)."""
        if mode not in PROJECTION_MODES:
            raise ValueError(f"train_projection must be one of "
                             f"{', '.join(map(repr, PROJECTION_MODES))} (got {mode!r})")
        train = mode is not False
        self.mean.requires_grad_(train)
        self.projection.requires_grad_(train)
        self.lr_scale = SLOW_PROJECTION_LR if mode == "slow" else 1.0
        if mode == "normalized" and not hasattr(self, "norm"):
            self.norm = nn.BatchNorm1d(self.out_features, affine=False).to(self.projection.device)
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(self.projection.device, self.projection.dtype)
        u = (z - self.mean) @ self.projection
        return torch.tanh(self.norm(u) if hasattr(self, "norm") else u)

    @torch.no_grad()
    def transform(self, z: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
        """``forward`` over ``z`` in row chunks (for large latent matrices)."""
        return torch.cat([self(z[a:b]).to(dtype) for a, b in _chunks(len(z))])

    def count_params(self) -> int:
        """The projection and mean (docs/method.md §6)."""
        return self.projection.numel() + self.mean.numel()


def cut_preprocess(lat: dict, layer: str, pool: str, pca_dim: int, run_dir, seed: int,
                   device=None) -> Preprocess:
    """The :class:`Preprocess` of a cut's latents ``lat``, fitted (on ``device``, when
    given) on the training latents with a seed derived from the run's ``seed``, and kept
    in ``<run_dir>/latents/<layer>-<pool>-pca.pt``: every notebook gets the same one."""
    path = Path(run_dir) / "latents" / f"{layer}-{pool}-pca.pt"
    seed = derive_seed(seed, "pca", layer, pool)
    d = lat["train"].shape[1]
    key = {"latents": lat["key"], "pca_dim": min(pca_dim, d), "seed": seed}
    pre = Preprocess(d, min(pca_dim, d))
    saved = load_or_make(path, key, lambda: {"state": pre.fit(lat["train"], seed, device).state_dict()})
    pre.load_state_dict(saved["state"])
    return pre
