"""Benchmarks, as a command line tool.

    python -m vinet_utils.bench oavi [--out results/benchmarks/oavi.json] [--classes 10 ...]

``oavi``: per class, points from a noisy low-dimensional algebraic variety in ``dim``
dimensions (a random polynomial image of a ``latent_dim``-cube, rescaled into
``[-1, 1]``, plus Gaussian noise well below ``sqrt(psi)``). Fits :class:`OAVI` to each
class and, on the same data, the brute-force reference
(:func:`vinet_utils.oavi.brute_force_fit`: a fresh least-squares solve per border term,
the same sparse oracle where the l1 bound is active). Records per-class fit time,
``|O|``, ``|G|``, degree reached and how often the bound was active, the speed ratio,
and whether both made identical O/G decisions. Writes one JSON file with how it was
made (parameters, torch version, threads, device, git commit, wall time).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np
import torch

from .oavi import OAVI, brute_force_fit
from .results import environment, write_json


# ------------------------------------------------------------------- helpers
def run_metadata(device: torch.device | str) -> dict:
    """How a benchmark was run (the same fields as every results file)."""
    return {**environment(device), "numpy_version": np.__version__,
            "platform": platform.platform()}


def variety_sample(
    rng: np.random.Generator, points: int, dim: int, latent_dim: int, map_degree: int, noise: float
) -> np.ndarray:
    """Noisy points of a random algebraic variety of dimension ``latent_dim`` in ``R^dim``.

    ``t`` is uniform in ``[-1, 1]^latent_dim``; the clean point is a random linear image of
    all monomials of ``t`` of degree 1 to ``map_degree``, rescaled per coordinate into
    ``[-1, 1]`` (an affine change, so the points stay on an algebraic variety), then
    Gaussian noise of standard deviation ``noise`` is added.
    """
    t = rng.uniform(-1.0, 1.0, size=(points, latent_dim))
    features = [
        np.prod(t[:, list(idx)], axis=1)
        for d in range(1, map_degree + 1)
        for idx in combinations_with_replacement(range(latent_dim), d)
    ]
    F = np.stack(features, axis=1)
    Y = F @ rng.standard_normal((F.shape[1], dim))
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    Y = 2.0 * (Y - lo) / (hi - lo) - 1.0
    return Y + noise * rng.standard_normal(Y.shape)


def _same_decisions(a: OAVI, b: OAVI) -> bool:
    return (
        a.O_exponents_.shape == b.O_exponents_.shape
        and bool((a.O_exponents_ == b.O_exponents_).all())
        and a.G_leading_exponents_.shape == b.G_leading_exponents_.shape
        and bool((a.G_leading_exponents_ == b.G_leading_exponents_).all())
    )


# ---------------------------------------------------------------- oavi bench
def bench_oavi(
    classes: int = 10,
    points: int = 1000,
    dim: int = 32,
    psi: float = 0.005,
    tau: float | None = None,
    max_degree: int = 10,
    latent_dim: int = 10,
    map_degree: int = 2,
    noise: float = 0.01,
    seed: int = 0,
    reference: bool = True,
    device: str = "cpu",
) -> dict:
    """Time OAVI against the brute-force reference on synthetic varieties; returns a dict
    ready for JSON (see the module docstring)."""
    start = time.perf_counter()
    metadata = run_metadata(device)
    rng = np.random.default_rng(seed)
    data = [variety_sample(rng, points, dim, latent_dim, map_degree, noise) for _ in range(classes)]
    OAVI(psi=psi, max_degree=max_degree, tau=tau, device=device).fit(data[0][:100])  # warm-up

    per_class = []
    for k, X in enumerate(data):
        tic = time.perf_counter()
        model = OAVI(psi=psi, max_degree=max_degree, tau=tau, device=device).fit(X)
        fit_s = time.perf_counter() - tic
        row = {
            "class": k,
            "fit_time_s": fit_s,
            "oracle_time_s": model.oracle_time_s_,
            "n_O": int(model.O_exponents_.shape[0]),
            "n_G": int(model.n_generators_),
            "max_degree_reached": int(model.max_degree_reached_),
            "max_generator_degree": int(model.degrees_.max()) if model.n_generators_ else 0,
            "n_border_terms": int(model.n_border_terms_),
            "n_bound_active": int(model.n_bound_active_),
            "n_oracle_iterations": int(model.n_oracle_iterations_),
            "max_train_mse": float(model.train_mse_.max()) if model.n_generators_ else 0.0,
        }
        if reference:
            tic = time.perf_counter()
            ref = brute_force_fit(X, psi=psi, max_degree=max_degree, tau=tau, device=device)
            row["reference_time_s"] = time.perf_counter() - tic
            row["reference_oracle_time_s"] = ref.oracle_time_s_
            row["identical_decisions"] = _same_decisions(model, ref)
            if row["identical_decisions"]:
                # generators from the closed form should agree to rounding; the sparse
                # oracle stops at the first psi-vanishing iterate, which may differ slightly
                diff = np.abs(model.coefficients_ - ref.coefficients_).max(axis=1, initial=0.0)
                closed_form = ~model.from_sparse_oracle_
                row["max_coefficient_difference_closed_form"] = float(diff[closed_form].max(initial=0.0))
                row["max_coefficient_difference_sparse_oracle"] = float(diff[~closed_form].max(initial=0.0))
        per_class.append(row)

    fit_total = sum(r["fit_time_s"] for r in per_class)
    oracle_total = sum(r["oracle_time_s"] for r in per_class)
    summary = {
        "total_fit_time_s": fit_total,
        "total_oracle_time_s": oracle_total,
        "n_bound_active_total": sum(r["n_bound_active"] for r in per_class),
        "n_border_terms_total": sum(r["n_border_terms"] for r in per_class),
        "max_degree_reached": max(r["max_degree_reached"] for r in per_class),
        "min_degree_reached": min(r["max_degree_reached"] for r in per_class),
    }
    if reference:
        ref_total = sum(r["reference_time_s"] for r in per_class)
        ref_oracle = sum(r["reference_oracle_time_s"] for r in per_class)
        summary.update(
            total_reference_time_s=ref_total,
            speed_ratio=ref_total / fit_total,
            # the same sparse oracle runs in both; this ratio compares the least-squares engines alone
            speed_ratio_without_oracle=(ref_total - ref_oracle) / max(fit_total - oracle_total, 1e-12),
            identical_decisions=all(r["identical_decisions"] for r in per_class),
        )
    targets = {"total_fit_time_s_max": 60.0, "speed_ratio_min": 10.0, "identical_decisions": True}
    met = {"fit_time": fit_total <= targets["total_fit_time_s_max"]}
    if reference:
        met["speed_ratio"] = summary["speed_ratio"] >= targets["speed_ratio_min"]
        met["identical_decisions"] = summary["identical_decisions"]
    metadata["wall_time_s"] = time.perf_counter() - start
    return {
        "benchmark": "oavi",
        "parameters": {
            "classes": classes, "points": points, "dim": dim, "psi": psi, "tau": tau,
            "tau_resolved": OAVI(psi=psi, tau=tau)._resolved_tau(), "max_degree": max_degree,
            "oracle": "ihb", "latent_dim": latent_dim, "map_degree": map_degree, "noise": noise,
            "seed": seed, "reference": "brute_force_fit (torch.linalg.lstsq per border term)" if reference else None,
        },
        "metadata": metadata,
        "summary": summary,
        "targets": targets,
        "targets_met": met,
        "per_class": per_class,
    }


def _oavi_command(args: argparse.Namespace) -> dict:
    return bench_oavi(
        classes=args.classes, points=args.points, dim=args.dim, psi=args.psi, tau=args.tau,
        max_degree=args.max_degree, latent_dim=args.latent_dim, map_degree=args.map_degree,
        noise=args.noise, seed=args.seed, reference=not args.no_reference, device=args.device,
    )


# ----------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The ``python -m vinet_utils.bench`` argument parser, one subcommand per benchmark."""
    parser = argparse.ArgumentParser(prog="python -m vinet_utils.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("oavi", help="OAVI fit time and agreement with the brute-force reference")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/oavi.json"))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--points", type=int, default=1000, help="points per class")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--psi", type=float, default=0.005)
    p.add_argument("--tau", type=float, default=None, help="default: (3/2)^ceil(-log(psi)/log 4)")
    p.add_argument("--max-degree", type=int, default=10)
    p.add_argument("--latent-dim", type=int, default=10, help="dimension of each class's variety")
    p.add_argument("--map-degree", type=int, default=2, help="degree of the random polynomial map")
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-reference", action="store_true", help="skip the brute-force reference")
    p.set_defaults(func=_oavi_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = args.func(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    sys.stdout.write(f"wrote {args.out}\n{json.dumps(result['summary'], indent=2)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
