"""Figures for the notebooks (seaborn on matplotlib), each saved beside its results."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def save(fig, path: str | Path | None):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def learning_curve(history: dict, title: str = "", path=None):
    """Train/test loss and test accuracy per epoch."""
    df = pd.DataFrame(history)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    long = df.melt("epoch", ["train_loss", "test_loss"], var_name="split", value_name="loss")
    sns.lineplot(long, x="epoch", y="loss", hue="split", marker="o", ax=a)
    sns.lineplot(df, x="epoch", y="test_acc", marker="o", color="C2", ax=b)
    b.set_ylabel("test accuracy (%)")
    best = df["test_acc"].iloc[-1]
    b.annotate(f"{best:.2f}%", (df["epoch"].iloc[-1], best), textcoords="offset points",
               xytext=(-10, -16), ha="right")
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def explained_variance(curves: dict, pca_dim: int, path=None):
    """Cumulative PCA explained variance of the latents, one line per cut."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, ratio in curves.items():
        c = pd.Series(ratio).cumsum()
        ax.plot(range(1, len(c) + 1), c.values, marker=".", label=name)
    ax.axvline(pca_dim, color="grey", ls="--", lw=1)
    ax.set(xlabel="PCA components", ylabel="cumulative explained variance", ylim=(0, 1.02))
    ax.legend(title="cut")
    fig.tight_layout()
    return save(fig, path)


def pca_scatter(points: dict, classes, path=None, max_points: int = 2000):
    """First two PCA components of each cut's latents, coloured by class."""
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.6), squeeze=False)
    for ax, (name, (u, y)) in zip(axes[0], points.items()):
        df = pd.DataFrame({"pc1": u[:max_points, 0], "pc2": u[:max_points, 1],
                           "class": [classes[int(k)] for k in y[:max_points]]})
        sns.scatterplot(df, x="pc1", y="pc2", hue="class", hue_order=list(classes), s=6,
                        linewidth=0, ax=ax, legend=ax is axes[0][-1],
                        palette="tab10" if len(classes) <= 10 else None)
        ax.set_title(name)
    if len(classes) <= 10:
        axes[0][-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", markerscale=3, fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def ideal_structure(summaries: dict, path=None):
    """Generators per class (left) and their degrees (right), one colour per cut."""
    rows = [{"cut": cut, "class": r["class"], "generators": r["n_generators"]}
            for cut, rs in summaries.items() for r in rs]
    deg = [{"cut": cut, "degree": d + 1, "generators": n}
           for cut, rs in summaries.items() for r in rs
           for d, n in enumerate(r["generators_by_degree"])]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.barplot(pd.DataFrame(rows), x="class", y="generators", hue="cut", ax=a)
    sns.barplot(pd.DataFrame(deg), x="degree", y="generators", hue="cut", estimator="sum",
                errorbar=None, ax=b)
    a.set_title("generators per class")
    b.set_title("generators by degree (all classes)")
    fig.tight_layout()
    return save(fig, path)


def vanishing_heatmaps(matrices: dict, classes, path=None):
    """``V[k, j]``: mean |p| of class k's generators on class j's held-out points."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.4 * len(matrices), 4), squeeze=False)
    for ax, (name, v) in zip(axes[0], matrices.items()):
        sns.heatmap(v, ax=ax, cmap="rocket_r", square=True, cbar=ax is axes[0][-1],
                    xticklabels=classes if len(classes) <= 10 else False,
                    yticklabels=classes if len(classes) <= 10 else False)
        ax.set(title=name, xlabel="points of class j (test)", ylabel="generators of class k")
    fig.tight_layout()
    return save(fig, path)


def same_vs_other(rows: list[dict], path=None):
    """Per cut: mean |p| of a class's generators on its own vs other classes' test points."""
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.barplot(df, x="cut", y="mean_abs", hue="points", ax=ax)
    ax.set(ylabel="mean |p(z)| on test points", yscale="log")
    fig.tight_layout()
    return save(fig, path)


def prune_scores(scores: dict, path=None):
    """Distribution of pruning scores per cut, kept vs dropped."""
    df = pd.DataFrame(scores)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.boxplot(df, x="cut", y="score", hue="kept", ax=ax, fliersize=1)
    ax.set(yscale="log", ylabel="score: min over other classes of mean |p|")
    fig.tight_layout()
    return save(fig, path)


def finetune_curves(histories: dict, baseline_acc: float | None = None, path=None):
    """Test accuracy during fine-tuning: per VI-Net variant, one thin line per seed with
    the base frozen, and the optional end-to-end phase continuing the first seed."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i}"
        for r, f in enumerate(h["frozen"]):
            ax.plot(f["epoch"], f["test_acc"], color=color, lw=1, alpha=0.8,
                    marker="o" if r == 0 else None, ms=3, label=name if r == 0 else None)
        if h.get("end_to_end"):
            e, n = h["end_to_end"], len(h["frozen"][0]["epoch"])
            ax.plot([n] + [n + k for k in e["epoch"]], [h["frozen"][0]["test_acc"][-1]] + e["test_acc"],
                    color=color, ls="--", marker="s", ms=3)
    if baseline_acc is not None:
        ax.axhline(baseline_acc, color="k", ls="--", lw=1, label="baseline ResNet")
    ax.set(xlabel="fine-tuning epoch (dashed: end to end)", ylabel="test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def ablations(table: pd.DataFrame, full: dict, paper: pd.DataFrame | None = None, path=None,
              overlay: bool = False):
    """Accuracy of each head against the share of 3x3 conv layers removed (mean ± std
    over seeds), with the full ResNet as a star. The paper's ablation figure (CIFAR-100
    / ResNet-34), when given, is drawn beside it, or with ``overlay`` (a run in the
    paper's own ablation setting) on the same axes as dashed lines, each in the colour
    of our head of the same kind."""
    panels = 2 if paper is not None and not overlay else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels if panels == 2 else 7.5, 4.4),
                             squeeze=False, sharey=False)
    hue = list(dict.fromkeys(table["head"]))
    a = axes[0][0]
    for i, head in enumerate(hue):
        t = table[table["head"] == head].sort_values("removed_pct")
        a.errorbar(t["removed_pct"], t["acc"], yerr=t["acc_std"].fillna(0), marker="o", ms=4,
                   capsize=3, color=f"C{i}", label=head, lw=2 if head.startswith("VI-Net") else 1)
    a.scatter([0], [full["acc"]], marker="*", s=180, color="k", zorder=5, label="full ResNet")
    a.set(xlabel="3x3 conv layers removed (%)", ylabel="test accuracy (%)", title="this run")
    if paper is not None:
        b = a if overlay else axes[0][1]
        ours = {"VI-Net": "VI-Net", "linear head on the truncated net": "linear (flatten)",
                "random monomials": "random monomials"}
        for j, (head, t) in enumerate(paper.groupby("head", sort=False)):
            colour = f"C{hue.index(ours[head])}" if overlay and ours.get(head) in hue else f"C{j}"
            b.plot(t["removed_pct"], t["acc"], marker="s" if overlay else "o", ms=3,
                   ls="--" if overlay else "-", color=colour, alpha=0.8 if overlay else 1,
                   label=f"paper: {head}" if overlay else head, lw=2 if head == "VI-Net" else 1)
        if overlay:
            a.set(title="this run (solid) and the paper's figure (dashed, read off its plot)")
        else:
            b.set(xlabel="layers removed (%)", ylabel="test accuracy (%)",
                  title="paper (CIFAR-100, ResNet-34, read off its figure)")
            b.legend(fontsize=7)
    a.legend(fontsize=7, ncol=2 if overlay else 1, loc="lower left" if overlay else "best")
    fig.tight_layout()
    return save(fig, path)


def speed_vs_accuracy(df: pd.DataFrame, path=None):
    """Throughput ratio against accuracy change, both relative to each side's own full
    ResNet: our run next to the paper's published numbers."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    sides = [("ours", "Speed-up", "Acc vs baseline", "o")]
    if df["Paper Speed-up"].notna().any():  # only where the paper has numbers
        sides.append(("paper", "Paper Speed-up", None, "s"))
    for label, su, acc, marker in sides:
        y = df[acc] if acc else df["Paper Acc (%)"] - df["Paper Acc (%)"].iloc[-1]
        ax.plot(df[su], y, marker=marker, ls="--" if label == "paper" else "-", label=label)
        for x, yy, name in zip(df[su], y, df["Model"]):
            if pd.notna(x):
                ax.annotate(name.split("-")[-1], (x, yy), fontsize=8, xytext=(4, 3),
                            textcoords="offset points")
    if "FLOP limit" in df and df["FLOP limit"].notna().any():  # where our run could reach
        ax.scatter(df["FLOP limit"], df["Acc vs baseline"], marker="|", s=200, color="C0",
                   label="ours at the FLOP limit")
        for x0, x1, y in zip(df["Speed-up"], df["FLOP limit"], df["Acc vs baseline"]):
            if pd.notna(x1):
                ax.plot([x0, x1], [y, y], color="C0", lw=0.8, ls=":")
    ax.axvline(1, color="grey", lw=1)
    ax.axhline(0, color="grey", lw=1)
    ax.set(xlabel="throughput / full ResNet throughput",
           ylabel="accuracy - full ResNet accuracy (points)")
    ax.legend()
    fig.tight_layout()
    return save(fig, path)


def sweep(rec: dict, path=None):
    """One panel per swept factor, in the order swept: mean validation accuracy of each
    candidate per cut (the chosen value circled), and the two reference heads as
    dashed lines."""
    factors = rec["metrics"]["order"]
    refs = rec["metrics"]["references"]
    variants = list(rec["metrics"]["chosen_val_acc"])
    cols = min(4, len(factors))
    rows = -(-len(factors) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(factors):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, factors):
        f = rec["metrics"]["factors"][name]
        xs = [str(c) for c in f["candidates"]]
        for i, v in enumerate(variants):
            ys = f["per_variant"][v]
            ax.plot(xs, ys, marker="o", color=f"C{i}", label=v)
            ax.scatter([str(f["chosen"])], [ys[f["candidates"].index(f["chosen"])]], s=120,
                       facecolors="none", edgecolors="k", zorder=5)
            for ref, ls in zip(refs[v].values(), ("--", ":")):
                ax.axhline(ref["val_acc"], color=f"C{i}", ls=ls, lw=1)
        ax.set(title=name, xlabel="")
        ax.tick_params(axis="x", labelrotation=45)
    for row in axes:
        row[0].set_ylabel("validation accuracy (%)")
    names = list(next(iter(refs.values())))
    axes.flat[len(factors) - 1].legend(title="cut", fontsize=8)
    fig.suptitle(f"VI-Net head, greedy sweep on a validation split, left to right and top to "
                 f"bottom\n(dashed: {names[0]}; dotted: {names[1]}; circled: chosen)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def protocol(rec: dict, path=None):
    """One panel per cut: every head's validation accuracy in each of its trials (the
    best circled), and beside each projected head's point the share of its projected
    coordinates stuck beyond +-0.99 after training."""
    per_cut = rec["metrics"]["per_cut"]
    fig, axes = plt.subplots(1, len(per_cut), figsize=(6.0 * len(per_cut), 4.2), squeeze=False)
    for ax, (cut, heads) in zip(axes[0], per_cut.items()):
        for i, (head, rows) in enumerate(heads.items()):
            xs = [i + (j - (len(rows) - 1) / 2) * 0.18 for j in range(len(rows))]
            ys = [r["val_acc"] for r in rows]
            ax.plot(xs, ys, marker="o", ms=5, color=f"C{i}", lw=1)
            best = max(range(len(rows)), key=lambda j: ys[j])
            ax.scatter([xs[best]], [ys[best]], s=140, facecolors="none", edgecolors="k", zorder=5)
            for x, y, r in zip(xs, ys, rows):
                tag = r["label"].split("=", 1)[1]
                if r["saturation"] is not None:
                    tag += f" ({100 * r['saturation']:.0f}%)"
                ax.annotate(tag, (x, y), fontsize=6, rotation=90, xytext=(0, 6),
                            textcoords="offset points", ha="center", va="bottom")
        ax.set_xticks(range(len(heads)), list(heads), rotation=20, fontsize=8)
        ax.set(title=f"{cut}: validation accuracy per trial", ylabel="validation accuracy (%)")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.25 * (hi - lo))  # room for the labels
    fig.suptitle("Each head's trials, circled: its best. Projected heads: train_projection\n"
                 "(in brackets: coordinates saturated after training); others: finetune_lr",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _other_width(a, b, others: dict, v: str, color: str) -> None:
    """Bases of another width than the trend's: squares of their own, not on its line."""
    for s in others.values():
        c = s["cuts"].get(v)
        if c is None:
            continue
        a.errorbar([s["baseline_acc"]], [c["margin"]], yerr=[c["margin_se"] or 0],
                   marker="s", ms=7, color=color, capsize=3, mec="k")
        if "e2e_margin" in c:
            a.scatter([s["baseline_acc"]], [c["e2e_margin"]], marker="s", s=60,
                      facecolors="none", edgecolors=color)
        b.scatter([s["baseline_acc"]], [c["vinet_minus_baseline"]], marker="s", s=50,
                  color=color, edgecolors="k", zorder=5)


def study(rec: dict, path=None):
    """The base-quality study at a glance. Left: VI-Net's margin over the best head
    without polynomials, per cut, against baseline accuracy (frozen base: filled, with
    the standard error over seeds; end to end: open), each cut's least-squares line
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
                   yerr=[c["margin_se"] or 0 for _, c in pts], marker="o", color=f"C{i}",
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
                   ls="--", color=f"C{i}", lw=1)
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
    a.set_title("margin over the heads without polynomials\n(dashed: width-0.25 trend to the "
                f"paper's base, diamond: its value ± s.e.{square})", fontsize=10)
    a.legend(fontsize=7, ncol=2)
    b.set_ylabel("VI-Net minus its full ResNet (points)")
    b.set_title(f"VI-Net against its own baseline\n(stars: the paper's published values{square})",
                fontsize=10)
    b.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
