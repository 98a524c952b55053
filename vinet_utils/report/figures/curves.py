"""The figures of the searches and the curves: the sweep, the protocol search, the
base-quality study and the budget curve, each drawn from its results file."""

from __future__ import annotations


import matplotlib.pyplot as plt

from vinet_utils.report.figures.style import MARKERS, distinct_styles, legend_outside, save


def sweep(rec: dict, path=None):
    """One panel per swept factor, in the order swept: mean validation accuracy of each
    candidate per cut (the chosen value circled), and the two reference heads as thin
    lines (solid, dash-dot)."""
    factors = rec["metrics"]["order"]
    refs = rec["metrics"]["references"]
    variants = list(rec["metrics"]["chosen_val_acc"])
    style = distinct_styles(variants)
    cols = min(4, len(factors))
    rows = -(-len(factors) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(factors):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, factors):
        f = rec["metrics"]["factors"][name]
        xs = [str(c) for c in f["candidates"]]
        for v in variants:
            colour, marker = style[v]
            ys = f["per_variant"][v]
            ax.plot(xs, ys, marker=marker, color=colour, label=v)
            ax.scatter([str(f["chosen"])], [ys[f["candidates"].index(f["chosen"])]], s=120,
                       facecolors="none", edgecolors="k", zorder=5)
            for ref, ls in zip(refs[v].values(), ("-", "-.")):  # dashed and dotted mean
                ax.axhline(ref["val_acc"], color=colour, ls=ls, lw=0.8)  # end to end, the paper
        ax.set(title=name, xlabel="")
        ax.tick_params(axis="x", labelrotation=45)
    for row in axes:
        row[0].set_ylabel("validation accuracy (%)")
    names = list(next(iter(refs.values())))
    legend_outside(axes.flat[cols - 1], title="cut", fontsize=8)
    fig.suptitle(f"VI-Net head, greedy sweep on a validation split, left to right and top to "
                 f"bottom\n(thin line: {names[0]}; dash-dot: {names[1]}; circled: chosen)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def protocol(rec: dict, path=None):
    """Each head's search at a glance. One panel per searched cut (frozen base) and per
    end-to-end cut: every trial's validation accuracy against its learning rate, one
    colour and marker per head, each head's chosen trial (the record's ``best`` and
    ``best_end_to_end``) circled; end to end, the
    thin line is where the head started (its best frozen trial). Trials below the axis
    are marked on it, and counted in the panel's title."""
    m = rec["metrics"]
    panels = [("frozen", v) for v in m["variants"]] + [("end to end", v) for v in m["end_to_end_cuts"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    markers = "osD^v"
    index = {h: i for i, h in enumerate(dict.fromkeys([*m["frozen"], *m["end_to_end"]]))}
    for ax, (kind, cut) in zip(axes[0], panels):
        studies = m["frozen"] if kind == "frozen" else m["end_to_end"]
        chosen = m["best"] if kind == "frozen" else m["best_end_to_end"]  # the search's labels
        lr = "finetune_lr" if kind == "frozen" else "unfreeze_lr"
        for head, trials in studies.items():
            i = index[head]
            xs = [t["values"][lr] for t in trials]
            ys = [t["per_cut"][cut]["val_acc"] for t in trials]
            ax.scatter(xs, ys, color=f"C{i}", marker=markers[i % len(markers)], s=28,
                       label=head, alpha=0.85)
            b = next(t for t in trials if t["label"] == chosen[head])
            ax.scatter([b["values"][lr]], [b["per_cut"][cut]["val_acc"]], s=170,
                       facecolors="none", edgecolors=f"C{i}", lw=1.6)
            if kind == "end to end":
                ax.axhline(trials[0]["per_cut"][cut]["frozen_val_acc"], color=f"C{i}", lw=0.8,
                           alpha=0.7)  # thin: where the head started; dashed means end to end
        ax.set_xscale("log")
        ys_all = [t["per_cut"][cut]["val_acc"] for ts in studies.values() for t in ts]
        top = max(ys_all)
        floor = max(min(ys_all), top - 25) - 1
        ax.set_ylim(floor, top + 1.5)
        below = [(t["values"][lr], index[h]) for h, ts in studies.items() for t in ts
                 if t["per_cut"][cut]["val_acc"] < floor]
        for x, i in below:  # a trial below the axis (diverged, or far behind): a mark on its floor
            ax.scatter([x], [floor], marker="x", color=f"C{i}", s=30, clip_on=False, zorder=3)
        title = f"{cut}, {kind}"
        if below:
            title += f"\n({len(below)} trials below {floor:.0f}%: crosses on the axis)"
        ax.set(title=title, xlabel=lr + " (log scale)", ylabel="validation accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()  # the frozen panel has every head
    legend_outside(axes[0][-1], handles=handles, labels=labels, fontsize=7)

    def per_head(studies):
        counts = {len(t) for t in studies.values()}
        return (f"{counts.pop()}" if len(counts) == 1 else
                ", ".join(f"{h} {len(t)}" for h, t in studies.items()))

    fig.suptitle(f"Protocol search, base frozen: {per_head(m['frozen'])} trials per head"
                 + (f", end to end: {per_head(m['end_to_end'])}" if m["end_to_end"] else "")
                 + f", each the mean of {m['trainings_per_trial']} trainings; circled: chosen",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def _other_width(a, b, others: dict, v: str, color: str) -> None:
    """Bases of another width than the trend's: squares of their own, not on its line."""
    for s in others.values():
        c = s["cuts"].get(v)
        if c is None:
            continue
        a.errorbar([s["baseline_acc"]], [c["margin"]], yerr=[c["margin_ci"] or 0],
                   marker="s", ms=7, color=color, capsize=3, mec="k")
        if "e2e_margin" in c:
            a.scatter([s["baseline_acc"]], [c["e2e_margin"]], marker="s", s=60,
                      facecolors="none", edgecolors=color)
        b.scatter([s["baseline_acc"]], [c["vinet_minus_baseline"]], marker="s", s=50,
                  color=color, edgecolors="k", zorder=5)


def study(rec: dict, path=None):
    """The base-quality study at a glance. Left: VI-Net's margin over the best head
    without polynomials, per cut, against baseline accuracy (frozen base: filled, with
    the 95% t interval over seeds; end to end: open), each cut's least-squares line
    carried to the paper's base. Right: VI-Net minus its own baseline, with the paper's
    published values at its base."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.4, 4.4))
    family = rec.get("trend_bases", list(rec["bases"]))
    bases = {k: s for k, s in rec["bases"].items() if k in family}
    others = {k: s for k, s in rec["bases"].items() if k not in family}
    paper_x = rec["paper_baseline_acc"]
    xs_all = [s["baseline_acc"] for s in rec["bases"].values()] + [paper_x]
    for i, v in enumerate(("tiny", "small", "medium", "large")):
        pts = [(s["baseline_acc"], s["cuts"][v]) for s in bases.values() if v in s["cuts"]]
        if not pts:
            continue
        x = [p for p, _ in pts]
        a.errorbar(x, [c["margin"] for _, c in pts],
                   yerr=[c["margin_ci"] or 0 for _, c in pts], marker="o", color=f"C{i}",
                   capsize=3, lw=1.5, label=v)
        _other_width(a, b, others, v, f"C{i}")
        e2e = [(p, c["e2e_margin"]) for p, c in pts if "e2e_margin" in c]
        if e2e:
            a.scatter(*zip(*e2e), marker="o", facecolors="none", edgecolors=f"C{i}", s=60,
                      label=f"{v}, end to end")
        t = rec["margin_trend"].get(v)
        if t:
            line_x = [min(x), paper_x]
            a.plot(line_x, [t["intercept"] + t["slope_per_point"] * q for q in line_x],
                   color=f"C{i}", lw=0.8)
            a.errorbar([paper_x + 0.08 * (i - 1.5)], [t["predicted"]], yerr=[t["predicted_se"]],
                       marker="D", color=f"C{i}", capsize=3, ms=5)
        b.plot(x, [c["vinet_minus_baseline"] for _, c in pts], marker="o", color=f"C{i}",
               label=v)
        b.scatter([paper_x], [rec["paper_vinet_minus_baseline"][v]], marker="*", s=160,
                  color=f"C{i}", edgecolors="k", zorder=5)
    for ax in (a, b):
        ax.axhline(0, color="grey", lw=1)
        ax.axvline(paper_x, color="k", lw=1, ls=":")
        ax.set_xlim(min(xs_all) - 1, max(xs_all) + 1)
        ax.set_xlabel("baseline test accuracy (%)")
    a.annotate("paper's base", (paper_x, a.get_ylim()[1]), ha="right", va="top", fontsize=8,
               xytext=(-3, -3), textcoords="offset points")
    widths = sorted({s["width"] for s in others.values()})
    unsearched = ", heads not searched" if any(not s.get("rival_settings")
                                               for s in others.values()) else ""
    square = (f";\nsquare: width {', '.join(map(str, widths))}{unsearched}" if widths else "")
    a.set_ylabel("VI-Net minus best head without polynomials (points)")
    a.set_title("margin over the heads without polynomials\n(thin line: width-0.25 trend to the "
                f"paper's base, diamond: its value ± s.e.{square})", fontsize=10)
    legend_outside(a, fontsize=7)
    b.set_ylabel("VI-Net minus its full ResNet (points)")
    b.set_title(f"VI-Net against its own baseline\n(stars: the paper's published values{square})",
                fontsize=10)
    legend_outside(b, fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def budget(rec: dict, path=None):
    """The budget curve: test accuracy against end-to-end epochs (0: the base frozen),
    one line per head with its 95% t interval over seeds, one panel per cut; the full
    base as a line, and the paper's VI-Net drop from its own base carried to ours (dotted,
    as the paper is in every figure). The
    budgets sit evenly spaced (they grow geometrically), each head a little aside from
    the others so that no interval hides another, and the legend outside the panels."""
    from vinet_utils.common.paper import paper_drop

    m = rec["metrics"]
    base = m["baseline_test_acc"]
    setting = (rec["params"]["dataset"], rec["params"]["arch"])  # the paper's rows for this setting
    cuts = m["variants"]
    fig, axes = plt.subplots(1, len(cuts), figsize=(4.6 * len(cuts) + 2.2, 4.3), squeeze=False)
    markers = "osD^v"
    where = {b: i for i, b in enumerate(m["budgets"])}
    n = len(m["heads"])
    for ax, v in zip(axes[0], cuts):
        for i, h in enumerate(m["heads"]):
            pts = sorted((s["budget_epochs"], s["mean"], s["half_width"] or 0)
                         for s in m["summary"] if s["variant"] == v and s["head"] == h)
            if not pts:
                continue
            bs, ys, es = zip(*pts)
            xs = [where[b] + 0.08 * (i - (n - 1) / 2) for b in bs]
            ax.errorbar(xs, ys, yerr=es, marker=markers[i % len(markers)], color=f"C{i}",
                        capsize=3, label=h)
        ax.axhline(base, color="k", lw=1.2, label=f"full base ({base:.2f}%)")
        drop = paper_drop(*setting, v)
        title = f"{v}: 95% t intervals over {m['seeds']} seeds"
        if drop is not None:
            ax.axhline(base - drop, color="k", ls=":", lw=1.2,
                       label="full base minus the paper's\nVI-Net drop at that cut")
            title += f"\n(the paper's VI-Net drop at {v}: {drop:.2f} points)"
        ax.set_xticks(range(len(m["budgets"])),
                      ["frozen" if b == 0 else str(b) for b in m["budgets"]])
        ax.set_xlim(-0.4, len(m["budgets"]) - 0.6)
        ax.set(title=title, xlabel="end-to-end epochs (evenly spaced)",
               ylabel="test accuracy (%)")
    legend_outside(axes[0][-1], fontsize=8)
    done = ", ".join("frozen" if b == 0 else str(b) for b in m["budgets_done"])
    partial = [f"{b} at {', '.join(c)}" for b, c in m.get("cuts_done", {}).items()
               if int(b) not in m["budgets_done"]]
    done = "; ".join([done, *partial])
    how = ("each head at its searched settings" if not m.get("e2e_settings_from") else
           f"each head end to end as the '{m['e2e_settings_from']}' profile's search chose")
    fig.suptitle(f"Accuracy against the end-to-end budget, {how} (budgets done: {done})",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def reference(rec: dict, path=None):
    """The reference protocol (``reference.json``): left, the sweep of its one learning
    rate (validation accuracy against the rate, one line per head; a hollow marker at
    each head's own 2-epoch-searched settings, drawn at its head rate; the reference
    rate as a vertical line); right, test accuracy against the end-to-end budget per
    cut and head, with 95% t intervals, for every group that has all its seeds. A
    curve-only record (no sweep ran) draws the curve alone."""
    m = rec["metrics"]
    heads = list(m["sweep"])
    if m.get("curve_only"):
        fig, b = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    else:
        fig, (a, b) = plt.subplots(1, 2, figsize=(13.5, 4.6), layout="constrained")
        _sweep_panel(a, m)
    done = [s for s in m["summary"] if s["setting"] in ("reference", "frozen") and s["variant"] != "full"]
    cuts = list(m["variants"])
    budgets = m["budgets"]
    base = m["identity"]["base"]["test_acc"]
    b.axhline(base, color="0.4", lw=1, ls=":", label=f"full network as trained ({base:.2f}%)")
    for k, s in enumerate(s for s in m["summary"] if s["variant"] == "full"):  # the control
        b.errorbar([budgets.index(s["budget_epochs"]) + 0.6 + 0.08 * k], [s["mean"]],
                   yerr=[s["half_width"] or 0], marker="*", ms=11, color="0.2", capsize=3,
                   ls="none", mfc="0.2" if k == 0 else "white",
                   label=f"full network trained on, {s['setting']}")
    every = heads + sorted({s["head"] for s in m["summary"]} - set(heads) - {"full network"})
    for j, cut in enumerate(cuts):  # a head keeps its colour and marker at every cut
        for h in sorted(dict.fromkeys(s["head"] for s in done if s["variant"] == cut), key=every.index):
            i = every.index(h)
            pts = sorted((s["budget_epochs"], s["mean"], s["half_width"] or 0) for s in done
                         if (s["variant"], s["head"]) == (cut, h))
            xs = [budgets.index(p[0]) + 0.3 * j + 0.05 * i for p in pts]
            b.errorbar(xs, [p[1] for p in pts], yerr=[p[2] for p in pts], marker=MARKERS[i],
                       color=f"C{i}", mfc=f"C{i}" if j == 0 else "white", capsize=3,
                       label=f"{h}, {cut}")  # one cut filled, the next hollow
    for s in (s for s in m["summary"] if s["variant"] in cuts  # best-known rows
              and s["setting"] not in ("reference", "frozen")):
        i, j = every.index(s["head"]), cuts.index(s["variant"])
        b.errorbar([budgets.index(s["budget_epochs"]) + 0.3 * j + 0.05 * i + 0.15],
                   [s["mean"]], yerr=[s["half_width"] or 0], marker="D", color=f"C{i}",
                   mfc=f"C{i}" if j == 0 else "white", capsize=3, ls="none",
                   label=f"{s['head']}, {s['variant']}, {s['setting']}")
    b.set_xticks(range(len(budgets)), ["frozen" if x == 0 else str(x) for x in budgets])
    b.set(xlabel="end-to-end epochs", ylabel="test accuracy (%)",
          title="The curve under the reference protocol" + (
              f" ({m['still_to_run']} trainings to go)" if m["still_to_run"] else ", every seed"))
    legend_outside(b, fontsize=7)
    if not done:
        b.text(0.5, 0.5, "no head has all its seeds yet", ha="center", transform=b.transAxes)
    return save(fig, path)


def _sweep_panel(a, m: dict) -> None:
    """The reference protocol's sweep on ``a``: validation accuracy against the rate."""
    heads = list(m["sweep"])
    for i, h in enumerate(heads):
        rows = m["sweep"][h]["rows"]
        grid = sorted((r["lr"], r["val_acc"]) for r in rows if r["setting"] != "searched at 2 epochs")
        if grid:
            a.plot(*zip(*grid), marker=MARKERS[i], color=f"C{i}", label=h)
        for r in rows:
            if r["setting"] == "searched at 2 epochs":
                a.scatter([r["lr"]], [r["val_acc"]], marker=MARKERS[i], facecolors="none",
                          edgecolors=f"C{i}", s=70, label=f"{h}, its 2-epoch search")
    ref = m["recipe"]["reference_lr"]
    a.axvline(ref, color="0.4", lw=1, label=f"reference rate ({ref:g})")
    rates = [r["lr"] for h in heads for r in m["sweep"][h]["rows"]] + [ref]
    a.set_xlim(min(rates) / 1.6, max(rates) * 1.6)  # every rate tried, the widened ones too
    at = m["sweep_at"]
    a.set(xscale="log", xlabel="learning rate of head and base", ylabel="validation accuracy (%)",
          title=f"The sweep: {at['cut']}, {at['budget']} epochs, seed {at['seed']}, "
                f"{at['scored_on']} images")
    legend_outside(a, fontsize=7)
