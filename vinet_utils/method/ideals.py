"""Per-class approximate vanishing ideals of latent features (docs/method.md §1 step 3).

One :class:`~vinet_utils.oavi.OAVI` is fitted per class on ``samples_per_class``
seeded points of that class's preprocessed latents. The fits are kept with the run
(``<run_dir>/ideals/<cut>.pt``) so later notebooks reload rather than refit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from vinet_utils.common.progress import tqdm

from vinet_utils.method.latents import Preprocess
from vinet_utils.oavi import OAVI
from vinet_utils.common.results import checksum, load_or_make
from vinet_utils.common.seeds import derive_seed


#: The settings of the per-class fits, one value passed around as a dict
#: (:func:`fit_settings`), besides the run's seed.
FIT_SETTINGS = ("pca_dim", "samples_per_class", "psi", "max_degree", "tau", "oracle")


def fit_settings(values: dict) -> dict:
    """The fit settings (:data:`FIT_SETTINGS`) out of a run's parameters ``values``."""
    return {k: values[k] for k in FIT_SETTINGS}


def split_by_class(z: torch.Tensor, y: torch.Tensor, num_classes: int,
                   samples_per_class: int | None = None, seed: int = 0) -> list[torch.Tensor]:
    """The rows of ``z`` per class, each a seeded subsample of at most ``samples_per_class``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(num_classes):
        zk = z[y == k]
        if samples_per_class is not None and len(zk) > samples_per_class:
            zk = zk[torch.randperm(len(zk), generator=g)[:samples_per_class]]
        out.append(zk)
    return out


def fit_per_class(z_by_class: list[torch.Tensor], psi: float, max_degree: int,
                  tau: float | None = None, oracle: str = "ihb", device=None,
                  progress: bool = True, desc: str = "OAVI per class") -> list[OAVI]:
    """One fitted OAVI per class (float64 on CPU unless ``device`` says otherwise)."""
    models = []
    for zk in tqdm(z_by_class, desc=desc, disable=not progress):
        # one thread: the same numbers whatever the machine's load (same seed, same fits)
        models.append(OAVI(psi=psi, max_degree=max_degree, tau=tau, oracle=oracle,
                           device=device, threads=1).fit(zk.double()))
    return models


def cached_fits(path: str | Path, z_by_class: list[torch.Tensor], *, psi: float,
                max_degree: int, tau: float | None, oracle: str, device=None,
                progress: bool = True, desc: str = "OAVI per class") -> list[OAVI]:
    """:func:`fit_per_class`, reused from ``path`` when it was made with the same inputs."""
    path = Path(path)
    key = {"psi": psi, "max_degree": max_degree, "tau": tau, "oracle": oracle,
           "sizes": [len(z) for z in z_by_class], "checksum": checksum(z_by_class)}
    return load_or_make(path, key, lambda: {"models": fit_per_class(
        z_by_class, psi, max_degree, tau, oracle, device, progress, desc)})["models"]


def class_summary(models: list[OAVI]) -> list[dict]:
    """Per class: generators by degree, |O|, fit time and how often the l1 bound bound."""
    rows = []
    for k, m in enumerate(models):
        degrees = np.bincount(np.asarray(m.degrees_, dtype=int), minlength=m.max_degree_reached_ + 1)
        rows.append({"class": k, "n_generators": int(m.n_generators_),
                     "O_size": int(len(m.O_exponents_)), "max_degree": int(m.max_degree_reached_),
                     "generators_by_degree": degrees[1:].tolist(),
                     "border_terms": int(m.n_border_terms_), "bound_active": int(m.n_bound_active_),
                     "fit_time_s": float(m.fit_time_s_)})
    return rows


@torch.no_grad()
def vanishing_matrix(models: list[OAVI], z_by_class: list[torch.Tensor]) -> np.ndarray:
    """``V[k, j]`` = mean over class k's generators of mean_i |p(z_i)| on class j's points.

    Class-specific ideals give a low diagonal and a high off-diagonal."""
    v = np.zeros((len(models), len(z_by_class)))
    for k, m in enumerate(models):
        for j, zj in enumerate(z_by_class):
            v[k, j] = float(m.transform(zj.double()).mean()) if m.n_generators_ else np.nan
    return v


def diagonal_and_off(v: np.ndarray) -> tuple[float, float]:
    """Mean diagonal and mean off-diagonal entry of a vanishing matrix."""
    off = v[~np.eye(len(v), dtype=bool)]
    return float(np.nanmean(np.diag(v))), float(np.nanmean(off))


def off_diagonal_ratio(v: np.ndarray) -> float:
    """Mean off-diagonal entry over mean diagonal entry of a vanishing matrix."""
    diag, off = diagonal_and_off(v)
    return off / diag


@dataclass
class CutFit:
    """Everything fitted at one cut: latents, preprocessing and the per-class ideals."""

    variant: str
    layer: str
    pool: str                     # how the activation map became a vector (latents.POOLS)
    latents: dict                 # latents (float16): train, test, train_y, test_y
    preprocess: Preprocess        # PCA -> standardise -> tanh, fitted on train latents
    fit_points: list              # preprocessed points each class's OAVI was fitted on
    models: list                  # one fitted OAVI per class
    fit_time_s: float             # OAVI time over all classes (as measured when fitted)

    def u(self, split: str) -> torch.Tensor:
        """Preprocessed latents of ``split`` ("train" or "test"), float64."""
        return self.preprocess.transform(self.latents[split])

    def by_class(self, split: str) -> list[torch.Tensor]:
        return split_by_class(self.u(split), self.latents[f"{split}_y"], len(self.models))


def fit_cut(model, arch: str, variant: str, ds, run_dir, *, pca_dim: int,
            samples_per_class: int, psi: float, max_degree: int, tau: float | None,
            oracle: str, seed: int, pool: str = "flatten", device="cpu",
            progress: bool = True) -> CutFit:
    """Latents at ``variant``'s cut, their preprocessing, and one OAVI per class.

    Latents, the PCA and the fits are cached in ``run_dir``; a second call with the
    same inputs reloads them. The PCA and the per-class subsamples draw on seeds of
    their own, derived from ``seed``."""
    from vinet_utils.method import latents as L
    from vinet_utils.network.models import resolve_cut

    layer = resolve_cut(arch, variant)
    lat = L.cached_latents(model, arch, variant, ds, run_dir, pool, device=device,
                           progress=progress)
    return fit_latents(lat, variant, layer, pool, ds.num_classes, Path(run_dir), pca_dim=pca_dim,
                       samples_per_class=samples_per_class, psi=psi, max_degree=max_degree,
                       tau=tau, oracle=oracle, seed=seed, progress=progress)


def fit_latents(lat: dict, variant: str, layer: str, pool: str, num_classes: int, cache_dir: Path,
                *, pca_dim: int, samples_per_class: int, psi: float, max_degree: int,
                tau: float | None, oracle: str, seed: int, progress: bool = True) -> CutFit:
    """:func:`fit_cut` on latents already in hand (``lat`` needs "train", "train_y" and
    "key"); PCA and fits are cached under ``cache_dir``."""
    from vinet_utils.method import latents as L

    pre = L.cut_preprocess(lat, layer, pool, pca_dim, cache_dir, seed)
    points = split_by_class(pre.transform(lat["train"]), lat["train_y"], num_classes,
                            samples_per_class, derive_seed(seed, "oavi-points", layer, pool))
    models = cached_fits(cache_dir / "ideals" / f"{layer}-{pool}.pt", points, psi=psi,
                         max_degree=max_degree, tau=tau, oracle=oracle, progress=progress,
                         desc=f"OAVI {variant}")
    fit_time = sum(float(m.fit_time_s_) for m in models)
    return CutFit(variant, layer, pool, lat, pre, points, models, fit_time)
