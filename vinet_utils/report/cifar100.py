"""The CIFAR-100 / ResNet-34 run against the paper's ablation: the README's
``cifar100_findings`` block and docs/results.md's ``cifar100``, ``cifar100_table``
and ``cifar100_stages`` blocks."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import read_json, stage_seconds
from vinet_utils.report.common import C100_RUN, STAGE_FILES


def ablation_summary(run: Path = C100_RUN) -> dict:
    """Per cut of a run's notebook 05, in order of layers removed: every head's frozen
    accuracy and VI-Net's margins (± the 95% t interval of a difference of means) over
    the best head without polynomials and over the linear head on the flattened map,
    beside the paper's VI-Net minus linear at the nearest share of its figure."""
    from vinet_utils.common.paper import (ABLATION, ABLATION_NEAR, ABLATION_REMOVED_PCT,
                                          nearest_ablation_point)
    from vinet_utils.report.evidence import margin
    from vinet_utils.report.paper_table import best_without_poly, head_row

    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    cuts = sorted({r["variant"]: r["removed_pct"] for r in rows}.items(), key=lambda kv: kv[1])
    out = []
    for cut, pct in cuts:
        vi = head_row(rows, cut, "VI-Net", "frozen")
        flat = head_row(rows, cut, "linear (flatten)", "frozen")
        other = best_without_poly(rows, cut, "frozen", "flatten")
        near = nearest_ablation_point(pct)
        out.append({"cut": cut, "removed_pct": pct, "vinet": vi, "linear": flat, "best": other,
                    "random": head_row(rows, cut, "random monomials", "frozen"),
                    "margin": margin(vi, other), "over_linear": margin(vi, flat),
                    "paper_pct": ABLATION_REMOVED_PCT[near],
                    "near": abs(ABLATION_REMOVED_PCT[near] - pct) <= ABLATION_NEAR,
                    "paper_over_linear": ABLATION["VI-Net"][near]
                    - ABLATION["linear head on the truncated net"][near]})
    return {"cuts": out, "baseline": read_json(run / "01_baseline.json")}


def reference_curve(m: dict) -> dict:
    """The reference protocol's curve (``reference.json``'s metrics ``m``) shaped as a
    budget curve's metrics (``budget.json``), so that the pages and the ablation figure
    read either: the curve heads' frozen and reference-rate rows, their summary groups
    with every seed, and per budget the cuts where every curve head has every seed
    (``cuts_done``); ``how`` names the protocol."""
    heads = list(m["sweep"])
    keep = [r for r in m["rows"] if r["variant"] in m["variants"] and r["head"] in heads
            and r["setting"] in ("frozen", "reference")]
    summ = [g for g in m["summary"] if g["variant"] in m["variants"] and g["head"] in heads
            and g["setting"] in ("frozen", "reference")]
    have = {(g["variant"], g["head"], g["budget_epochs"]) for g in summ}
    done = {str(b): [v for v in m["variants"] if all((v, h, b) in have for h in heads)]
            for b in m["budgets"]}
    return {"variants": list(m["variants"]), "heads": heads, "rows": keep, "summary": summ,
            "cuts_done": {b: c for b, c in done.items() if c}, "seeds": m["seeds"],
            "baseline_test_acc": m["identity"]["base"]["test_acc"],
            "removed_pct": m.get("removed_pct", {}),
            "how": "the reference protocol: one learning rate for head and base by the rule "
                   "of docs/method.md §7, BatchNorm statistics updated"}


def curve_metrics(run: Path = C100_RUN) -> dict | None:
    """The end-to-end curve the CIFAR-100 pages read: the reference protocol's
    (:func:`reference_curve`) once it has finished an end-to-end budget at some cut,
    else the budget curve's (``budget.json``), else None."""
    if (run / "reference.json").exists():
        view = reference_curve(read_json(run / "reference.json")["metrics"])
        if any(int(b) > 0 for b in view["cuts_done"]):
            return view
    return read_json(run / "budget.json")["metrics"] if (run / "budget.json").exists() else None


def head_training(params: dict) -> str:
    """How a notebook-05 run trained its heads, in words, from its parameters."""
    rivals = params.get("rival_settings") or {}
    how = "; ".join(f"{h} at " + ", ".join(f"{k}={v}" for k, v in s.items())
                    for h, s in rivals.items())
    return (f"VI-Net with `train_projection={params.get('train_projection')}` at "
            f"`finetune_lr={params.get('finetune_lr')}`"
            + (f", each comparison head as its own protocol search chose ({how})" if how
               else ", every comparison head the same way"))


def cifar100_verdict(run: Path = C100_RUN) -> str:
    """The CIFAR-100 / ResNet-34 run against the paper's ablation: a table per cut and
    the findings in words, from the run's results files."""
    from vinet_utils.common.paper import ABLATION

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
                                                     if c["near"] else "- (outside its figure)") + " |")
    span = [c for c in cuts if 15 <= c["removed_pct"] <= 55]
    ahead = [c for c in span if c["over_linear"][1] is not None
             and c["over_linear"][0] > c["over_linear"][1]]
    best_ahead = [c for c in cuts if c["margin"][1] is not None and c["margin"][0] > c["margin"][1]]
    gap = [c["random"]["acc"] - c["linear"]["acc"] for c in cuts if c["random"] is not None]
    paper_random = [r - f for r, f in zip(ABLATION["random monomials"][1:],
                                          ABLATION["linear head on the truncated net"][1:])]
    ours = ", ".join(f"{c['over_linear'][0]:+.2f}" for c in span)
    theirs = ", ".join(f"{c['paper_over_linear']:+.1f}" for c in span)
    margins = [c["margin"][0] for c in cuts]
    close = sum(g >= -15 for g in gap)
    lines.append("")
    lines += [f"- **Against the linear head** (the paper's comparison), between "
                  f"{min(c['removed_pct'] for c in span):.0f}% and "
                  f"{max(c['removed_pct'] for c in span):.0f}% of layers removed: VI-Net is ahead "
                  f"beyond its 95% t interval at {len(ahead)} of {len(span)} cuts "
                  f"(margins {ours}; the paper's figure: {theirs}).",
              f"- **Against the best head without polynomials**: VI-Net is ahead by more than "
              f"its 95% t interval at {len(best_ahead)} of {len(cuts)} cuts; its margins run "
              f"from {min(margins):+.2f} to {max(margins):+.2f}.",
              f"- **Random monomials** minus the linear head: {min(gap):+.2f} to {max(gap):+.2f} "
              f"points across the cuts, within 15 points at {close} of {len(gap)} (the paper's "
              f"figure: {min(paper_random):+.1f} to {max(paper_random):+.1f})."]
    return "\n".join(lines + end_to_end_finding(run))


def end_to_end_finding(run: Path = C100_RUN) -> list[str]:
    """The run's end-to-end curve (:func:`curve_metrics`) in one bullet, at the largest end-to-end
    budget any cut has finished: per cut, VI-Net's drop from the full network frozen and
    end to end beside the paper's drop at the nearest share of its figure, and VI-Net
    minus the linear head and minus the MLP with their 95% t intervals (Welch's). No
    bullet before an end-to-end budget has finished a cut."""
    from vinet_utils.common.paper import ABLATION, ABLATION_REMOVED_PCT, nearest_ablation_point
    from vinet_utils.common.stats import difference_interval, mean_interval

    m = curve_metrics(run)
    if m is None:
        return []
    done = {int(b): cuts for b, cuts in m["cuts_done"].items() if int(b) > 0 and cuts}
    if not done:
        return []
    b, base, vi_paper = max(done), m["baseline_test_acc"], ABLATION["VI-Net"]

    def accs(v, head, epochs):
        return [r["test_acc"] for r in m["rows"]
                if (r["variant"], r["head"], r["budget_epochs"]) == (v, head, epochs)]

    def vs(v, head):
        d = difference_interval(accs(v, "VI-Net", b), accs(v, head, b))
        return f"{d['diff']:+.2f} ± {d['half_width']:.2f}"

    cuts = sorted(done[b], key=lambda c: m["removed_pct"][c])
    near = [nearest_ablation_point(m["removed_pct"][v]) for v in cuts]

    def pct(v):
        return f"{m['removed_pct'][v]:.0f}%"

    def drop(v, e):
        return f"{base - mean_interval(accs(v, 'VI-Net', e))['mean']:.2f}"

    def each(f):
        return " / ".join(f(v) for v in cuts)

    how = m.get("how") or (f"the `{m['e2e_settings_from']}` profile's end-to-end settings"
                           if m.get("e2e_settings_from") else "searched settings")
    rest = ", ".join(pct(v) for v in m["variants"] if v not in done[b])
    later = f" At {rest} this budget has not finished yet." if rest else ""
    return [f"- **End to end for {b} epochs** ({m['seeds']} seeds; {how}): at "
            f"{each(pct)} of layers removed "
            f"VI-Net loses {each(lambda v: drop(v, b))} points to the full network (frozen: "
            f"{each(lambda v: drop(v, 0))}; the paper's VI-Net: "
            + " / ".join(f"{vi_paper[0] - vi_paper[i]:.1f}" for i in near) + " at "
            + " / ".join(f"{ABLATION_REMOVED_PCT[i]}%" for i in near) + "); VI-Net minus the "
            f"linear head {each(lambda v: vs(v, 'linear (flatten)'))}, minus the MLP "
            f"{each(lambda v: vs(v, 'MLP'))}." + later]


def stage_costs(run: Path = C100_RUN) -> str:
    """Each stage's wall time from scratch (:func:`vinet_utils.common.results.stage_seconds`)
    and in its latest run, and the peak host memory its results file recorded, with the
    machine it ran on."""
    if not (run / "stage_times.json").exists():
        return "*Not run yet.*"
    first, latest = stage_seconds(run), {}
    for r in read_json(run / "stage_times.json")["runs"]:
        latest.update(r["stage_seconds"])
    lines = ["| stage | from scratch | latest run | peak host memory (latest) | ran on |",
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
    from vinet_utils.report.results_page import table
    return table(run) if (run / "table.md").exists() else "*Not run yet.*"


def cifar100_findings(run: Path = C100_RUN) -> str:
    """The README's short form of :func:`cifar100_verdict`, one table line per cut: VI-Net
    minus the linear head beside the paper's, minus the best head without polynomials,
    random monomials minus the linear head beside the paper's (frozen), and, where the
    budget curve has finished a budget there, VI-Net minus the linear head and the MLP
    end to end; all with 95% t intervals (Welch's)."""
    from vinet_utils.common.paper import ABLATION, ABLATION_REMOVED_PCT
    from vinet_utils.common.stats import difference_interval

    if not (run / "05_ablations.json").exists():
        return "*Not run yet: `make reproduce PROFILE=cpu-cifar100`.*"
    summary = ablation_summary(run)
    base, cuts = summary["baseline"], summary["cuts"]
    curve = curve_metrics(run)
    done = {int(b): c for b, c in curve["cuts_done"].items() if int(b) > 0 and c} if curve else {}
    b = max(done) if done else None

    def pm(m):
        return f"{m[0]:+.2f}" + ("" if m[1] is None else f" ± {m[1]:.2f}")

    def e2e(cut, head):
        if b is None or cut not in done[b]:
            return "-"
        accs = {h: [r["test_acc"] for r in curve["rows"]
                    if (r["variant"], r["head"], r["budget_epochs"]) == (cut, h, b)]
                for h in ("VI-Net", head)}
        d = difference_interval(accs["VI-Net"], accs[head])
        return f"{d['diff']:+.2f} ± {d['half_width']:.2f}"

    seeds = max(len(c["vinet"].get("acc_per_seed") or []) for c in cuts)
    lines = [f"Base {base['metrics']['test_acc']:.2f}%; frozen: {seeds} seeds per head, each as its "
             f"own search chose" + (f"; end to end: {b} epochs, {curve['seeds']} seeds" if b else "")
             + ". The paper's values are read off its figure at the nearest share of layers removed.",
             "", "| layers removed | VI-Net - linear (paper's) | VI-Net - best without poly "
             "| random monomials - linear (paper's) | end to end: VI-Net - linear | end to end: VI-Net - MLP |",
             "|---|---|---|---|---|---|"]
    for c in cuts:
        near = c["near"]
        k = ABLATION_REMOVED_PCT.index(c["paper_pct"])
        paper_rand = (ABLATION["random monomials"][k] - ABLATION["linear head on the truncated net"][k]
                      if near else None)
        rand = "-" if c["random"] is None else f"{c['random']['acc'] - c['linear']['acc']:+.2f}"
        lines.append(f"| {c['removed_pct']:.0f}% | {pm(c['over_linear'])} ("
                     + (f"{c['paper_over_linear']:+.1f}" if near else "-") + f") | {pm(c['margin'])} "
                     f"| {rand} (" + (f"{paper_rand:+.1f}" if paper_rand is not None else "-")
                     + f") | {e2e(c['cut'], 'linear (flatten)')} | {e2e(c['cut'], 'MLP')} |")
    return "\n".join(lines)


def cifar100_curve(run: Path = C100_RUN) -> str:
    """docs/results.md's end-to-end block for the run: the reference protocol's curve
    once it has started, else a budget curve, else the command that makes the curve."""
    from vinet_utils.report.reference_page import reference
    from vinet_utils.report.results_page import budget_curve

    if (run / "reference.json").exists():
        return reference(run)
    if (run / "budget.json").exists():
        return budget_curve(run)
    return ("*Not run yet: `make reference PROFILE=cpu-cifar100 CURVE_ONLY=1 VARIANTS=\"layer3 small\" "
            "BUDGETS=12 SEEDS=2`.*")
