"""Figures for the notebooks (seaborn on matplotlib), each saved beside its results."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def save(fig, path: str | Path | None):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


#: Markers of the series that share a panel; with a colour of its own for each series as
#: well, no two series look alike ("s" is kept for the paper's lines).
MARKERS = ("o", "D", "^", "v", "P", "X", "h", "<", ">", "p", "*", "d", "8", "H")
#: Suffix of the end-to-end heads' names in notebook 05's table.
E2E = ", end to end"
#: A figure colours at most this many classes; beyond it, a fixed sample of this many is
#: drawn and the title says so.
MAX_CLASSES_SHOWN = 10
#: A legend here covers no data: to the right of its axes.
OUTSIDE = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def legend_outside(ax, **kw):
    """``ax``'s legend to the right of the axes, where it covers no data (a legend that
    seaborn drew is moved there, its title kept)."""
    if ax.get_legend() is not None and "handles" not in kw:
        sns.move_legend(ax, **OUTSIDE, **kw)
        return ax.get_legend()
    return ax.legend(**OUTSIDE, **kw)


def distinct_styles(names) -> dict:
    """``{name: (colour, marker)}`` with no colour and no marker used twice. A head and
    its end-to-end line (``name + E2E``) share a hue, dark and light (tab20's pairs), up
    to ten heads; past that, evenly spaced hues."""
    names = list(dict.fromkeys(names))
    heads = list(dict.fromkeys(n.removesuffix(E2E) for n in names))
    if len(heads) <= 10:
        pal = sns.color_palette("tab20", 20)
        colour = {n: pal[2 * heads.index(n.removesuffix(E2E)) + int(n.endswith(E2E))]
                  for n in names}
    else:
        colour = dict(zip(names, sns.color_palette("husl", len(names))))
    return {n: (colour[n], MARKERS[i % len(MARKERS)]) for i, n in enumerate(names)}


def class_sample(n_classes: int, max_classes: int = MAX_CLASSES_SHOWN, seed: int = 0) -> list:
    """The classes a figure shows: all of them up to ``max_classes``, else a fixed
    (seeded) sample of that many, in index order."""
    if n_classes <= max_classes:
        return list(range(n_classes))
    return sorted(np.random.default_rng(seed).choice(n_classes, max_classes, replace=False).tolist())


def place_labels(ax, items, fontsize: float = 8, **text_kw) -> list:
    """Write each ``(x, y, text)`` (``text_kw`` may be per item: ``(x, y, text, kw)``)
    beside its point so that no label overlaps another, a data point or line of the
    axes, or the axes' edge. Candidate places ring the point, nearest first; the first
    free one is taken, else the least crowded, tied to its point by a thin line. A text
    already written at (nearly) the same place is written once. Returns the labels."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    obstacles = []  # display coordinates of every data point, and of data lines every 3 px
    for line in ax.get_lines():
        if line.get_transform() != ax.transData or not line.get_visible():
            continue  # reference lines (axhline / axvline) are not data
        xy = ax.transData.transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(1)]
        for p, q in zip(xy, xy[1:]):
            steps = max(1, int(np.hypot(*(q - p)) / 3))
            obstacles.extend(p + (q - p) * t for t in np.linspace(0, 1, steps + 1))
        obstacles.extend(xy)
    for coll in ax.collections:
        offs = np.asarray(coll.get_offsets(), dtype=float)
        if len(offs):
            obstacles.extend(coll.get_offset_transform().transform(offs))
    obstacles = np.array(obstacles).reshape(-1, 2)
    frame = ax.get_window_extent(renderer)
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    placed, written, out = [], [], []
    for item in items:
        x, y, text = item[:3]
        kw = {**text_kw, **(item[3] if len(item) > 3 else {})}
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        here = ax.transData.transform((x, y))
        if any(t == text and np.hypot(*(here - h)) < 4 for t, h in written):
            continue
        best = None
        for r in (5, 10, 17, 26, 38):
            for dx, dy in directions:
                off = (dx * r, dy * r * 0.8)
                ann = ax.annotate(text, (x, y), xytext=off, textcoords="offset points",
                                  fontsize=fontsize, ha={1: "left", -1: "right", 0: "center"}[dx],
                                  va={1: "bottom", -1: "top", 0: "center"}[dy], **kw)
                box = ann.get_window_extent(renderer).padded(1.5 * px)
                inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1
                          and box.y0 >= frame.y0 and box.y1 <= frame.y1)
                hits = sum(box.overlaps(b) for b in placed)
                if len(obstacles):
                    grown = box.padded(3 * px)
                    hits += int(((obstacles[:, 0] > grown.x0) & (obstacles[:, 0] < grown.x1)
                                 & (obstacles[:, 1] > grown.y0) & (obstacles[:, 1] < grown.y1)).sum())
                cost = hits + (0 if inside else 1000)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box, r)
                else:
                    ann.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, ann, box, r = best
        if r > 10:  # far from its point: a thin line ties them
            xytext, ha, va = ann.xyann, ann.get_ha(), ann.get_va()
            ann.remove()
            ann = ax.annotate(text, (x, y), xytext=xytext, textcoords="offset points",
                              fontsize=fontsize, ha=ha, va=va, **kw,
                              arrowprops=dict(arrowstyle="-", lw=0.6, color="0.4",
                                              shrinkA=0, shrinkB=3))
        placed.append(box)
        written.append((text, here))
        out.append(ann)
    return out


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
    ax.axvline(pca_dim, color="grey", ls="--", lw=1, label=f"pca_dim = {pca_dim}")
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
        ax.axhline(baseline_acc, color="k", ls="--", lw=1, label="baseline ResNet")
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
    The error bars are the table's ``acc_std``."""
    panels = 2 if paper is not None and not overlay else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.4 * panels if panels == 2 else 9.0, 4.4),
                             squeeze=False, sharey=False)
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
        b = a if overlay else axes[0][1]
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
    fig.tight_layout()
    return save(fig, path)


def budget_ablation(rec: dict, path=None):
    """A budget curve in the paper's ablation setting drawn the way the paper drew its
    ablation: accuracy against the share of 3x3 convs removed, each head with the base
    frozen (solid) and after the largest end-to-end budget any cut has finished (dashed,
    at the cuts that finished it), with 95% t intervals over seeds, on the same axes as
    the paper's curves (dotted)."""
    from .paper import ablation_rows

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
    return ablations(pd.DataFrame(rows), {"acc": m["baseline_test_acc"]},
                     pd.DataFrame(ablation_rows()), path, overlay=True,
                     title=f"this run (frozen: solid; {budget}; 95% t intervals over "
                           f"{m['seeds']} seeds)\nand the paper's figure (dotted, read off "
                           f"its plot)")


def speed_vs_accuracy(df: pd.DataFrame, path=None):
    """Throughput ratio against accuracy change, both relative to each side's own full
    ResNet: our run next to the paper's published numbers. Every point is labelled with
    its model, placed where it overlaps no other label or point (:func:`place_labels`)."""
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    sides = [("ours", "Speed-up", "Acc vs baseline", "o", "C0")]
    if df["Paper Speed-up"].notna().any():  # only where the paper has numbers
        sides.append(("paper", "Paper Speed-up", None, "s", "C1"))
    labels = []
    for label, su, acc, marker, colour in sides:
        y = df[acc] if acc else df["Paper Acc (%)"] - df["Paper Acc (%)"].iloc[-1]
        ax.plot(df[su], y, marker=marker, ls="--" if label == "paper" else "-", label=label,
                color=colour)
        labels += [(x, yy, name.split("-")[-1], {"color": "0.15" if i == len(df) - 1 else colour})
                   for i, (x, yy, name) in enumerate(zip(df[su], y, df["Model"]))
                   if pd.notna(x) and pd.notna(yy)]  # the last row, the full ResNet, is shared
    if "FLOP limit" in df and df["FLOP limit"].notna().any():  # where our run could reach
        ax.scatter(df["FLOP limit"], df["Acc vs baseline"], marker="|", s=200, color="C0",
                   label="ours at the FLOP limit")
        for x0, x1, y in zip(df["Speed-up"], df["FLOP limit"], df["Acc vs baseline"]):
            if pd.notna(x1):
                ax.plot([x0, x1], [y, y], color="C0", lw=0.8, ls=":")
    ax.axvline(1, color="grey", lw=1)
    ax.axhline(0, color="grey", lw=1)
    ax.margins(x=0.12, y=0.12)  # room for the labels at the edges
    ax.set(xlabel="throughput / full ResNet throughput",
           ylabel="accuracy - full ResNet accuracy (points)")
    legend_outside(ax)
    fig.tight_layout()
    place_labels(ax, labels)
    return save(fig, path)


def sweep(rec: dict, path=None):
    """One panel per swept factor, in the order swept: mean validation accuracy of each
    candidate per cut (the chosen value circled), and the two reference heads as
    dashed lines."""
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
            for ref, ls in zip(refs[v].values(), ("--", ":")):
                ax.axhline(ref["val_acc"], color=colour, ls=ls, lw=1)
        ax.set(title=name, xlabel="")
        ax.tick_params(axis="x", labelrotation=45)
    for row in axes:
        row[0].set_ylabel("validation accuracy (%)")
    names = list(next(iter(refs.values())))
    legend_outside(axes.flat[cols - 1], title="cut", fontsize=8)
    fig.suptitle(f"VI-Net head, greedy sweep on a validation split, left to right and top to "
                 f"bottom\n(dashed: {names[0]}; dotted: {names[1]}; circled: chosen)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def protocol(rec: dict, path=None):
    """Each head's search at a glance. One panel per searched cut (frozen base) and per
    end-to-end cut: every trial's validation accuracy against its learning rate, one
    colour and marker per head, each head's chosen trial (the record's ``best`` and
    ``best_end_to_end``) circled; end to end, the
    dashed line is where the head started (its best frozen trial)."""
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
                ax.axhline(trials[0]["per_cut"][cut]["frozen_val_acc"], color=f"C{i}", ls="--", lw=1)
        ax.set_xscale("log")
        ys_all = [t["per_cut"][cut]["val_acc"] for ts in studies.values() for t in ts]
        top = max(ys_all)
        ax.set_ylim(max(min(ys_all), top - 25) - 1, top + 1.5)  # diverged trials fall below
        ax.set(title=f"{cut}, {kind}", xlabel=lr + " (log scale)",
               ylabel="validation accuracy (%)")
    axes[0][0].legend(fontsize=7, loc="lower left")
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
    base as a line, and the paper's VI-Net drop from its own base carried to ours. The
    budgets sit evenly spaced (they grow geometrically), each head a little aside from
    the others so that no interval hides another, and the legend outside the panels."""
    from .verdict import paper_drop

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
            ax.axhline(base - drop, color="k", ls="--", lw=1,
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
