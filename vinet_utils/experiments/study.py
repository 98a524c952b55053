"""The base-quality study: does VI-Net's margin over the heads without polynomials grow
as the base network gets better?

    python -m vinet_utils.experiments.study            # figure and results file from the runs' results
    python -m vinet_utils.experiments.study run        # train the bases and run notebooks 01-05 on each
    python -m vinet_utils.experiments.study run --bases w0.25-e6

Up to four bases: the cpu profile's ResNet-18 at width 0.25 trained for 6, 12 and 18
epochs (``results/cpu/cifar10-resnet18[-<name>]``, on 2 CPU cores), and the paper
profile's ResNet-18 at width 1.0 (``results/paper/cifar10-resnet18``, trained on a GPU
with ``make reproduce PROFILE=paper``: ``study run`` does not train it), its heads at
the ``cpu`` search's settings. On each, notebooks
02-05 put every head at every cut with the base frozen (``seeds`` trainings each);
where a run also fine-tuned heads end to end, or trained the paper-size head, those
numbers come along.

The summary reads only results files: for each base and cut, VI-Net's accuracy, the
best head without a polynomial layer (linear, projection + linear, MLP) and the margin
between them, with the 95% t interval of that difference over the seeds. A straight line through the
width-0.25 bases' margins against baseline accuracy, per cut, is read off at the
paper's base (92.89%) with its standard error: a trend over three bases, not a law,
and the width-1.0 base is the measurement it can be checked against. Writes
``results/study/study.json`` and ``results/study/study.png``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from vinet_utils.workflow import params as P
from vinet_utils.workflow.pipeline import heads_source
from vinet_utils.common.paper import paper_row
from vinet_utils.common.results import REPO_ROOT, environment, read_json, write_json
from vinet_utils.report.evidence import margin
from vinet_utils.report.paper_table import VARIANTS, best_without_poly, head_row

#: The study's bases: name -> the ``--set`` values of its run (over the cpu profile,
#: or over the profile named by "profile"). "cpu" is the cpu profile's own run
#: (``make reproduce PROFILE=cpu``), taken as it is. The other width-0.25 bases train two
#: heads fewer per cut (seeds=2, no pooled-map heads), and the weak one, ready first,
#: also carries the paper-size head and the end-to-end runs (the cpu profile's
#: end-to-end budget: 2 epochs at lr 0.02, one seed per head). "paper" is the paper
#: profile's run as it is, which carries both as well; it needs a GPU.
BASES = {
    "w0.25-e6": {"epochs": 6, "run_name": "w0.25-e6", "seeds": 2, "gap_heads": False,
                 "budget_head_params": 130_000, "unfreeze_base": True},
    "w0.25-e12": {"epochs": 12, "run_name": "w0.25-e12", "seeds": 2, "gap_heads": False},
    "cpu": {},
    "paper": {"profile": "paper"},
}
PROFILE, DATASET, ARCH = "cpu", "cifar10", "resnet18"
OUT = REPO_ROOT / "results" / "study"
PAPER_BASE_ACC = paper_row(DATASET, ARCH, "baseline")["acc"]


#: The bases ``study run`` trains on a CPU (the paper profile's base needs a GPU).
CPU_BASES = tuple(b for b in BASES if "profile" not in BASES[b])


def base_profile(name: str) -> str:
    return BASES[name].get("profile", PROFILE)


def run_folder(name: str, results_dir=None) -> Path:
    return P.run_path(results_dir, base_profile(name), DATASET, ARCH,
                      BASES[name].get("run_name"))


def run(bases=CPU_BASES, results_dir=None) -> None:
    """Train each base (or reuse it) and run notebooks 01-05 on it."""
    from vinet_utils.workflow.pipeline import STAGES, run as run_pipeline

    unknown = [b for b in bases if b not in CPU_BASES]
    if unknown:
        raise SystemExit(f"--bases must be drawn from {', '.join(CPU_BASES)} (got {unknown}; "
                         f"the paper base is make reproduce PROFILE=paper, on a GPU)")
    for name in bases:
        print(f"=== study base {name}: {BASES[name] or 'the cpu profile'}", flush=True)
        run_pipeline(PROFILE, DATASET, ARCH, STAGES[:5], results_dir, BASES[name])


def base_summary(run: Path) -> dict:
    """One base's numbers per cut, from its ``01_baseline.json`` and ``05_ablations.json``."""
    base = read_json(run / "01_baseline.json")
    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    pool = next(r["pool"] for r in rows if r["head"] == "VI-Net")
    cuts = {}
    for v in VARIANTS:
        vi = head_row(rows, v, "VI-Net", "frozen")
        if vi is None:
            continue
        other = best_without_poly(rows, v, "frozen", pool)
        gap, se = margin(vi, other)
        cut = {"vinet_acc": vi["acc"], "vinet_acc_std": vi.get("acc_std"),
               "vinet_seeds": len(vi.get("acc_per_seed") or []),
               "best_without_poly": other["head"], "best_without_poly_acc": other["acc"],
               "best_without_poly_acc_std": other.get("acc_std"),
               "margin": gap, "margin_ci": se,
               "vinet_minus_baseline": vi["acc"] - base["metrics"]["test_acc"]}
        rm = head_row(rows, v, "random monomials", "frozen")
        flat = head_row(rows, v, f"linear ({pool})", "frozen")
        if flat is not None:  # the paper's own ablation: VI-Net against the linear head
            cut["linear_margin"], cut["linear_margin_ci"] = margin(vi, flat)
        if rm is not None and flat is not None:
            cut.update(random_monomials_acc=rm["acc"], linear_acc=flat["acc"],
                       random_monomials_saturated=rm.get("projection_saturated"),
                       random_monomials_variables=rm.get("monomial_variables"),
                       vinet_saturated=vi.get("projection_saturated"))
        budget = head_row(rows, v, "VI-Net (paper budget)", "frozen")
        if budget is not None:  # against the best head without polynomials of either size
            rival = max([other] + [r for r in [head_row(rows, v, "MLP (paper budget)", "frozen")]
                                   if r is not None], key=lambda r: r["acc"])
            cut.update(budget_vinet_acc=budget["acc"], budget_vinet_params=budget["params"],
                       budget_generators=budget.get("generators"),
                       budget_rival=rival["head"], budget_rival_acc=rival["acc"],
                       budget_margin=budget["acc"] - rival["acc"])
        vi_e2e = head_row(rows, v, "VI-Net", "end to end")
        other_e2e = best_without_poly(rows, v, "end to end", pool)
        if vi_e2e is not None and other_e2e is not None:
            cut.update(e2e_vinet_acc=vi_e2e["acc"], e2e_best_without_poly=other_e2e["head"],
                       e2e_best_without_poly_acc=other_e2e["acc"],
                       e2e_margin=vi_e2e["acc"] - other_e2e["acc"], e2e_seeds=vi_e2e.get("seeds"))
        cuts[v] = cut
    params = read_json(run / "05_ablations.json")["params"]
    return {"run": P.shown(run), "profile": base["params"]["profile"],
            "train_projection": params.get("train_projection"),
            "rival_settings": params.get("rival_settings"),
            "heads_from": heads_source(base["params"]["profile"]),  # a profile's, not a run's
            "holdout_frac": params.get("holdout_frac"),
            "baseline_acc": base["metrics"]["test_acc"],
            "epochs": base["params"]["epochs"], "width": base["params"]["width"],
            "device_name": base.get("device_name"),
            "baseline_commit": base.get("git_commit"),
            "ablations_commit": read_json(run / "05_ablations.json").get("git_commit"),
            "cuts": cuts}


def trend(xs: list[float], ys: list[float], at: float) -> dict | None:
    """Least-squares line ``y = a + b x`` and its value at ``x = at`` with the standard
    error of that mean prediction (None with fewer than three points)."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    s2 = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / (n - 2)
    se = math.sqrt(s2 * (1 / n + (at - mx) ** 2 / sxx))
    return {"slope_per_point": b, "intercept": a, "at": at, "predicted": a + b * at,
            "predicted_se": se, "points": n}


def summarize(results_dir=None, command: str = "") -> dict:
    """Collect every base that has finished notebooks 01-05, fit the trends, write
    ``study.json`` and ``study.png``; returns the summary."""
    from vinet_utils.report import figures as plots

    bases = {}
    for name in BASES:
        run = run_folder(name, results_dir)
        if (run / "01_baseline.json").exists() and (run / "05_ablations.json").exists():
            bases[name] = base_summary(run)
    if not bases:
        raise SystemExit("no study base has finished notebooks 01-05 yet: "
                         "python -m vinet_utils.experiments.study run")
    order = sorted(bases, key=lambda b: bases[b]["baseline_acc"])
    # the trend's bases: one width, and one protocol (the cpu base's: held-out validation
    # and a search of its own, or not), so that no line joins bases trained differently
    present = bool(bases.get("cpu", {}).get("holdout_frac"))
    family = [b for b in order if bases[b]["profile"] == PROFILE
              and bool(bases[b].get("holdout_frac")) == present]
    trends = {}
    for v in VARIANTS:
        pts = [(bases[b]["baseline_acc"], bases[b]["cuts"][v]["margin"]) for b in family
               if v in bases[b]["cuts"]]
        t = trend([x for x, _ in pts], [y for _, y in pts], PAPER_BASE_ACC) if pts else None
        if t is not None:
            trends[v] = t
    out = {"command": command or "python -m vinet_utils.experiments.study",
           "profile": PROFILE, "dataset": DATASET, "arch": ARCH,
           "paper_baseline_acc": PAPER_BASE_ACC,
           "paper_vinet_minus_baseline": {v: paper_row(DATASET, ARCH, v)["acc"] - PAPER_BASE_ACC
                                          for v in VARIANTS},
           "bases": {b: bases[b] for b in order}, "trend_bases": family,
           "margin_trend": trends,
           "made_with": environment("cpu")}
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "study.json", out)
    plots.study(out, path=OUT / "study.png")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="summary", choices=("summary", "run"))
    ap.add_argument("--bases", nargs="+", default=list(CPU_BASES),
                    help=f"with run: drawn from {', '.join(CPU_BASES)}")
    ap.add_argument("--results-dir", default=None)
    a = ap.parse_args(argv)
    if a.what == "run":
        run(a.bases, a.results_dir)
    cmd = "python -m vinet_utils.experiments.study"
    out = summarize(a.results_dir, cmd)
    for b, s in out["bases"].items():
        print(f"{b}: baseline {s['baseline_acc']:.2f}%, margin over the best head without "
              "polynomials: " + ", ".join(f"{v} {c['margin']:+.2f}" for v, c in s["cuts"].items()))
    print(f"written: {P.shown(OUT / 'study.json')}, {P.shown(OUT / 'study.png')}")


if __name__ == "__main__":
    sys.exit(main())
