"""The figures of notebooks 01 to 06, one function per figure, each saved beside its
stage's results."""

from __future__ import annotations

import re


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from vinet_utils.report.figures.style import (E2E, MAX_CLASSES_SHOWN, class_sample, distinct_styles,
                                              legend_outside, place_labels, save)


def learning_curve(history: dict, title: str = "", path=None):
    """Train/test loss and test accuracy per epoch."""
    df = pd.DataFrame(history)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    long = df.melt("epoch", ["train_loss", "test_loss"], var_name="split", value_name="loss")
    sns.lineplot(long, x="epoch", y="loss", hue="split", style="split", markers=["o", "D"],
                 dashes=False, ax=a)
    legend_outside(a)
    sns.lineplot(df, x="epoch", y="test_acc", marker="o", color="C2", ax=b)
    b.set_ylabel("test accuracy (%)")
    b.set_title(f"test accuracy after the last epoch: {df['test_acc'].iloc[-1]:.2f}%",
                fontsize=11)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def explained_variance(curves: dict, pca_dim: int, path=None):
    """Cumulative PCA explained variance of the latents, one line per cut."""
    fig, ax = plt.subplots(figsize=(6.6, 3.6))
    style = distinct_styles(curves)
    for name, ratio in curves.items():
        c = pd.Series(ratio).cumsum()
        colour, marker = style[name]
        ax.plot(range(1, len(c) + 1), c.values, marker=marker, ms=3, color=colour, label=name)
    ax.axvline(pca_dim, color="grey", lw=1, label=f"pca_dim = {pca_dim}")
    ax.set(xlabel="PCA components", ylabel="cumulative explained variance", ylim=(0, 1.02))
    legend_outside(ax, title="cut")
    fig.tight_layout()
    return save(fig, path)


def pca_scatter(points: dict, classes, path=None, max_points: int = 2000,
                max_classes: int = MAX_CLASSES_SHOWN):
    """First two PCA components of each cut's latents, coloured by class. Past
    ``max_classes`` classes (no palette tells 100 apart), only a fixed sample of that
    many classes is drawn, and the title says so."""
    shown = class_sample(len(classes), max_classes)
    names = [classes[k] for k in shown]
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.6), squeeze=False)
    for ax, (name, (u, y)) in zip(axes[0], points.items()):
        u, y = np.asarray(u), np.asarray(y).astype(int)
        keep = np.flatnonzero(np.isin(y, shown))[:max_points]
        df = pd.DataFrame({"pc1": u[keep, 0], "pc2": u[keep, 1],
                           "class": [classes[k] for k in y[keep]]})
        sns.scatterplot(df, x="pc1", y="pc2", hue="class", hue_order=names, style="class",
                        style_order=names, s=9, linewidth=0, ax=ax, legend=ax is axes[0][-1],
                        palette="tab10")
        ax.set_title(name)
    legend_outside(axes[0][-1], markerscale=2, fontsize=8, title="class")
    if len(shown) < len(classes):
        fig.suptitle(f"{len(shown)} of the {len(classes)} classes shown, a fixed random sample "
                     f"(every class's points are in the fit)", fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def ideal_structure(summaries: dict, path=None):
    """Generators per class (left) and their degrees (right), one colour per cut; past
    20 classes the left panel draws one line per cut over the class index."""
    rows = [{"cut": cut, "class": r["class"], "generators": r["n_generators"]}
            for cut, rs in summaries.items() for r in rs]
    deg = [{"cut": cut, "degree": d + 1, "generators": n}
           for cut, rs in summaries.items() for r in rs
           for d, n in enumerate(r["generators_by_degree"])]
    cuts = list(summaries)
    style = distinct_styles(cuts)
    palette = {c: style[c][0] for c in cuts}
    n_classes = max(len(rs) for rs in summaries.values())
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.6))
    if n_classes <= 20:
        sns.barplot(pd.DataFrame(rows), x="class", y="generators", hue="cut", hue_order=cuts,
                    palette=palette, ax=a, legend=False)
    else:
        for cut, rs in summaries.items():
            colour, marker = style[cut]
            a.plot([r["class"] for r in rs], [r["n_generators"] for r in rs], color=colour,
                   marker=marker, ms=3, lw=0.8, label=cut)
        a.set(xlabel="class (index)", ylabel="generators")
    sns.barplot(pd.DataFrame(deg), x="degree", y="generators", hue="cut", hue_order=cuts,
                palette=palette, estimator="sum", errorbar=None, ax=b)
    legend_outside(b, title="cut")
    a.set_title("generators per class")
    b.set_title("generators by degree (all classes)")
    fig.tight_layout()
    return save(fig, path)


def vanishing_heatmaps(matrices: dict, classes, path=None):
    """``V[k, j]``: mean |p| of class k's generators on class j's held-out points, one
    panel per cut, each with its own labelled colour bar (the cuts' scales differ)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.0 * len(matrices), 4), squeeze=False)
    for ax, (name, v) in zip(axes[0], matrices.items()):
        sns.heatmap(v, ax=ax, cmap="rocket_r", square=True,
                    cbar_kws={"label": "mean |p(z)|", "shrink": 0.85},
                    xticklabels=classes if len(classes) <= 10 else False,
                    yticklabels=classes if len(classes) <= 10 else False)
        ax.set(title=name, xlabel="points of class j (test)", ylabel="generators of class k")
    fig.tight_layout()
    return save(fig, path)


def same_vs_other(rows: list[dict], path=None):
    """Per cut: mean |p| of a class's generators on its own vs other classes' test points."""
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.barplot(df, x="cut", y="mean_abs", hue="points", ax=ax)
    ax.set(ylabel="mean |p(z)| on test points", yscale="log")
    legend_outside(ax, title="points")
    fig.tight_layout()
    return save(fig, path)


def prune_scores(scores: dict, path=None):
    """Distribution of pruning scores per cut, kept vs dropped."""
    df = pd.DataFrame(scores)
    fig, ax = plt.subplots(figsize=(7.6, 3.6))
    sns.boxplot(df, x="cut", y="score", hue="kept", ax=ax, fliersize=1)
    ax.set(yscale="log", ylabel="score: min over other classes of mean |p|")
    legend_outside(ax, title="kept")
    fig.tight_layout()
    return save(fig, path)


def finetune_curves(histories: dict, baseline_acc: float | None = None, path=None):
    """Test accuracy during fine-tuning: per VI-Net variant, one thin line per seed with
    the base frozen, and the optional end-to-end phase continuing the first seed."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    style = distinct_styles(histories)
    for name, h in histories.items():
        color, marker = style[name]
        for r, f in enumerate(h["frozen"]):
            ax.plot(f["epoch"], f["test_acc"], color=color, lw=1, alpha=0.8,
                    marker=marker if r == 0 else None, ms=3, label=name if r == 0 else None)
        if h.get("end_to_end"):
            e, n = h["end_to_end"], len(h["frozen"][0]["epoch"])
            ax.plot([n] + [n + k for k in e["epoch"]], [h["frozen"][0]["test_acc"][-1]] + e["test_acc"],
                    color=color, ls="--", marker=marker, mfc="white", ms=3,
                    label=f"{name}{E2E}")
    if baseline_acc is not None:
        ax.axhline(baseline_acc, color="k", lw=1, label="baseline ResNet")
    ax.set(xlabel="fine-tuning epoch (dashed: end to end)", ylabel="test accuracy (%)")
    legend_outside(ax, fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def ablations(table: pd.DataFrame, full: dict, paper: pd.DataFrame | None = None, path=None,
              overlay: bool = False, title: str | None = None):
    """Accuracy of each head against the share of 3x3 conv layers removed (mean ± std
    over seeds), with the full ResNet as a star; every head its own colour and marker,
    end to end dashed with open markers in a lighter shade of its head's colour. The
    paper's ablation figure (CIFAR-100 / ResNet-34), when given, is drawn beside it, or
    with ``overlay`` (a run in the paper's own ablation setting) on the same axes as
    dotted lines with square markers, each in the colour of our head of the same kind.
    Legends stand to the right of their panels; ``title`` replaces the first panel's.
    The error bars are the table's ``acc_std``. A table with each row's ``acc_per_seed``
    gets a panel of each head minus VI-Net with Welch intervals (:func:`_minus_vinet`)."""
    differences = {"variant", "acc_per_seed"} <= set(table.columns)  # per-seed rows: a panel
    panels = 1 + (paper is not None and not overlay) + differences
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.4), squeeze=False, sharey=False)
    hue = list(dict.fromkeys(table["head"]))
    style = distinct_styles(hue)
    a = axes[0][0]
    for head in hue:
        colour, marker = style[head]
        e2e = head.endswith(E2E)
        t = table[table["head"] == head].sort_values("removed_pct")
        a.errorbar(t["removed_pct"], t["acc"], yerr=t["acc_std"].fillna(0), marker=marker, ms=5,
                   capsize=3, color=colour, mfc="white" if e2e else colour, mec=colour,
                   ls="--" if e2e else "-", label=head,
                   lw=2 if head.startswith("VI-Net") else 1)
    a.scatter([0], [full["acc"]], marker="*", s=180, color="k", zorder=5, label="full ResNet")
    a.set(xlabel="3x3 conv layers removed (%)", ylabel="test accuracy (%)", title="this run")
    if paper is not None:
        b = a if overlay else axes[0][-1]
        ours = {"VI-Net": "VI-Net", "linear head on the truncated net": "linear (flatten)",
                "random monomials": "random monomials"}
        own = distinct_styles(list(dict.fromkeys(paper["head"])))
        for head, t in paper.groupby("head", sort=False):
            if overlay:
                colour = style[ours[head]][0] if ours.get(head) in style else own[head][0]
                b.plot(t["removed_pct"], t["acc"], marker="s", ms=3, ls=":", color=colour,
                       alpha=0.85, label=f"paper: {head}", lw=2 if head == "VI-Net" else 1.4)
            else:
                colour, marker = own[head]
                b.plot(t["removed_pct"], t["acc"], marker=marker, ms=3, color=colour,
                       label=head, lw=2 if head == "VI-Net" else 1)
        if overlay:
            a.set(title="this run (solid; end to end: dashed) and the paper's figure "
                        "(dotted, read off its plot)")
        else:
            b.set(xlabel="layers removed (%)", ylabel="test accuracy (%)",
                  title="paper (CIFAR-100, ResNet-34, read off its figure)")
            legend_outside(b, fontsize=7)
    if title is not None:
        a.set(title=title)
    legend_outside(a, fontsize=7)
    if differences:
        _minus_vinet(axes[0][1], table, style)
    fig.tight_layout()
    return save(fig, path)


def _minus_vinet(ax, table: pd.DataFrame, style: dict) -> None:
    """Each frozen head on VI-Net's own (flattened) features minus VI-Net at every cut,
    with Welch's 95% t interval over their seeds: the differences of a point or two that
    the accuracy panel cannot show (the pooled heads, far below, stay on that panel)."""
    from vinet_utils.common.stats import difference_interval

    frozen = table[~table["head"].str.endswith(E2E)]
    vi = {r["variant"]: r for _, r in frozen[frozen["head"] == "VI-Net"].iterrows()}
    heads = [h for h in dict.fromkeys(frozen["head"])  # on VI-Net's own features: not pooled
             if h != "VI-Net" and h in style and not re.search(r"\((gap|\d+x\d+)\)$", h)]
    for k, head in enumerate(heads):
        colour, marker = style[head]
        pts = []
        for _, r in frozen[frozen["head"] == head].sort_values("removed_pct").iterrows():
            v = vi.get(r["variant"])
            if v is None or not isinstance(r.get("acc_per_seed"), list):
                continue
            d = difference_interval(r["acc_per_seed"], v["acc_per_seed"])
            pts.append((r["removed_pct"] + 0.4 * (k - len(heads) / 2), d["diff"], d["half_width"] or 0))
        if pts:
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, marker=marker, ms=4, capsize=2, color=colour, lw=1,
                        label=head)
    ax.axhline(0, color="k", lw=1.2, label="VI-Net")
    ax.set(xlabel="3x3 conv layers removed (%)", ylabel="head minus VI-Net (points)",
           title="each head minus VI-Net, base frozen\n(95% t intervals, Welch's)")
    legend_outside(ax, fontsize=7)


def budget_ablation(rec: dict, path=None):
    """A budget curve in the paper's ablation setting drawn the way the paper drew its
    ablation: accuracy against the share of 3x3 convs removed, each head with the base
    frozen (solid) and after the largest end-to-end budget any cut has finished (dashed,
    at the cuts that finished it), with 95% t intervals over seeds, on the same axes as
    the paper's curves (dotted)."""
    from vinet_utils.common.paper import ablation_rows

    m = rec["metrics"]
    done = ({int(b): cuts for b, cuts in m["cuts_done"].items()} if "cuts_done" in m
            else {b: m["variants"] for b in m["budgets_done"]})
    e2e = max((b for b, cuts in done.items() if b and cuts), default=None)
    rows = [{"head": s["head"] + ("" if s["budget_epochs"] == 0 else E2E),
             "removed_pct": m["removed_pct"][s["variant"]], "acc": s["mean"],
             "acc_std": s["half_width"]}
            for s in m["summary"] if s["budget_epochs"] == 0
            or (s["budget_epochs"] == e2e and s["variant"] in done[e2e])]
    budget = "no end-to-end budget yet" if e2e is None else f"end to end: {e2e} epochs, dashed"
    if e2e is not None and len(done[e2e]) < len(m["variants"]):
        budget += f", at {len(done[e2e])} of {len(m['variants'])} cuts so far"
    return ablations(pd.DataFrame(rows, columns=["head", "removed_pct", "acc", "acc_std"]),
                     {"acc": m["baseline_test_acc"]},
                     pd.DataFrame(ablation_rows()), path, overlay=True,
                     title=f"this run (frozen: solid; {budget}; 95% t intervals over "
                           f"{m['seeds']} seeds)\nand the paper's figure (dotted, read off "
                           f"its plot)")


def speed_vs_accuracy(df: pd.DataFrame, path=None):
    """Throughput ratio against accuracy change, both relative to each side's own full
    ResNet: our run next to the paper's published numbers. Every VI-Net is labelled with
    its cut, placed where it overlaps no other label or point (:func:`place_labels`); the
    full ResNet is where the grey lines cross, (1, 0), on both sides."""
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    sides = [("ours", "Speed-up", "Acc vs baseline", "o", "C0")]
    if df["Paper Speed-up"].notna().any():  # only where the paper has numbers
        sides.append(("paper", "Paper Speed-up", None, "s", "C1"))
    labels = []
    for label, su, acc, marker, colour in sides:
        y = df[acc] if acc else df["Paper Acc (%)"] - df["Paper Acc (%)"].iloc[-1]
        ax.plot(df[su], y, marker=marker, ls=":" if label == "paper" else "-", label=label,
                color=colour)
        rows = zip(df[su][:-1], y[:-1], df["Model"][:-1])  # the last, the full ResNet, sits
        labels += [(x, yy, name.split("-")[-1], {"color": colour})  # where the grey lines cross
                   for x, yy, name in rows if pd.notna(x) and pd.notna(yy)]
    if "FLOP limit" in df and df["FLOP limit"].notna().any():  # where our run could reach
        ax.scatter(df["FLOP limit"], df["Acc vs baseline"], marker="|", s=200, color="C0",
                   label="ours at the FLOP limit")
        for x0, x1, y in zip(df["Speed-up"], df["FLOP limit"], df["Acc vs baseline"]):
            if pd.notna(x1):
                ax.plot([x0, x1], [y, y], color="C0", lw=0.6)
    ax.axvline(1, color="grey", lw=1)
    ax.axhline(0, color="grey", lw=1)
    ax.margins(x=0.12, y=0.2)  # room for the labels at the edges
    ax.set(xlabel="throughput / full ResNet throughput",
           ylabel="accuracy - full ResNet accuracy (points)")
    legend_outside(ax)
    fig.tight_layout()
    place_labels(ax, labels)
    return save(fig, path)
