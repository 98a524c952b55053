"""OAVI against the authors' published implementation ("the peer"), case by case.

The peer is github.com/elwirth/avi_at_scale, the code of the OAVI papers (``OracleAVI`` in
``src/feature_transformations/oracle_avi.py``), never copied here: :func:`compare_case` writes
a runner script and the points (``.npy``) to a temporary folder and runs each side in a fresh
Python process, the peer with its tree on ``PYTHONPATH``; ours runs in a subprocess too, so
both start alike (same thread settings, same warm-up fit on the first 200 points, same timer
around ``fit`` alone). Each side reports the median wall time of ``repeats`` fits, the page
faults per fit, and its O terms and leading terms of G as exponent tuples in the user's
variable order; ours also the degree loop's share of each fit.

The peer is written for CuPy and numpy 1.x; the runner runs it on the CPU with numpy (a
``cupy`` module that re-exports numpy, ``float``/``int`` that take one-element arrays as CuPy
does) and passes its option strings interned (it compares them with ``is``). The settings
map as :func:`peer_parameters` says. Both sides get the same array; neither rescales it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vinet_utils.common.results import REPO_ROOT
from vinet_utils.experiments.bench import CASES as BENCH_CASES, latent_like, two_class_tabular
from vinet_utils.oavi import default_tau

#: A bare git copy of the peer, where its folder is an extract without history (optional).
PEER_MIRROR = os.environ.get("VINET_OAVI_PEER_MIRROR")
HOW_TO_GET = ("Get the peer outside this repository, for example 'git clone "
              "https://github.com/elwirth/avi_at_scale <folder>' (or extract a snapshot there with "
              "'git --git-dir=<bare copy> archive HEAD | tar -x -C <folder>'), and pass that folder "
              "as --peer. It needs numpy only: CuPy is replaced by numpy in the runner.")
_ENTRY = Path("src") / "feature_transformations" / "oracle_avi.py"


def z_case() -> np.ndarray:
    """The issue's Z data: 1000 x 32, 24 smooth functions of 3 latent Gaussians and the
    squares of the first 8 of them, plus noise of standard deviation 1e-3."""
    rng = np.random.default_rng(12345)
    A = np.tanh(rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 24)))
    X = np.c_[A, A[:, :8] ** 2]
    X += 1e-3 * rng.normal(size=X.shape)
    return X


def tiny_case() -> np.ndarray:
    """200 x 4 points for a quick check: ``x1 = x0^2`` and ``x3 = x0 * x2`` up to small noise."""
    rng = np.random.default_rng(3)
    t, s = rng.uniform(-1, 1, size=(2, 200))
    return np.c_[t, t ** 2, s, t * s] + 1e-3 * rng.normal(size=(200, 4))


_ISSUE = dict(psi=0.005, tau=1000.0, max_degree=3, ordering="deglex")
RAW = "none: the array as built, the same for both sides"
UNIT = "min-max scaled to [0, 1] per feature (two_class_tabular), the same array for both sides"
CASES = {
    # name: (data, our OAVI keyword arguments, transform applied to the data)
    "L64": (lambda: latent_like(64), dict(_ISSUE, oracle="ihb"), RAW),
    "L32": (lambda: latent_like(32), dict(_ISSUE, oracle="ihb"), RAW),
    "Z": (z_case, dict(_ISSUE, oracle="ihb"), RAW),
    "L32_default_tau": (BENCH_CASES["L32_default_tau"][0], dict(BENCH_CASES["L32_default_tau"][1],
                                                                oracle="ihb", ordering="deglex"), RAW),
    "ABM_L32": (lambda: latent_like(32), dict(_ISSUE, oracle="abm"), RAW),
    "ABM_Z": (z_case, dict(_ISSUE, oracle="abm"), RAW),
    # the peer's published setting for tabular data: tau 1000, max degree 10, Pearson ordering
    "tabular_9000x8_pearson": (lambda: two_class_tabular(points=9000),
                               dict(psi=0.005, tau=1000.0, max_degree=10, oracle="ihb", ordering="pearson"), UNIT),
}
#: Cases timed with fewer fits than ``--repeats``: the peer takes minutes per fit there.
FEWER_REPEATS = {"L32_default_tau": 1}
#: Each side fits until its fits add up to this many seconds (ours decides the count, the peer
#: repeats it), and at most :data:`MAX_REPEATS` times.
MIN_SECONDS = 1.0
MAX_REPEATS = 400
EXTRA_CASES = {"tiny": (tiny_case, dict(_ISSUE, oracle="ihb"), RAW),
               "tiny_pearson": (tiny_case, dict(_ISSUE, oracle="ihb", ordering="pearson"), RAW)}


def peer_parameters(ours: dict) -> dict:
    """The peer's ``OracleAVI`` keyword arguments for our ``OAVI`` keyword arguments: psi, max_degree
    and tau the same (tau None resolved); oracle "ihb" -> "CG" with inverse Hessian boosting "full"
    (CG-OAVI-IHB), "bpcg" -> "BPCG", "abm" -> "ABM"; ordering "rev_pearson" -> "rev pearson"; the
    peer's Frank-Wolfe gap tolerance eps (relative to psi) = our cg_tol / psi (0.1 by default)."""
    psi, tau = float(ours["psi"]), ours.get("tau")
    tau = default_tau(psi) if tau is None else float(tau)
    if not np.isfinite(tau):
        raise ValueError("the peer needs a finite tau (its oracle works on the l1 ball of radius tau - 1)")
    oracle = {"ihb": ("CG", "full"), "bpcg": ("BPCG", "false"), "abm": ("ABM", "false")}[ours.get("oracle", "ihb")]
    ordering = {"deglex": "deglex", "pearson": "pearson", "rev_pearson": "rev pearson"}[ours.get("ordering", "deglex")]
    cg_tol = ours.get("cg_tol") or psi / 10
    return dict(psi=psi, tau=tau, max_degree=int(ours.get("max_degree", 10)), oracle_type=oracle[0],
                inverse_hessian_boost=oracle[1], term_ordering_strategy=ordering, eps=cg_tol / psi,
                max_iterations=int(ours.get("cg_max_iter", 10_000)))


RUNNER = r'''
import builtins, json, resource, sys, time
import numpy as np

def ours(cfg):
    from vinet_utils.oavi import OAVI
    read = lambda m: (m.O_exponents_.tolist(), m.G_leading_exponents_.tolist(), m.variable_order_.tolist(),
                      {"threads_used": m.n_threads_, "border_terms": m.n_border_terms_})
    return (lambda X: OAVI(**cfg["ours"]).fit(X)), read

def peer(cfg):
    from src.feature_transformations.oracle_avi import OracleAVI
    one = lambda x: x.item() if isinstance(x, np.ndarray) else x   # CuPy converts 1-element arrays
    for name, module in list(sys.modules.items()):
        if name.startswith("src."):
            module.float = lambda x=0.0: builtins.float(one(x))
            module.int = lambda x=0, *base: builtins.int(one(x), *base)
    kw = {k: sys.intern(v) if isinstance(v, str) else v for k, v in cfg["peer"].items()}
    def fit(X):
        model = OracleAVI(**kw)
        model.fit(X)
        return model
    def read(m):
        perm = [int(i) for i in m.term_ordering]
        # the peer's terms are columns over its variables, its variable i being the user's perm[i]
        user = lambda T: [] if T is None else np.rint(np.asarray(T)[np.argsort(perm)].T).astype(int).tolist()
        switched = m.oracle_type != kw["oracle_type"]  # IHB hit the l1 bound: BPCG for the rest of the fit
        return user(m.sets_avi.O_array_terms), user(m.sets_avi.leading_terms), perm, {"switched_to_bpcg": switched}
    return fit, read

side, config, data, out = sys.argv[1:]
cfg = json.load(open(config))
X = np.load(data)
fit, read = (ours if side == "ours" else peer)(cfg)
fit(X[:min(200, len(X))])  # warm-up
times, loops = [], []
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
while len(times) < cfg["repeats"] or (sum(times) < cfg["min_seconds"] and len(times) < cfg["max_repeats"]):
    tic = time.perf_counter()
    model = fit(X)
    times.append(time.perf_counter() - tic)
    loops.append(getattr(model, "loop_time_s_", None))  # ours: the degree loop's share
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(times)
O, G, order, extra = read(model)
json.dump(dict(times=times, loop_times=loops, page_faults_per_fit=faults, O=O, G=G, variable_order=order, **extra),
          open(out, "w"))
'''
CUPY_SHIM = "from numpy import *\nfrom numpy import linalg, random, ndarray, newaxis, asarray as asnumpy\n"


def check_peer(peer_dir) -> Path:
    """The peer's source tree, or ``SystemExit`` if ``peer_dir`` does not hold it."""
    peer_dir = Path(peer_dir).resolve()
    if not (peer_dir / _ENTRY).is_file():
        raise SystemExit(f"--peer: {peer_dir} has no {_ENTRY}; {HOW_TO_GET}")
    return peer_dir


def peer_commit(peer_dir) -> str:
    """The peer's commit: HEAD of its folder if a clone, else of the mirror, else "unknown"."""
    git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()
    if git("-C", str(peer_dir), "rev-parse", "--show-toplevel") == str(Path(peer_dir).resolve()):
        return git("-C", str(peer_dir), "rev-parse", "HEAD")
    return (git(f"--git-dir={PEER_MIRROR}", "rev-parse", "HEAD") if PEER_MIRROR else "") or "unknown"


def decisions_agree(ours: dict, peer: dict) -> dict:
    """Compare two fits' O terms and leading terms of G as sets of exponent tuples (both in the
    user's variable order); lists a few terms found by one side only."""
    row = {}
    for key, label in (("O", "O"), ("G", "G_leading")):
        a, b = ({tuple(map(int, t)) for t in side[key]} for side in (ours, peer))
        row[f"same_{label}"] = a == b
        row[f"n_{label}"] = {"ours": len(a), "peer": len(b)}
        if a != b:
            row[f"{label}_only_ours"] = [list(t) for t in sorted(a - b)[:5]]
            row[f"{label}_only_peer"] = [list(t) for t in sorted(b - a)[:5]]
    row["decisions_agree"] = row["same_O"] and row["same_G_leading"]
    return row


def _run(side: str, tmp: Path, cfg: dict, env: dict, timeout: float) -> dict | None:
    """One side's run (warm-up and timed fits); ``None`` if it took longer than ``timeout`` seconds."""
    (tmp / "config.json").write_text(json.dumps(cfg))
    out, args = tmp / f"{side}.json", [str(tmp / f) for f in ("runner.py", "config.json", "X.npy")]
    try:
        done = subprocess.run([sys.executable, "-W", "ignore", args[0], side, *args[1:], str(out)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        raise RuntimeError(f"{side} run failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def compare_case(peer_dir, X: np.ndarray, ours: dict, repeats: int = 3, threads: int | None = None,
                 timeout: float = 1800.0, min_seconds: float = MIN_SECONDS) -> dict:
    """Fit ``X`` with our OAVI (keyword arguments ``ours``) and with the peer, each in its own
    process; returns times (median of the fits), the ratio peer / ours and the agreement of the
    decisions. Ours fits ``repeats`` times, and more while its fits add up to less than
    ``min_seconds`` (at most :data:`MAX_REPEATS`); the peer then fits as many times, so a case
    of milliseconds is timed over many fits on both sides, not three. ``threads`` caps the
    BLAS/OpenMP threads of both processes; within it our OAVI chooses its own (one for small
    fits, the idle cores for large ones; recorded as ``ours_threads_used``). A side that runs
    past ``timeout`` seconds is stopped and recorded with no time (``None``)."""
    peer_dir = check_peer(peer_dir)
    cfg = {"ours": ours, "peer": peer_parameters(ours), "repeats": int(repeats), "min_seconds": float(min_seconds),
           "max_repeats": MAX_REPEATS}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if threads:
        env.update({v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    with tempfile.TemporaryDirectory(prefix="oavi_peer_") as name:
        tmp = Path(name)
        (tmp / "runner.py").write_text(RUNNER)
        (tmp / "shim" / "cupy").mkdir(parents=True)  # the peer's "import cupy as cp" gets numpy
        (tmp / "shim" / "cupy" / "__init__.py").write_text(CUPY_SHIM)
        np.save(tmp / "X.npy", np.ascontiguousarray(X, dtype=np.float64))
        load = os.getloadavg()[0]
        mine = _run("ours", tmp, cfg, dict(env, PYTHONPATH=str(REPO_ROOT)), timeout)
        fits = len(mine["times"]) if mine else int(repeats)  # the peer fits as often as ours did
        theirs = _run("peer", tmp, dict(cfg, repeats=fits, min_seconds=0.0), dict(
            env, PYTHONPATH=f"{tmp / 'shim'}{os.pathsep}{peer_dir}"), timeout)
    row = {"shape": list(X.shape), "ours_parameters": ours, "peer_parameters": cfg["peer"], "repeats": fits,
           "min_seconds": float(min_seconds),
           "load_average_1min_before": load, "timeout_s": timeout}
    for side, res in (("ours", mine), ("peer", theirs)):
        row[f"{side}_fit_time_s"] = None if res is None else float(np.median(res["times"]))
        row[f"{side}_fit_times_s"] = None if res is None else res["times"]
        row[f"{side}_page_faults_per_fit"] = None if res is None else res["page_faults_per_fit"]
    if mine is None or theirs is None:
        return dict(row, ratio_peer_over_ours=None, decisions_agree=None,
                    timed_out=[side for side, res in (("ours", mine), ("peer", theirs)) if res is None])
    return dict(row, ratio_peer_over_ours=row["peer_fit_time_s"] / row["ours_fit_time_s"],
                ours_threads_used=mine["threads_used"], ours_loop_times_s=mine["loop_times"],
                ours_outside_loop_s=float(np.median(np.subtract(mine["times"], mine["loop_times"]))),
                ours_border_terms=mine["border_terms"],
                **decisions_agree(mine, theirs), same_variable_order=mine["variable_order"] == theirs["variable_order"],
                peer_switched_to_bpcg=theirs["switched_to_bpcg"])


def case_names(spec: str) -> list[str]:
    """The cases ``spec`` asks for: "all" (the issue's cases) or a comma list (also "tiny", "tiny_pearson")."""
    names = list(CASES) if spec == "all" else [n for n in spec.split(",") if n]
    unknown = [n for n in names if n not in CASES and n not in EXTRA_CASES]
    if unknown:
        raise SystemExit(f"--peer-cases: unknown {unknown}; choose all or of {[*CASES, *EXTRA_CASES]}")
    return names


def peer_section(peer_dir, spec: str = "all", repeats: int = 3, threads: int | None = None,
                 timeout: float = 1800.0, min_seconds: float = MIN_SECONDS) -> dict:
    """The ``peer`` section of ``results/benchmarks/oavi.json``: the named cases on both sides."""
    peer_dir, names, start = check_peer(peer_dir), case_names(spec), time.perf_counter()
    cases = {}
    for name in names:
        make, ours, transform = {**CASES, **EXTRA_CASES}[name]
        times = min(repeats, FEWER_REPEATS.get(name, repeats))
        row = cases[name] = dict(compare_case(peer_dir, make(), ours, times, threads, timeout=timeout,
                                              min_seconds=min_seconds),
                                 data_transform=transform)
        print(f"peer {name}:", ", ".join(f"{k} {row.get(k)}" for k in ("ours_fit_time_s", "peer_fit_time_s",
                                        "ratio_peer_over_ours", "decisions_agree", "timed_out")), flush=True)
    return {
        "implementation": "OracleAVI (CG-OAVI with inverse Hessian boosting; ABM) of the OAVI papers' authors",
        "source": "https://github.com/elwirth/avi_at_scale", "commit": peer_commit(peer_dir), "how_to_get": HOW_TO_GET,
        "how_run": __doc__.split("\n\n", 1)[1].replace("\n", " ").replace("``", ""),
        "settings_mapping": " ".join(peer_parameters.__doc__.split()),
        "timing": "each side in its own fresh Python process on the same .npy array; median wall time of "
                  "'repeats' fits after one warm-up fit on the first 200 points; float64 on CPU; 'repeats' is "
                  f"what ours needed to fit for {min_seconds:g} s (at least the repeats asked, at most "
                  f"{MAX_REPEATS}), and the peer fits as often",
        "threads": threads, "wall_time_s": time.perf_counter() - start, "cases": cases,
        "summary": {n: {k: r[k] for k in ("ratio_peer_over_ours", "decisions_agree")} for n, r in cases.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m vinet_utils.experiments.oavi_peer PEER --out FILE [--cases all] [--repeats 3] [--threads N]``
    writes the peer section as JSON; ``bench oavi --peer`` runs it so (this module imports bench's cases)."""
    parser = argparse.ArgumentParser(prog="python -m vinet_utils.experiments.oavi_peer", description=main.__doc__)
    parser.add_argument("peer", type=Path, help="source tree of avi_at_scale")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--cases", default="all", help="all or a comma list of " + ",".join([*CASES, *EXTRA_CASES]))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads of both sides")
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                        help="fit again while ours has fitted for less than this (the peer as often)")
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(peer_section(args.peer, args.cases, args.repeats, args.threads,
                                                min_seconds=args.min_seconds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
