"""Benchmarks, as a command line tool.

    python -m vinet_utils.experiments.bench oavi [--out results/benchmarks/oavi.json] [--classes 10 ...]
        [--cases all|none|L64,L32,...] [--repeats 3] [--no-case-reference] [--peer PATH [--peer-cases all]]
    python -m vinet_utils.experiments.bench oavi-ab --baseline REV [--out results/benchmarks/oavi_ab.json]
        [--cases all|L64,...] [--rounds 3] [--repeats 3]

``oavi``: per class, points from a noisy low-dimensional algebraic variety in ``dim``
dimensions (a random polynomial image of a ``latent_dim``-cube, rescaled into
``[-1, 1]``, plus Gaussian noise well below ``sqrt(psi)``). Fits :class:`OAVI` to each
class and, on the same data, the brute-force reference
(:func:`vinet_utils.oavi.brute_force_fit`: a fresh least-squares solve per border term,
the same sparse oracle where the l1 bound is active). Records per-class fit time,
``|O|``, ``|G|``, degree reached and how often the bound was active, the speed ratio,
and whether both made identical O/G decisions, into one JSON file with how it was made.
It also times named cases (:func:`latent_like`, :func:`two_class_tabular`), each as the
median of ``--repeats`` fits, against one brute-force fit where that is affordable:

* ``L64``: latent-like 2000 x 64 points, psi 0.005, tau 1000, max degree 3;
* ``L32``: its first 32 columns, same settings;
* ``L32_default_tau``: L32 at the default tau (the l1 bound binds; sparse oracle);
* ``ABM_L32``: ABM on L32 (psi 0.005, max degree 3);
* ``small_10000x8``: 10,000 x 8 two-class tabular points scaled to ``[0, 1]``, psi 0.1,
  timed as it is and again while a CPU-bound process (a busy loop started by the
  benchmark, stopped afterwards) runs.

Each case records time, ``|O|``, ``|G|``, identical decisions, the speed ratio and
whether its targets were met, plus the 1-minute load average before it ran (the
machine may be shared). ``--peer PATH`` adds the authors' OAVI on the issue's cases (``oavi_peer``).

``oavi-ab``: the named cases with this checkout's OAVI against the OAVI of a git
revision, alternating, on the same machine (:func:`bench_oavi_ab`); the check that a
change slows no case down, where times from another machine or day do not compare.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np
import torch

from vinet_utils.oavi import OAVI, brute_force_fit
from vinet_utils.common.results import REPO_ROOT, environment, public_arguments, write_json


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

    per_class = [_class_row(k, X, psi, max_degree, tau, reference, device)
                 for k, X in enumerate(data)]
    summary = _summary(per_class, reference)
    targets = {"total_fit_time_s_max": 60.0, "speed_ratio_min": 10.0, "identical_decisions": True}
    met = {"fit_time": summary["total_fit_time_s"] <= targets["total_fit_time_s_max"]}
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


def _class_row(k: int, X, psi: float, max_degree: int, tau, reference: bool, device) -> dict:
    """One class's fit: its time and structure, and its agreement with brute force."""
    tic = time.perf_counter()
    model = OAVI(psi=psi, max_degree=max_degree, tau=tau, device=device).fit(X)
    row = {
        "class": k,
        "fit_time_s": time.perf_counter() - tic,
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
    return row


def _summary(per_class: list[dict], reference: bool) -> dict:
    """Totals over the classes, and the speed ratio against brute force."""
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
    return summary


# ------------------------------------------------------------ named cases
def latent_like(columns: int = 64) -> np.ndarray:
    """The issue's L64 data (2000 x 64, a noisy smooth image of 6 latent Gaussians);
    ``columns=32`` gives L32 (its first 32 columns)."""
    rng = np.random.default_rng(7)
    W = rng.normal(size=(6, 64)) / np.sqrt(6)
    T = rng.normal(size=(2000, 6))
    S = T @ W
    X = np.tanh(S + 0.3 * np.sin(S)) + 0.02 * rng.normal(size=(2000, 64))
    return X[:, :columns]


def two_class_tabular(points: int = 10_000, dim: int = 8, seed: int = 0) -> np.ndarray:
    """Two Gaussian classes of ``points / 2`` each in ``dim`` dimensions with a shared random
    mixing matrix (the second class shifted by 1 and scaled by 0.7), min-max scaled to
    ``[0, 1]`` per feature; returns all points, the classes stacked."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    half = points // 2
    X = np.vstack([rng.normal(size=(half, dim)) @ A, 0.7 * rng.normal(size=(points - half, dim)) @ A + 1.0])
    return (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))


CASES = {
    # name: (data, OAVI keyword arguments, fit-time target in seconds on 2 cores)
    "L64": (lambda: latent_like(64), dict(psi=0.005, tau=1000.0, max_degree=3), 0.5),
    "L32": (lambda: latent_like(32), dict(psi=0.005, tau=1000.0, max_degree=3), 0.2),
    "L32_default_tau": (lambda: latent_like(32), dict(psi=0.005, tau=None, max_degree=3), 3.0),
    "ABM_L32": (lambda: latent_like(32), dict(psi=0.005, max_degree=3, oracle="abm"), 0.1),
    "small_10000x8": (lambda: two_class_tabular(), dict(psi=0.1), 0.002),
}
SPEED_RATIO_MIN = 10.0
BUSY_SLOWDOWN_MAX = 2.0


def _median_fit_time(X, kwargs: dict, repeats: int) -> tuple[float, list[float], OAVI, float]:
    """Median wall time, all wall times, the last model, and the median CPU time of this
    process (all its threads) per fit: on a shared machine the wall time also counts the
    time the scheduler gave to others."""
    times, cpu, model = [], [], None
    for _ in range(repeats):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        model = OAVI(**kwargs).fit(X)
        times.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
    return float(np.median(times)), times, model, float(np.median(cpu))


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def bench_cases(names: list[str], repeats: int = 3, reference: bool = True, device: str = "cpu",
                skip_reference: tuple[str, ...] = ()) -> dict:
    """Time the named cases (see the module docstring); returns ``{name: record}``. Brute
    force is skipped for the cases in ``skip_reference`` (recorded as such)."""
    out = {}
    for name in names:
        make, kwargs, target = CASES[name]
        kwargs = dict(kwargs, device=device)
        X = make()
        small = name.startswith("small")
        reps = max(repeats, 21) if small else repeats
        load = _load()
        OAVI(**kwargs).fit(X[: min(200, X.shape[0])])  # warm-up
        med, times, model, cpu = _median_fit_time(X, kwargs, reps)
        row = {
            "shape": list(X.shape), "parameters": {k: v for k, v in kwargs.items() if k != "device"},
            "load_average_1min_before": load, "repeats": reps, "fit_time_s": med, "fit_times_s": times,
            "fit_cpu_time_s": cpu,
            "n_threads_used": int(model.n_threads_), "n_O": int(model.O_exponents_.shape[0]),
            "n_G": int(model.n_generators_), "generators_by_degree": np.bincount(model.degrees_).tolist(),
            "n_border_terms": int(model.n_border_terms_), "n_bound_active": int(model.n_bound_active_),
            "n_oracle_calls": int(model.n_oracle_calls_), "n_oracle_iterations": int(model.n_oracle_iterations_),
            "oracle_time_s": float(model.oracle_time_s_), "max_oracle_gap": float(model.max_oracle_gap_),
            "target_fit_time_s": target,
        }
        met = {"fit_time": med <= target, "fit_cpu_time": cpu <= target}
        if small:
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.5)
                row["busy_fit_time_s"], row["busy_fit_times_s"], _, row["busy_fit_cpu_time_s"] = \
                    _median_fit_time(X, kwargs, reps)
            finally:
                busy.kill()
                busy.wait()
            row["busy_slowdown"] = row["busy_fit_time_s"] / med
            met["busy_slowdown"] = row["busy_slowdown"] <= BUSY_SLOWDOWN_MAX
        if reference and name not in skip_reference:
            ref_kwargs = {k: v for k, v in kwargs.items() if k not in ("psi", "max_degree", "tau", "oracle")}
            tic, cpu_tic = time.perf_counter(), time.process_time()
            ref = brute_force_fit(X, psi=kwargs["psi"], max_degree=kwargs.get("max_degree", 10),
                                  tau=kwargs.get("tau"), oracle=kwargs.get("oracle", "ihb"), **ref_kwargs)
            row["reference_time_s"] = time.perf_counter() - tic
            row["reference_cpu_time_s"] = time.process_time() - cpu_tic
            row["speed_ratio"] = row["reference_time_s"] / med
            row["speed_ratio_cpu_time"] = row["reference_cpu_time_s"] / max(cpu, 1e-12)
            row["identical_decisions"] = _same_decisions(model, ref)
            if row["identical_decisions"]:
                gap = model.coefficients_ - ref.coefficients_
                row["max_coefficient_difference"] = float(np.abs(gap).max(initial=0.0))
            met["speed_ratio"] = row["speed_ratio"] >= SPEED_RATIO_MIN
            met["identical_decisions"] = row["identical_decisions"]
        else:
            row["reference"] = ("skipped (--skip-reference): brute_force_fit takes minutes of CPU time on this case"
                                if reference else "skipped (--no-case-reference)")
        row["targets_met"] = met
        out[name] = row
        sys.stdout.write(f"{name}: {med:.4f} s, |O| = {row['n_O']}, |G| = {row['n_G']}, "
                         f"ratio {row.get('speed_ratio', float('nan')):.1f}, met {met}\n")
        sys.stdout.flush()
    return out


def _oavi_command(args: argparse.Namespace) -> dict:
    names = _case_names(args.cases)
    peer = {"peer": _peer_section(args)} if args.peer is not None else {}  # first: a wrong --peer stops at once
    result = bench_oavi(
        classes=args.classes, points=args.points, dim=args.dim, psi=args.psi, tau=args.tau,
        max_degree=args.max_degree, latent_dim=args.latent_dim, map_degree=args.map_degree,
        noise=args.noise, seed=args.seed, reference=not args.no_reference, device=args.device,
    )
    if names:
        tic = time.perf_counter()
        skip = tuple(n for n in args.skip_reference.split(",") if n)
        result["cases"] = bench_cases(names, repeats=args.repeats, reference=not args.no_case_reference,
                                      device=args.device, skip_reference=skip)
        result["cases_note"] = ("float64 on CPU; fit_time_s is the median of the repeats; reference_time_s one "
                                "brute_force_fit; the machine may have been shared with other CPU-bound work "
                                "(see load_average_1min_before and metadata.machine_note)")
        result["metadata"]["cases_wall_time_s"] = time.perf_counter() - tic
    return {**result, **peer}


def _peer_section(args: argparse.Namespace) -> dict:
    """The comparison with the authors' OAVI, in a process of its own (oavi_peer imports this module)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        done = subprocess.run([sys.executable, "-m", "vinet_utils.experiments.oavi_peer", str(args.peer), "--out",
                               str(out), "--cases", args.peer_cases, "--repeats", str(args.repeats)]
                              + (["--threads", str(args.threads)] if args.threads else []),
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # this checkout's code
        if done.returncode:
            raise SystemExit(f"--peer: the comparison with the peer failed (exit status {done.returncode})")
        return json.loads(out.read_text())


def _case_names(spec: str) -> list[str]:
    """The named cases that ``--cases`` asks for ("all", "none" or a comma list), checked
    before any work."""
    names = [] if spec == "none" else list(CASES) if spec == "all" else spec.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {unknown}; choose from all, none or {list(CASES)}")
    return names


# ------------------------------------------------------- A/B against a commit
AB_SLOWER = 1.10  # a ratio above this counts as slower; below it, two runs of one code differ by noise


def bench_oavi_ab(baseline: str, cases: list[str], rounds: int = 3, repeats: int = 3, threads: int = 2) -> dict:
    """Time the named cases with this checkout's OAVI and with the OAVI of ``baseline`` (a
    git revision), each side in a process of its own, ``rounds`` times, the order of the
    two sides swapped every round (so a drift of the machine's speed hits both alike).

    Both sides run on one machine in the same minutes, so their ratio holds where
    absolute times (another machine, another day) do not: it is how a change is shown
    not to slow a case down. Per case and side: the fastest fit of all rounds and the
    median of the rounds' medians. Another process can only add time to a fit, so the
    ratio of the fastest fits (current / baseline) is the one judged; above
    ``AB_SLOWER`` the case counts as slower."""
    times = {side: {name: [] for name in cases} for side in ("baseline", "current")}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"baseline": Path(tmp) / "baseline", "current": REPO_ROOT}
        roots["baseline"].mkdir()
        archive = subprocess.run(["git", "archive", baseline, "vinet_utils"], cwd=REPO_ROOT, check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(roots["baseline"], filter="data")
        for r in range(rounds):
            for side in ("baseline", "current") if r % 2 == 0 else ("current", "baseline"):
                out = Path(tmp) / f"{side}-{r}.json"
                # python -m puts the working directory first on sys.path: each side imports its own
                # code; a revision from before the subpackages has its benchmark at vinet_utils.bench
                module = ("vinet_utils.experiments.bench"
                          if (roots[side] / "vinet_utils" / "experiments").is_dir() else "vinet_utils.bench")
                subprocess.run([sys.executable, "-m", module, "--threads", str(threads), "oavi",
                                "--classes", "1", "--points", "100", "--dim", "4", "--latent-dim", "2",
                                "--no-reference", "--cases", ",".join(cases), "--repeats", str(repeats),
                                "--no-case-reference", "--out", str(out)],
                               cwd=roots[side], env={**os.environ, "PYTHONPATH": str(roots[side])}, check=True,
                               capture_output=True)
                for name, row in json.loads(out.read_text())["cases"].items():
                    times[side][name].append(row["fit_times_s"])
    rows = {name: _ab_row(times["baseline"][name], times["current"][name]) for name in cases}
    for name, row in rows.items():
        sys.stdout.write(f"{name}: fastest fit {row['baseline_fastest_s']:.4f} s (baseline), "
                         f"{row['current_fastest_s']:.4f} s (current), ratio {row['ratio']:.2f}\n")
    return {"benchmark": "oavi-ab", "baseline": baseline, "rounds": rounds, "repeats": repeats,
            "slower_above": AB_SLOWER, "metadata": run_metadata("cpu"), "cases": rows,
            "summary": {"slower": sorted(n for n, r in rows.items() if r["slower"]),
                        "ratio": {n: round(r["ratio"], 3) for n, r in rows.items()}}}


def _ab_row(baseline: list[list[float]], current: list[list[float]]) -> dict:
    """One case of the A/B from each side's fit times, one list per round."""
    row = {}
    for side, rounds in (("baseline", baseline), ("current", current)):
        row[f"{side}_fastest_s"] = float(min(min(r) for r in rounds))
        row[f"{side}_median_s"] = float(np.median([np.median(r) for r in rounds]))
        row[f"{side}_rounds_s"] = rounds
    row["ratio"] = row["current_fastest_s"] / row["baseline_fastest_s"]
    row["ratio_of_medians"] = row["current_median_s"] / row["baseline_median_s"]
    row["slower"] = row["ratio"] > AB_SLOWER
    return row


def _ab_command(args: argparse.Namespace) -> dict:
    names = _case_names(args.cases)
    if not names:
        raise SystemExit("--cases: the A/B needs at least one case")
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{args.baseline}^{{commit}}"],
                           cwd=REPO_ROOT, capture_output=True)
    if known.returncode:
        raise SystemExit(f"--baseline: {args.baseline!r} is not a commit of this repository")
    return bench_oavi_ab(args.baseline, names, rounds=args.rounds, repeats=args.repeats,
                         threads=torch.get_num_threads())


# ----------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The ``python -m vinet_utils.experiments.bench`` argument parser, one subcommand per benchmark."""
    prog = "python -m vinet_utils.experiments.bench"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
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
    p.add_argument("--cases", default="all", help="named cases: all, none, or a comma list of " + ",".join(CASES))
    p.add_argument("--repeats", type=int, default=3, help="fits per named case (median; at least 21 for small)")
    p.add_argument("--no-case-reference", action="store_true", help="skip brute force on the named cases")
    p.add_argument("--skip-reference", default="", help="comma list of named cases to time without brute force")
    p.add_argument("--machine-note", default="", help="free text recorded in metadata (e.g. other load)")
    p.add_argument("--peer", type=Path, default=None, help="source tree of the authors' OAVI (avi_at_scale)")
    p.add_argument("--peer-cases", default="all", help="cases against the peer: all or a comma list")
    p.set_defaults(func=_oavi_command)

    p = sub.add_parser("oavi-ab", help="the named cases, this checkout against a git revision, alternating")
    p.add_argument("--baseline", required=True, help="git revision whose OAVI is the baseline")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/oavi_ab.json"))
    p.add_argument("--cases", default="all", help="all, or a comma list of " + ",".join(CASES))
    p.add_argument("--rounds", type=int, default=3, help="alternations of the two sides")
    p.add_argument("--repeats", type=int, default=3, help="fits per case in each round")
    p.add_argument("--machine-note", default="", help="free text recorded in metadata (e.g. other load)")
    p.set_defaults(func=_ab_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = args.func(args)
    if args.machine_note:
        result["metadata"]["machine_note"] = args.machine_note
    result["command"] = "python -m vinet_utils.experiments.bench " + " ".join(
        shlex.quote(a) for a in public_arguments(sys.argv[1:] if argv is None else argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    sys.stdout.write(f"wrote {args.out}\n{json.dumps(result['summary'], indent=2)}\n")
    if result["benchmark"] == "oavi" and "cases" in result:
        met = {name: row["targets_met"] for name, row in result["cases"].items()}
        sys.stdout.write(f"{json.dumps(met, indent=2)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
