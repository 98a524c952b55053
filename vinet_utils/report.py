"""The numbers of README.md and of the pages under docs/, generated from the results
files and the profiles.

    python -m vinet_utils.report            # rewrite the generated blocks of every page
    python -m vinet_utils.report --check    # exit 1 if a page disagrees with them

Each block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
on exactly one page (README.md or a ``docs/*.md`` page), and only those lines are
rewritten. ``BLOCKS`` is the one list of block names. A test checks that every page
equals its rendering, so no number on a page can drift from a results file or a
profile.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from .results import REPO_ROOT, read_json

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
RUN = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
STUDY = REPO_ROOT / "results" / "study" / "study.json"
PAPER_RUN = REPO_ROOT / "results" / "paper" / "cifar10-resnet18"
VARIANTS = ("tiny", "small", "medium", "large")


def _f(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _pm(mean, std, nd=2) -> str:
    return _f(mean, nd) + ("" if std is None else f" ± {std:.{nd}f}")


#: The profiles the pages show, in this order.
PROFILES = ("smoke", "cpu", "paper", "cpu-cifar100")
_ARCH = {"resnet18": "ResNet-18", "resnet34": "ResNet-34"}
_DATA = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashionmnist": "Fashion-MNIST"}


def _profile(name: str) -> dict:
    """``params/<name>.yaml`` with its dataset and arch filled in (cifar10, resnet18)."""
    p = yaml.safe_load((REPO_ROOT / "params" / f"{name}.yaml").read_text())
    return {"dataset": "cifar10", "arch": "resnet18", **p}


def where() -> str:
    """The profiles in one small table: data, network, and where the committed run of
    each ran and how long its stages took from scratch (each stage's first run; a run
    may span several pipeline invocations, and one may not have every stage yet)."""
    from .latents import latent_bytes

    mem = read_json(MEMORY) if MEMORY.exists() else None
    lines = ["| profile | data (train / test images) | network | committed run ran on | "
             "stages 01-06 from scratch | host memory, stages 02-05 |",
             "|---|---|---|---|---|---|"]
    for name in PROFILES:
        p = _profile(name)
        n = lambda k: "all" if p.get(k) is None else str(p[k])  # noqa: E731
        run = REPO_ROOT / "results" / name / f"{p['dataset']}-{p['arch']}"
        if (run / "stage_times.json").exists():
            first = {}
            for r in read_json(run / "stage_times.json")["runs"]:
                for stage, secs in r["stage_seconds"].items():
                    first.setdefault(stage, secs)
            on = read_json(run / "01_baseline.json")["device_name"]
            took = f"{sum(first.values()) / 60:.1f} min"
            if len(first) < 6:
                took += f" (stages {', '.join(sorted(s[:2] for s in first))} so far)"
        elif name == "smoke":
            on, took = "no committed run (the notebooks' defaults)", "a few minutes on any CPU"
        else:
            on, took = "no committed run yet", "-"
        images = (p.get("n_train") or 50_000) + (p.get("n_test") or 10_000)
        cuts = list(p.get("variants", VARIANTS)) + list(p.get("ablation_cuts", []))
        gib = latent_bytes(p["arch"], p["width"], cuts, images) / 2**30
        memory = f"{gib:.2f} GiB of latents"
        if (mem and mem["runs"][0]["width"] == p["width"] and p.get("n_train") is None
                and p["arch"] == "resnet18"):
            memory = f"about {mem['full_peak_gb']:.0f} GiB ({gib:.1f} GiB of latents)"
        lines.append(f"| `{name}` | {_DATA[p['dataset']]} ({n('n_train')} / {n('n_test')}) | "
                     f"{_ARCH[p['arch']]}, width {p['width']}, {p['epochs']} epochs | {on} | "
                     f"{took} | {memory} |")
    return "\n".join(lines)


def profiles() -> str:
    """Every profile parameter side by side, read from ``params/*.yaml``."""
    prof = {n: yaml.safe_load((REPO_ROOT / "params" / f"{n}.yaml").read_text()) for n in PROFILES}
    keys = [k for k in prof["paper"] if k != "profile"]
    keys += [k for n in PROFILES for k in prof[n] if k not in keys and k != "profile"]
    lines = ["| parameter | " + " | ".join(PROFILES) + " |", "|---|" + "---|" * len(PROFILES)]

    def show(v):
        if v is None:  # n_train, n_test, throughput_batches: the whole split
            return "all"
        if isinstance(v, list):
            return ", ".join(map(str, v))
        if isinstance(v, dict):  # rival_settings: head: setting=value
            return "; ".join(f"{h}: " + ", ".join(f"{k}={show(x)}" for k, x in s.items())
                             for h, s in v.items())
        return str(v).lower() if isinstance(v, bool) else str(v)

    for k in keys:
        lines.append(f"| `{k}` | " + " | ".join(show(prof[n].get(k, "-")) for n in PROFILES) + " |")
    return "\n".join(lines)


def table(run: Path = RUN) -> str:
    return (run / "table.md").read_text().strip()


def _label(r: dict) -> str:
    """A notebook-05 row's head, with its protocol when that is not the frozen base."""
    return r["head"] + ("" if r.get("protocol", "frozen") == "frozen" else f", {r['protocol']}")


def ablations(run: Path = RUN) -> str:
    """Every head's accuracy per cut (mean ± std over seeds), and VI-Net's margins."""
    rec = read_json(run / "05_ablations.json")["metrics"]
    rows = rec["rows"]
    heads = list(dict.fromkeys(_label(r) for r in rows))
    acc = {(_label(r), r["variant"]): r for r in rows}
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    lines = ["| head (frozen base unless named) | " + " | ".join(variants) + " |",
             "|---|" + "---|" * len(variants)]
    for h in heads:
        cells = [_pm(acc[h, v]["acc"], acc[h, v].get("acc_std")) if (h, v) in acc else "-"
                 for v in variants]
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    flat = next((h for h in heads if h.startswith("linear (") and h != "linear (gap)"), None)
    for other in (flat, "projection + linear"):
        if other and all((other, v) in acc and ("VI-Net", v) in acc for v in variants):
            lines.append(f"| *VI-Net minus {other}* | " + " | ".join(
                f"{acc['VI-Net', v]['acc'] - acc[other, v]['acc']:+.2f}" for v in variants) + " |")
    lines.append(f"| *full ResNet* | {_f(rec['baseline']['acc'])} (all cuts) |"
                 + " |" * (len(variants) - 1))
    return "\n".join(lines)


def verdict(path: Path = STUDY) -> str:
    """The paper's claim and the study's answer: each base, VI-Net's margin over the best
    head without polynomials per cut and protocol, the paper-size head, the trend at
    the paper's base, and the findings in words, all computed from ``study.json``."""
    from .paper import paper_row

    rec = read_json(path)
    bases = rec["bases"]
    paper_base = rec["paper_baseline_acc"]
    paper = {v: paper_row(rec["dataset"], rec["arch"], v) for v in VARIANTS}
    lines = ["**The paper's claim** (its CIFAR-10 / ResNet-18 table): cut at tiny / small / "
             "medium / large, VI-Net keeps "
             + " / ".join(f"{paper[v]['acc']:.2f}" for v in VARIANTS)
             + f"% against the full ResNet's {paper_base:.2f}%, with "
             + " / ".join(f"{paper[v]['total_M']:.2f}M" for v in VARIANTS)
             + f" parameters against {paper_row(rec['dataset'], rec['arch'], 'baseline')['total_M']:.2f}M"
             + ", and its ablation credits the polynomial "
               "features: without them, a linear head on the truncated network falls off.",
             "", "**What we measured**: VI-Net's accuracy minus that of the best head "
                 "*without* a polynomial layer at the same cut (linear on the flattened "
                 "map, projection + linear, or an MLP of VI-Net's size), trained for as "
                 "many epochs on the same latents, in points. In rows marked \"each head as "
                 "searched\", every head trains at the settings its own validation search "
                 "on the 18-epoch width-0.25 base chose, with the same number of trials "
                 "per head (docs/sweep.md); in the others, every head at VI-Net's:", "",
             *_margin_table(rec)]
    names = sorted({c["best_without_poly"] for s in bases.values() for c in s["cuts"].values()})
    lines += ["", f"± is the standard error of the difference of the two means over seeds. The "
                  f"best head without polynomials was, case by case: {', '.join(names)}. "
                  f"End to end: each head's first frozen-base training fine-tuned further with "
                  f"the base unfrozen on augmented images, every head with the same budget. "
                  f"Trend: per cut, a least-squares line through the frozen margins of the "
                  f"{len(rec.get('trend_bases', bases))} width-0.25 bases against baseline "
                  f"accuracy, read at the paper's base, ± the standard error of that "
                  f"prediction: an extrapolation beyond those bases, which the width-1.0 base "
                  f"measures directly.", ""]
    lines += _findings(rec)
    return "\n".join(lines)


C100_RUN = REPO_ROOT / "results" / "cpu-cifar100" / "cifar100-resnet34"


def ablation_summary(run: Path = C100_RUN) -> dict:
    """Per cut of a run's notebook 05, in order of layers removed: every head's frozen
    accuracy and VI-Net's margins (± the standard error of a difference of means) over
    the best head without polynomials and over the linear head on the flattened map,
    beside the paper's VI-Net minus linear at the nearest share of its figure."""
    from .paper import ABLATION, ABLATION_REMOVED_PCT
    from .study import _margin
    from .table import best_without_poly, head_row

    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    cuts = sorted({r["variant"]: r["removed_pct"] for r in rows}.items(), key=lambda kv: kv[1])
    out = []
    for cut, pct in cuts:
        vi = head_row(rows, cut, "VI-Net", "frozen")
        flat = head_row(rows, cut, "linear (flatten)", "frozen")
        other = best_without_poly(rows, cut, "frozen", "flatten")
        near = min(range(1, len(ABLATION_REMOVED_PCT)),
                   key=lambda i: abs(ABLATION_REMOVED_PCT[i] - pct))
        out.append({"cut": cut, "removed_pct": pct, "vinet": vi, "linear": flat, "best": other,
                    "random": head_row(rows, cut, "random monomials", "frozen"),
                    "margin": _margin(vi, other), "over_linear": _margin(vi, flat),
                    "paper_pct": ABLATION_REMOVED_PCT[near],
                    "paper_over_linear": ABLATION["VI-Net"][near]
                    - ABLATION["linear head on the truncated net"][near]})
    return {"cuts": out, "baseline": read_json(run / "01_baseline.json")}


def head_training(params: dict) -> str:
    """How a notebook-05 run trained its heads, in words, from its parameters."""
    rivals = params.get("rival_settings") or {}
    how = "; ".join(f"{h} at " + ", ".join(f"{k}={v}" for k, v in s.items())
                    for h, s in rivals.items())
    return (f"VI-Net with `train_projection={params.get('train_projection')}` at "
            f"`finetune_lr={params.get('finetune_lr')}`"
            + (f", each comparison head as its own protocol search chose ({how})" if how
               else ", every comparison head the same way"))


def cifar100_verdict(run: Path = C100_RUN, table: bool = True) -> str:
    """The CIFAR-100 / ResNet-34 run against the paper's ablation: a table per cut (with
    ``table``) and the findings in words, from the run's results files."""
    from .paper import ABLATION

    if not (run / "05_ablations.json").exists():
        return "*Not run yet: `make reproduce PROFILE=cpu-cifar100`.*"
    summary = ablation_summary(run)
    base, cuts = summary["baseline"], summary["cuts"]
    trained = head_training(read_json(run / "05_ablations.json")["params"])

    def pm(m):
        return f"{m[0]:+.2f}" + ("" if m[1] is None else f" ± {m[1]:.2f}")

    def acc(r):
        return "-" if r is None else f"{r['acc']:.2f}"

    seeds = max(len(c["vinet"].get("acc_per_seed") or []) for c in cuts)
    lines = [f"ResNet-34 at width {base['params']['width']}, {base['params']['epochs']} epochs "
             f"on {base['metrics']['n_train']:,} CIFAR-100 training images, "
             f"{base['metrics']['test_acc']:.2f}% on the {base['metrics']['n_test']:,} test "
             f"images (the paper's width-1.0 ResNet-34: 74.75%); every head trained with the "
             f"base frozen, {seeds} seed{'s' * (seeds > 1)} each; {trained}:", "",
             "| cut | layers removed | VI-Net | linear (flatten) | random monomials | best without poly "
             "| VI-Net - best without poly | VI-Net - linear | paper: VI-Net - linear |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in cuts:
        lines.append(f"| {c['cut']} | {c['removed_pct']:.0f}% | {acc(c['vinet'])} | {acc(c['linear'])} "
                     f"| {acc(c['random'])} | {acc(c['best'])} ({c['best']['head']}) | {pm(c['margin'])} "
                     f"| {pm(c['over_linear'])} | " + (f"{c['paper_over_linear']:+.1f} (at {c['paper_pct']}%)"
                                                     if abs(c["paper_pct"] - c["removed_pct"]) <= 5
                                                     else "- (outside its figure)") + " |")
    span = [c for c in cuts if 15 <= c["removed_pct"] <= 55]
    ahead = [c for c in span if c["over_linear"][0] > 2 * (c["over_linear"][1] or 0)]
    best_ahead = [c for c in cuts if c["margin"][0] > 2 * (c["margin"][1] or 0)]
    gap = [c["random"]["acc"] - c["linear"]["acc"] for c in cuts if c["random"] is not None]
    paper_random = [r - f for r, f in zip(ABLATION["random monomials"][1:],
                                          ABLATION["linear head on the truncated net"][1:])]
    ours = ", ".join(f"{c['over_linear'][0]:+.2f}" for c in span)
    theirs = ", ".join(f"{c['paper_over_linear']:+.1f}" for c in span)
    margins = [c["margin"][0] for c in cuts]
    close = sum(g >= -15 for g in gap)
    lines = lines + [""] if table else [f"Base {base['metrics']['test_acc']:.2f}%, "
                                         f"{seeds} seeds per head, base frozen; {trained}:"]
    lines += [f"- **Against the linear head** (the paper's comparison), between "
                  f"{min(c['removed_pct'] for c in span):.0f}% and "
                  f"{max(c['removed_pct'] for c in span):.0f}% of layers removed: VI-Net is ahead "
                  f"by more than two standard errors at {len(ahead)} of {len(span)} cuts "
                  f"(margins {ours}; the paper's figure: {theirs}).",
              f"- **Against the best head without polynomials**: VI-Net is ahead by more than "
              f"two standard errors at {len(best_ahead)} of {len(cuts)} cuts; its margins run "
              f"from {min(margins):+.2f} to {max(margins):+.2f}.",
              f"- **Random monomials** minus the linear head: {min(gap):+.2f} to {max(gap):+.2f} "
              f"points across the cuts, within 15 points at {close} of {len(gap)} (the paper's "
              f"figure: {min(paper_random):+.1f} to {max(paper_random):+.1f})."]
    return "\n".join(lines)


STAGE_FILES = {"01_baseline_training": "01_baseline.json", "02_latent_features": "02_latents.json",
               "03_vanishing_ideals": "03_ideals.json", "04_vinet_construction": "04_vinet.json",
               "05_evaluation_ablations": "05_ablations.json",
               "06_throughput_table": "06_throughput.json"}


def stage_costs(run: Path = C100_RUN) -> str:
    """Each stage's wall time (its first run, from ``stage_times.json``) and the peak
    host memory its results file recorded, with the machine it ran on."""
    if not (run / "stage_times.json").exists():
        return "*Not run yet.*"
    first, latest = {}, {}
    for r in read_json(run / "stage_times.json")["runs"]:
        for stage, secs in r["stage_seconds"].items():
            first.setdefault(stage, secs)
            latest[stage] = secs
    lines = ["| stage | first run | latest run | peak host memory (latest) | ran on |",
             "|---|---|---|---|---|"]
    for stage, secs in first.items():
        rec = read_json(run / STAGE_FILES[stage]) if (run / STAGE_FILES[stage]).exists() else {}
        mem = rec.get("peak_host_memory_gb")
        lines.append(f"| {stage} | {secs / 60:.1f} min | {latest[stage] / 60:.1f} min | "
                     + ("-" if mem is None else f"{mem:.1f} GiB") + f" | {rec.get('device_name', '-')} |")
    lines.append(f"| all | {sum(first.values()) / 60:.1f} min | "
                 f"{sum(latest.values()) / 60:.1f} min | | |")
    return "\n".join(lines)


def cifar100_table(run: Path = C100_RUN) -> str:
    return (run / "table.md").read_text().strip() if (run / "table.md").exists() else "*Not run yet.*"


def cifar100_findings() -> str:
    """The README's short form of :func:`cifar100_verdict`: its findings, no table."""
    return cifar100_verdict(table=False)


def _margin_table(rec: dict) -> list[str]:
    """The verdict's table: per base and protocol, VI-Net minus the best head without
    polynomials at each cut, then the width-0.25 trend read at the paper's base."""
    def cells(s, key, se_key=None):
        out = []
        for v in VARIANTS:
            c = s["cuts"].get(v, {})
            se = c.get(se_key) if se_key else None
            out.append("-" if key not in c else
                       f"{c[key]:+.2f}" + ("" if se is None else f" ± {se:.2f}"))
        return out

    lines = ["| base (ResNet-18) | baseline | tiny | small | medium | large |",
             "|---|---|---|---|---|---|"]
    for s in rec["bases"].values():
        seeds = max((c["vinet_seeds"] for c in s["cuts"].values()), default=0)
        lines.append(f"| {_base_label(s)}, base frozen ({seeds} seeds) | {s['baseline_acc']:.2f}% | "
                     + " | ".join(cells(s, "margin", "margin_se")) + " |")
        if any("e2e_margin" in c for c in s["cuts"].values()):
            n = max(c.get("e2e_seeds") or 0 for c in s["cuts"].values())
            lines.append(f"| {_base_label(s)}, end to end ({n} seed{'s' * (n > 1)}) | | "
                         + " | ".join(cells(s, "e2e_margin")) + " |")
        if any("budget_margin" in c for c in s["cuts"].values()):
            lines.append(f"| {_base_label(s)}, base frozen, paper-size VI-Net head | | "
                         + " | ".join(cells(s, "budget_margin")) + " |")
    t = rec["margin_trend"]
    if t:
        lines.append(f"| *width-0.25 trend, read at the paper's {rec['paper_baseline_acc']:.2f}%* "
                     "| | " + " | ".join(f"{t[v]['predicted']:+.2f} ± {t[v]['predicted_se']:.2f}"
                                         if v in t else "-" for v in VARIANTS) + " |")
    return lines


def _findings(rec: dict) -> list[str]:
    """The study's findings in words, each number computed from ``rec``: one bullet per
    topic, those without evidence in ``rec`` left out."""
    topics = (_frozen_finding, _linear_finding, _edge_finding, _baseline_finding,
              _top_base_finding, _end_to_end_finding, _budget_findings,
              _random_monomials_finding, _trend_finding)
    return [line for topic in topics for line in topic(rec)]


def _mean_of(trial: dict) -> str:
    """How many trainings a trial's accuracy is the mean of, where more than one."""
    n = len(trial.get("val_acc_per_seed") or [])
    return f", mean of {n} trainings" if n > 1 else ""


def _edge_finding(rec: dict, run: Path = RUN) -> list[str]:
    """What the check beside the cpu base's protocol search found for the flattened
    linear head's learning rate, against VI-Net's best validation trials."""
    path, searched = run / "protocol_edge-linear_flatten.json", run / "protocol.json"
    if not (path.exists() and searched.exists()):
        return []
    m = read_json(path)["metrics"]
    search = read_json(searched)
    vi_rows = search["metrics"]["per_cut"]
    vi_path = run / "protocol_edge-VI-Net.json"
    vi_edge = read_json(vi_path)["metrics"] if vi_path.exists() else {"per_cut": {}}
    parts, ahead = [], []
    for cut, heads in m["per_cut"].items():
        best = max(heads[m["head"]], key=lambda t: t["val_acc"])
        vi = max(vi_rows[cut]["VI-Net"] + vi_edge["per_cut"].get(cut, {}).get("VI-Net", []),
                 key=lambda t: t["val_acc"])
        if best["val_acc"] > vi["val_acc"]:
            ahead.append(cut)
        parts.append(f"{cut}: {best['val_acc']:.2f}% (lr {best['trial']['finetune_lr']:g}"
                     f"{_mean_of(best)}) against {m['search_best'][cut]['val_acc']:.2f}% at the "
                     f"grid's best ({m['search_best'][cut]['label']}) and VI-Net's best trial "
                     f"{vi['val_acc']:.2f}% ({vi['label']}{_mean_of(vi)})")
    spread = ""
    if vi_edge["per_cut"]:  # VI-Net's adopted setting, trained in the search and the check
        cut = next(iter(vi_edge["per_cut"]))
        found = next((t for t in vi_rows[cut]["VI-Net"] if t["trial"] == vi_edge["mode"]), None)
        again = next((t for t in vi_edge["per_cut"][cut]["VI-Net"]
                      if t["trial"]["finetune_lr"] == search["params"]["finetune_lr"]), None)
        if found and again:
            accs = found["val_acc_per_seed"] + again["val_acc_per_seed"]
            spread = (f" The search trained each trial once; VI-Net at its adopted setting "
                      f"gave {' / '.join(f'{a:.2f}' for a in accs)}% at {cut} in {len(accs)} "
                      f"trainings with different seeds.")
    return [f"- **The linear head's grid stopped short** (a check beside the 18-epoch base's "
            f"search, docs/sweep.md; validation accuracy): the flattened linear head at lower "
            f"learning rates than the search tried reaches " + "; ".join(parts) + ". So on "
            f"validation the linear head at its own best rate is ahead of VI-Net at "
            f"{', '.join(ahead) or 'no cut'}, and the test margins over the linear head above, "
            f"measured at the grid's best rate, favour VI-Net: no run here has yet trained the "
            f"linear head at its better rate." + spread]


def _cases(rec: dict, key: str) -> list[tuple[str, str, dict]]:
    """``(base, cut, numbers)`` of every base and cut whose numbers hold ``key``."""
    return [(b, v, c) for b, s in rec["bases"].items() for v, c in s["cuts"].items()
            if c.get(key) is not None]


def _clearly_ahead(c: dict, key: str) -> bool:
    """Whether the margin ``c[key]`` exceeds two of its standard errors ``c[key + "_se"]``."""
    return c.get(f"{key}_se") is not None and c[key] > 2 * c[f"{key}_se"]


def _per_cut(rec: dict, key: str) -> dict:
    """``{cut: [c[key] of every base that has it, in the table's order]}``, cuts with none left out."""
    cases = _cases(rec, key)
    out = {v: [c[key] for _, x, c in cases if x == v] for v in VARIANTS}
    return {v: xs for v, xs in out.items() if xs}


def _frozen_finding(rec: dict) -> list[str]:
    frozen = _cases(rec, "margin")
    behind = [c for _, _, c in frozen if c["margin"] < 0]
    clear = [f"{cut}, {_base_label(rec['bases'][base])}: {c['margin']:+.2f} ± {c['margin_se']:.2f}"
             for base, cut, c in frozen if _clearly_ahead(c, "margin")]
    b, v, best = max(frozen, key=lambda x: x[2]["margin"])
    return [f"- **Base frozen**: VI-Net trails the best head without polynomials in "
            f"{len(behind)} of {len(frozen)} base-and-cut cases; its best margin is "
            f"{best['margin']:+.2f} ({v}, {_base_label(rec['bases'][b])}), and it is ahead by "
            f"more than two standard errors in {len(clear) or 'none'} of them"
            + (f" ({'; '.join(clear)})." if clear else ".")]


def _linear_finding(rec: dict) -> list[str]:
    """VI-Net against the flattened linear head alone, the comparison of the paper's
    ablation, per base and cut."""
    cases = _cases(rec, "linear_margin")
    if not cases:
        return []
    clear = [c for _, _, c in cases if _clearly_ahead(c, "linear_margin")]
    return [f"- **Against the flattened linear head alone** (the paper's ablation), base "
            f"frozen: VI-Net is ahead by more than two standard errors in {len(clear)} of "
            f"{len(cases)} base-and-cut cases. Margins per cut, base by base in the table's "
            f"order: " + "; ".join(f"{v} " + " / ".join(f"{x:+.2f}" for x in xs)
                                 for v, xs in _per_cut(rec, "linear_margin").items()) + "."]


def _baseline_finding(rec: dict) -> list[str]:
    """How far VI-Net falls below its own full network, beside the paper's fall."""
    per_cut = _per_cut(rec, "vinet_minus_baseline")
    if not per_cut:
        return []
    paper = rec["paper_vinet_minus_baseline"]
    return ["- **Against the full network**, base frozen, VI-Net minus its own base in points, "
            "base by base in the table's order: " + "; ".join(
                f"{v} " + " / ".join(f"{d:+.2f}" for d in ds) + f" (the paper: {paper[v]:+.2f})"
                for v, ds in per_cut.items()) + "."]


def _top_base_finding(rec: dict) -> list[str]:
    top = max(rec["bases"].values(), key=lambda s: s["baseline_acc"])
    if top["baseline_acc"] < rec["paper_baseline_acc"]:
        return []
    cuts = top["cuts"]
    paper = [rec["paper_baseline_acc"] + rec["paper_vinet_minus_baseline"][v] for v in cuts]
    return [f"- **At the paper's width and above its base**: {_base_label(top)}, "
            f"{top['baseline_acc']:.2f}% against the paper's {rec['paper_baseline_acc']:.2f}%. "
            f"VI-Net reaches " + " / ".join(f"{c['vinet_acc']:.2f}" for c in cuts.values())
            + "% at " + " / ".join(cuts) + " (the paper: " + " / ".join(f"{x:.2f}" for x in paper)
            + "%), and the best head without polynomials "
            + " / ".join(f"{c['best_without_poly_acc']:.2f}" for c in cuts.values())
            + "%. A stronger base does not open a gap for the polynomial features."]


def _end_to_end_finding(rec: dict) -> list[str]:
    e2e = _cases(rec, "e2e_margin")
    if not e2e:
        return []
    label = lambda b: _base_label(rec["bases"][b])  # noqa: E731
    if any(c["e2e_margin"] > 0 for _, _, c in e2e):
        return ["- **End to end**: " + "; ".join(
            f"{v} ({label(b)}): {c['e2e_margin']:+.2f}" for b, v, c in e2e) + "."]
    return ["- **End to end**: " + "; ".join(
        f"{v} ({label(b)}): VI-Net {c['e2e_vinet_acc']:.2f}% against "
        f"{c['e2e_best_without_poly']} {c['e2e_best_without_poly_acc']:.2f}% "
        f"({c['e2e_margin']:+.2f})" for b, v, c in e2e)
        + ". Unfreezing the base does not open a gap for the polynomial features."]


def _budget_findings(rec: dict) -> list[str]:
    budget = _cases(rec, "budget_margin")
    out = []
    for b in dict.fromkeys(b for b, _, _ in budget):
        mine = [(v, c) for x, v, c in budget if x == b]
        ahead = [f"{v} ({c['budget_vinet_acc'] - c['vinet_acc']:+.2f})" for v, c in mine
                 if c["budget_vinet_acc"] > c["vinet_acc"]]
        out.append("- **The paper's head size** (at least 0.13M parameters beyond the "
                   f"projection, or every generator where there are fewer), "
                   f"{_base_label(rec['bases'][b])}: VI-Net "
                   + "; ".join(f"{v} {c['budget_vinet_acc']:.2f}% with "
                               f"{c['budget_generators']:.0f} generators "
                               f"({c['budget_margin']:+.2f} against {c['budget_rival']})"
                               for v, c in mine)
                   + ". With 25 generators per class it had "
                   + "; ".join(f"{v} {c['vinet_acc']:.2f}%" for v, c in mine)
                   + ". The larger head is ahead of the smaller one at "
                   + (", ".join(ahead) or "no cut") + ".")
    return out


def _random_monomials_finding(rec: dict) -> list[str]:
    rm = [(b, c) for b, v, c in _cases(rec, "random_monomials_saturated") if v == "tiny"]
    if not rm:
        return []

    def part(b, c):
        return (f"{_base_label(rec['bases'][b])}: {c['random_monomials_acc']:.2f}% against "
                f"{c['linear_acc']:.2f}% for the flattened linear head, with "
                f"{100 * c['random_monomials_saturated']:.0f}% of its projected coordinates "
                f"beyond ±0.99 after training ({100 * c['vinet_saturated']:.0f}% for VI-Net)")

    new = [part(b, c) for b, c in rm if c.get("random_monomials_variables")]
    old = [part(b, c) for b, c in rm if not c.get("random_monomials_variables")]
    out = []
    if new:
        out.append("- **Random monomials at the tiny cut**, of the projected coordinates moved "
                   "into (0, 1) and drawn without repeats (docs/method.md §7): "
                   + "; ".join(new) + ".")
    if old:
        out.append("- **Random monomials at the tiny cut, in runs made before their "
                   "present definition** (docs/method.md §7), took |·| of products of "
                   "coordinates in (-1, 1), which drops every coordinate's sign, and failed: "
                   + "; ".join(old) + ". "
                   "Training drove their projection into tanh saturation, where those "
                   "features are 1 whatever the input: a failure of that head's "
                   "definition, not a measure of random features.")
    return out


def _base_label(s: dict) -> str:
    """A study base in a few words: width, epochs, off the cpu profile where it ran, and
    whether each head trained as its own protocol search chose."""
    where = "" if s.get("profile") in (None, "cpu") else \
        f", {s['profile']} profile on {s.get('device_name') or 'a GPU'}"
    searched = ", each head as searched" if s.get("rival_settings") else ""
    return f"width {float(s['width'])}, {s['epochs']} epochs{where}{searched}"


def _trend_finding(rec: dict) -> list[str]:
    t = rec["margin_trend"]
    if not t:
        return []
    above = [v for v, x in t.items() if x["predicted"] - 2 * x["predicted_se"] > 0]
    below = [v for v, x in t.items() if x["predicted"] + 2 * x["predicted_se"] < 0]
    slopes = ", ".join(f"{v} {x['slope_per_point']:+.2f}" for v, x in t.items())
    return [f"- **Towards the paper's base** (width 0.25): the margin changes per point "
            f"of baseline accuracy by {slopes}. Read at {rec['paper_baseline_acc']:.2f}%, "
            f"it is above zero by more than two standard errors at "
            f"{', '.join(above) if above else 'no cut'}, and below zero by as much at "
            f"{', '.join(below) if below else 'no cut'}."]


def sweep(run: Path = RUN) -> str:
    """The validation sweep: what each factor's candidates scored and what was chosen."""
    path = run / "sweep.json"
    if not path.exists():
        return "No sweep has been run for this profile yet."
    rec = read_json(path)
    m = rec["metrics"]
    variants = list(m["chosen_val_acc"])
    lines = [f"Command: `{m['command']}`. Validation split: {m['validation']['n_val']} of the "
             f"training images ({m['validation']['frac']:.0%} of each class, seeded); heads fitted "
             f"on the other {m['validation']['n_fit']}. Mean validation accuracy over "
             f"{', '.join(variants)}, {rec['params']['seeds']} seeds per trial:", "",
             "| factor (in sweep order) | candidates: mean validation accuracy (%) | chosen |",
             "|---|---|---|"]
    for name in m["order"]:
        f = m["factors"][name]
        cands = ", ".join(f"{str(c).lower() if isinstance(c, bool) else c}: {a:.2f}"
                          for c, a in zip(f["candidates"], f["mean_val_acc"]))
        chosen = f["chosen"]
        lines.append(f"| `{name}` | {cands} | **{str(chosen).lower() if isinstance(chosen, bool) else chosen}** |")
    lines += ["", "| validation accuracy (%) | " + " | ".join(variants) + " |",
              "|---|" + "---|" * len(variants),
              "| VI-Net, chosen values | " + " | ".join(_f(m["chosen_val_acc"][v]) for v in variants) + " |"]
    for ref in next(iter(m["references"].values())):
        lines.append(f"| {ref} | " + " | ".join(
            _pm(m["references"][v][ref]["val_acc"], m["references"][v][ref]["val_acc_std"])
            for v in variants) + " |")
    return "\n".join(lines)


def times(run: Path = RUN, last: int = 4) -> str:
    """Stage times of the run's last ``last`` pipeline invocations, one row each ('-' for
    a stage that invocation did not run)."""
    runs = read_json(run / "stage_times.json")["runs"]
    stages = list(STAGE_FILES)
    lines = ["| run started (UTC) | " + " | ".join(s[:2] for s in stages) + " | total |",
             "|---|" + "---|" * (len(stages) + 1)]
    for r in runs[-last:]:
        secs = r["stage_seconds"]
        lines.append(f"| {r['started_utc']} | "
                     + " | ".join(f"{secs[s] / 60:.1f} min" if s in secs else "-" for s in stages)
                     + f" | {sum(secs.values()) / 60:.1f} min |")
    return "\n".join(lines)


def stage_times(run: Path = PAPER_RUN) -> str:
    """Each stage's latest time over the run's pipeline invocations, and their sum."""
    latest = {}
    for r in read_json(run / "stage_times.json")["runs"]:
        latest.update(r["stage_seconds"])
    stages = sorted(latest)
    return "\n".join(["| " + " | ".join(s[:2] for s in stages) + " | total |",
                      "|" + "---|" * (len(stages) + 1),
                      "| " + " | ".join(f"{latest[s] / 60:.1f} min" for s in stages)
                      + f" | {sum(latest.values()) / 60:.1f} min |"])


MEMORY = REPO_ROOT / "results" / "benchmarks" / "memory.json"


def flop_limits(run: Path = RUN) -> str:
    """Each model's measured speed-up beside its FLOP limit, from one interleaved run, and
    the range of the shares of their limits that the cuts reach."""
    rec = read_json(run / "06_throughput.json")
    m = rec["metrics"]
    speed, flops = m["throughput"], m["flops_per_image"]
    full, full_flops = speed["ResNet (full)"]["mean"], flops["ResNet (full)"]
    lines = [f"`{rec['params']['profile']}` profile, base `{run.name}`, {rec['device_name']}, "
             f"{rec['torch_threads']} threads, batch {rec['params']['eval_batch_size']}, "
             f"{rec['params']['repeats']} interleaved repetitions "
             f"(`{run.relative_to(REPO_ROOT)}/06_throughput.json`):", "",
             "| model | MFLOPs per image | images/s | speed-up | FLOP limit | share of the limit | form |",
             "|---|---|---|---|---|---|---|"]
    shares = []
    for name, r in speed.items():
        up, limit = r["mean"] / full, full_flops / flops[name]
        lines.append(f"| {name} | {flops[name] / 1e6:.1f} | {r['mean']:.0f} ± {r['std']:.0f} | "
                     f"{up:.2f}x | {limit:.2f}x | {100 * up / limit:.0f}% | {r.get('form', '-')} |")
        if name != "ResNet (full)":
            shares.append((100 * up / limit, name.removeprefix("VI-Net ")))
    low, high = min(shares), max(shares)
    lines += ["", f"The cuts reach between {low[0]:.0f}% ({low[1]}) and {high[0]:.0f}% "
                  f"({high[1]}) of their FLOP limits here."]
    return "\n".join(lines)


def memory() -> str:
    """The memory estimate of stages 02-05 at full size, and the runs it rests on."""
    if not MEMORY.exists():
        return "No memory measurement committed yet (`python -m vinet_utils.memory`)."
    m = read_json(MEMORY)
    lines = ["| run | images (train + test) | latents (GiB, from the shapes) | "
             "peak host memory 02 / 03 / 04 / 05 (GiB, measured) |", "|---|---|---|---|"]
    for r in m["runs"]:
        lines.append(f"| width {r['width']}, {r['images']} images | {r['images']} | "
                     f"{r['latents_gb']:.2f} | "
                     + " / ".join(f"{v:.2f}" for v in r["peak_gb"].values()) + " |")
    lines.append("| *full size, read off a line per stage* | " + f"{m['full_images']} | "
                 f"{m['full_latents_gb']:.2f} | " + " / ".join(
                     f"{st['full_peak_gb']:.1f}" for st in m["stages"].values()) + " |")
    lines += ["", f"Per stage, a straight line through the two runs' peaks against their "
                  f"latents' size, read at the full {m['full_images']} images: stages 02-05 "
                  f"peak at about **{m['full_peak_gb']:.1f} GiB** (stage "
                  f"{m['largest_stage'][:2]}), plus {m['extraction_working_gb']:.2f} GiB while "
                  f"stage 02 extracts latents on a CPU (`results/benchmarks/memory.json`; runs "
                  f"made with `{m.get('runs_made_with') or 'the pipeline'}`)."]
    return "\n".join(lines)


def targets(run: Path = RUN) -> str:
    """The reproduction's targets for the cpu run (base frozen, means over seeds), each
    with the measured value and whether it is met."""
    base = read_json(run / "01_baseline.json")["metrics"]["test_acc"]
    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    acc = {(r["head"], r["variant"]): r["acc"] for r in rows  # the targets are base frozen
           if r.get("protocol", "frozen") == "frozen"}
    flat = next(h for h, _ in acc if h.startswith("linear (") and h != "linear (gap)")
    speed = read_json(run / "06_throughput.json")["metrics"]["throughput"]
    full = speed["ResNet (full)"]["mean"]
    lines = ["| target | tiny | small | medium | large |", "|---|---|---|---|---|"]

    def row(label, cells):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    margin = {"tiny": 2, "small": 2, "medium": 0, "large": 0}
    row(f"VI-Net minus {flat} >= 2 / 2 / 0 / 0 points", [
        _met(acc["VI-Net", v] - acc[flat, v], margin[v], f"{acc['VI-Net', v] - acc[flat, v]:+.2f}")
        for v in VARIANTS])
    gap = {"tiny": 5, "small": 1, "medium": 0.5, "large": 0.5}
    row("VI-Net within 5 / 1 / 0.5 / 0.5 points of the baseline", [
        _met(acc["VI-Net", v] - base, -gap[v], f"{acc['VI-Net', v] - base:+.2f}") for v in VARIANTS])
    need = {"tiny": 1.5, "small": 1.2, "medium": 1.05}
    row("throughput / full ResNet >= 1.5 / 1.2 / 1.05 / -", [
        _met(speed[f"VI-Net {v}"]["mean"] / full, need[v], f"{speed[f'VI-Net {v}']['mean'] / full:.2f}x")
        if v in need else f"{speed[f'VI-Net {v}']['mean'] / full:.2f}x" for v in VARIANTS])
    return "\n".join(lines)


def oavi(path: Path = REPO_ROOT / "results" / "benchmarks" / "oavi.json") -> str:
    """The OAVI benchmark: each case's time, size, targets and agreement with brute force."""
    rec = read_json(path)
    meta = rec["metadata"]
    lines = [f"`{rec.get('command', 'python -m vinet_utils.bench oavi')}` at commit "
             f"`{str(meta['git_commit'])[:7]}`, {meta['device_name']}, float64. "
             f"Machine: {meta.get('machine_note', 'not recorded')}.", "",
             "| case | points | fit (median) | fit CPU time | target | O terms | generators | brute force | speed ratio | same decisions |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in rec.get("cases", {}).items():
        ref = (f"{c['reference_time_s']:.2f} s" if "reference_time_s" in c else "skipped")
        ratio = f"{c['speed_ratio']:.1f}x" if "speed_ratio" in c else "-"
        same = str(c.get("identical_decisions", "-")).lower()
        target = c.get("target_fit_time_s")
        met = "" if target is None else (" (met)" if c["fit_time_s"] <= target else " (**missed**)")
        lines.append(f"| {name} | {c['shape'][0]}x{c['shape'][1]} | {_secs(c['fit_time_s'])}{met} | "
                     f"{_secs(c['fit_cpu_time_s'])} | {'-' if target is None else _secs(target)} | "
                     f"{c['n_O']} | {c['n_G']} | {ref} | {ratio} | {same} |")
    busy = {n: c["busy_slowdown"] for n, c in rec.get("cases", {}).items() if "busy_slowdown" in c}
    for name, slow in busy.items():
        lines += ["", f"{name} with a CPU-bound process running beside it: "
                      f"{_secs(rec['cases'][name]['busy_fit_time_s'])} median, {slow:.2f}x the idle time "
                      f"(target: at most 2x)."]
    s = rec["summary"]
    lines += ["", f"Ten classes of {rec['parameters']['points']} points in "
                  f"{rec['parameters']['dim']} dimensions at psi {rec['parameters']['psi']} and the "
                  f"papers' default tau ({rec['parameters']['tau_resolved']:.2f}): "
                  f"{s['total_fit_time_s']:.1f} s against {s['total_reference_time_s']:.1f} s for "
                  f"brute force, **{s['speed_ratio']:.1f}x**; decisions identical: "
                  f"**{str(s['identical_decisions']).lower()}**; the l1 bound was active for "
                  f"{s['n_bound_active_total']} of {s['n_border_terms_total']} border terms."]
    ab_path = path.with_name("oavi_ab.json")
    if ab_path.exists():
        lines += ["", *_oavi_ab(read_json(ab_path))]
    return "\n".join(lines)


def _oavi_ab(rec: dict) -> list[str]:
    """The A/B of ``python -m vinet_utils.bench oavi-ab``: each case against a baseline commit."""
    meta = rec["metadata"]
    lines = [f"Against commit `{rec['baseline']}`, alternating on one machine (`{rec['command']}` at "
             f"`{str(meta['git_commit'])[:7]}`; {rec['rounds']} rounds of {rec['repeats']} fits per side; "
             f"machine: {meta.get('machine_note', 'not recorded')}). The ratio is that of the fastest fits; "
             f"above {rec['slower_above']} a case counts as slower.", "",
             "| case | baseline, fastest | this code, fastest | ratio | baseline, median | this code, median | ratio of medians |",
             "|---|---|---|---|---|---|---|"]
    for name, c in rec["cases"].items():
        ratio = f"**{c['ratio']:.2f}** (slower)" if c["slower"] else f"{c['ratio']:.2f}"
        lines.append(f"| {name} | {_secs(c['baseline_fastest_s'])} | {_secs(c['current_fastest_s'])} | {ratio} | "
                     f"{_secs(c['baseline_median_s'])} | {_secs(c['current_median_s'])} | {c['ratio_of_medians']:.2f} |")
    return lines


PROTOCOL_RUNS = {"cpu": RUN, "cpu-cifar100": C100_RUN}


def protocol_edge() -> str:
    """The checks beside the protocol searches: a head at learning rates its search did
    not try, against the search's best trial for that head."""
    from .protocol import trial_label

    out = []
    for name, run in PROTOCOL_RUNS.items():
        for path in sorted(run.glob("protocol_edge-*.json")):
            rec = read_json(path)
            m, seeds = rec["metrics"], rec["params"]["seeds"]
            mode = f", {trial_label(m['mode'])}" if m["mode"] else ""
            each = f"the mean of {seeds} trainings" if seeds > 1 else "one training"
            out += [f"**`{name}`**, {m['head']}{mode} (`{m['command']}`), validation "
                    f"accuracy in % ({each} per rate; the search's: one), the best rate in "
                    f"bold:", "",
                    "| cut | " + " | ".join(f"lr {lr:g}" for lr in m["lrs"])
                    + " | the search's best |", "|---|" + "---|" * (len(m["lrs"]) + 1)]
            for cut, heads in m["per_cut"].items():
                rows = heads[m["head"]]
                best = max(rows, key=lambda t: t["val_acc"])
                cells = [f"**{t['val_acc']:.2f}**" if t is best else f"{t['val_acc']:.2f}"
                         for t in rows]
                found = m["search_best"].get(cut)
                out.append(f"| {cut} | " + " | ".join(cells) + " | "
                           + (f"{found['val_acc']:.2f} ({found['label']})" if found else "-") + " |")
            out.append("")
    return "\n".join(out).strip() or "No check beside the protocol searches committed yet."


def protocol() -> str:
    """Each committed protocol search: every head's trials per cut (validation accuracy,
    saturation), its best in bold, and the end-to-end rules with each head's gain."""
    from .protocol import chosen_settings, trial_label

    out = []
    for name, run in PROTOCOL_RUNS.items():
        path = run / "protocol.json"
        if not path.exists():
            continue
        rec = read_json(path)
        m = rec["metrics"]
        v = m["validation"]
        out += [f"**`{name}`** (`{m['command']}`; {v['n_fit']:,} training images to fit on, "
                f"{v['n_val']:,} to validate on; {rec['params']['seeds']} training per trial), "
                f"validation accuracy in %. Heads with a projection try `train_projection` "
                f"(the share of projected coordinates beyond ±0.99 after training in brackets), "
                f"the others `finetune_lr`; each head's best in bold:", ""]
        for cut, heads in m["per_cut"].items():
            n = max(len(t) for t in heads.values())
            out += [f"| {cut} | " + " | ".join(f"trial {i + 1}" for i in range(n)) + " |",
                    "|---|" + "---|" * n]
            for head, trials in heads.items():
                best = max(trials, key=lambda t: t["val_acc"])
                cells = []
                for t in trials:
                    sat = "" if t["saturation"] is None else f" ({100 * t['saturation']:.0f}%)"
                    knob, value = next(iter(t["trial"].items()))
                    cell = f"{'lr ' if knob == 'finetune_lr' else ''}{str(value).lower()}: {t['val_acc']:.2f}{sat}"
                    cells.append(f"**{cell}**" if t is best else cell)
                out.append(f"| {head} | " + " | ".join(cells) + " |")
            out.append("")
        for cut, res in (m.get("end_to_end") or {}).items():
            rules = list(res["worst_gain"])
            shown = {trial_label(t): "base at {unfreeze_base_lr_scale}x lr, BN statistics "
                                     "{unfreeze_bn_stats}".format(**t)
                     for t in m["end_to_end_trials"]}
            out += [f"End to end at {cut}, each head from its best frozen trial (gain over it, "
                    f"in points; the rule is judged by its worst head):", "",
                    "| head | frozen | " + " | ".join(shown[r] for r in rules) + " |",
                    "|---|---|" + "---|" * len(rules)]
            for head, rows in res["per_head"].items():
                gains = {r["label"]: r["gain"] for r in rows}
                out.append(f"| {head} | {rows[0]['frozen_val_acc']:.2f} | "
                           + " | ".join(f"{gains[r]:+.2f}" for r in rules) + " |")
            out += ["| **worst** | | " + " | ".join(
                (f"**{res['worst_gain'][r]:+.2f}**" if r == res["chosen"] else f"{res['worst_gain'][r]:+.2f}")
                for r in rules) + " |", ""]
        chosen = chosen_settings(m)
        out += [f"Adopted in `params/{name}.yaml`: " + "; ".join(
            f"`{k}`: " + (", ".join(f"{h} {', '.join(f'{a}={b}' for a, b in t.items())}"
                                    for h, t in v.items()) if isinstance(v, dict) else f"{v}")
            for k, v in chosen.items()) + ".", ""]
    return "\n".join(out).strip() or "*No protocol search committed yet: `make protocol`.*"


def _secs(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 0.1 else f"{t:.2f} s"


def _met(value: float, bound: float, shown: str) -> str:
    return f"{shown} {'(met)' if value >= bound else '(**missed**)'}"


BLOCKS = {"verdict": verdict, "cifar100": cifar100_verdict, "cifar100_findings": cifar100_findings,
          "cifar100_table": cifar100_table, "cifar100_stages": stage_costs, "where": where, "oavi": oavi, "targets": targets,
          "profiles": profiles, "table": table, "ablations": ablations, "sweep": sweep,
          "times": times, "paper_table": lambda: table(PAPER_RUN), "paper_times": stage_times, "flop_limits": flop_limits,
          "memory": memory, "protocol": protocol,
          "protocol_edge": protocol_edge}

_BLOCK = re.compile(r"<!-- generated:(\w+) -->.*?<!-- /generated:\1 -->", flags=re.S)


def pages() -> list[Path]:
    """README.md and every page under docs/, the pages ``render`` may fill."""
    return [README] + sorted(DOCS.glob("*.md"))


def blocks(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order, repeats kept."""
    return re.findall(r"<!-- generated:(\w+) -->", text)


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    def fill(m):
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"generated block {name!r} is unknown; known: {', '.join(BLOCKS)}")
        return f"<!-- generated:{name} -->\n{BLOCKS[name]()}\n<!-- /generated:{name} -->"
    return _BLOCK.sub(fill, text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    texts = {p: p.read_text() for p in pages()}
    seen = [b for t in texts.values() for b in blocks(t)]
    twice = sorted({b for b in seen if seen.count(b) > 1})
    missing = [b for b in BLOCKS if b not in seen]
    if twice or missing:
        print(f"each block must be on exactly one page; twice: {twice or 'none'}, "
              f"on no page: {missing or 'none'}")
        return 1
    new = {path: render(text) for path, text in texts.items()}  # all, before any write
    stale = [path.relative_to(REPO_ROOT) for path in texts if new[path] != texts[path]]
    if "--check" in argv:
        if stale:
            print(f"{', '.join(map(str, stale))} disagree(s) with the results files: "
                  "run python -m vinet_utils.report")
            return 1
        print(f"{len(texts)} pages agree with the results files")
        return 0
    for path in texts:
        if new[path] != texts[path]:
            path.write_text(new[path])
    print(f"generated blocks rewritten in: {', '.join(map(str, stale)) or 'none (all up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
