"""Figures for the notebooks (seaborn on matplotlib), each saved beside its results."""

from __future__ import annotations

from pathlib import Path

import matplotlib
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
    """Cumulative PCA explained variance of the pooled latents, one line per cut."""
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
        sns.scatterplot(df, x="pc1", y="pc2", hue="class", s=6, linewidth=0, ax=ax,
                        legend=ax is axes[0][-1], palette="tab10" if len(classes) <= 10 else None)
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
    """Test accuracy during fine-tuning, one line per VI-Net variant."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, h in histories.items():
        ax.plot(h["epoch"], h["test_acc"], marker="o", label=name)
    if baseline_acc is not None:
        ax.axhline(baseline_acc, color="k", ls="--", lw=1, label="baseline ResNet")
    ax.set(xlabel="fine-tuning epoch", ylabel="test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    return save(fig, path)


def ablations(table: pd.DataFrame, full: dict, path=None):
    """Accuracy of each head against conv layers removed (left) and total parameters
    (right), with the full ResNet as a reference."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    order = ["VI-Net, end to end", "VI-Net", "random monomials", "MLP", "linear probe"]
    hue = [h for h in order if h in set(table["head"])]
    sns.lineplot(table, x="convs_removed", y="acc", hue="head", hue_order=hue, marker="o", ax=a)
    sns.scatterplot(table, x="total_params", y="acc", hue="head", hue_order=hue, style="variant",
                    s=60, ax=b)
    handles, labels = b.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if lab in set(table["variant"]) | {"variant"}]
    b.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize=8)
    for ax, x in ((a, full["convs_removed"]), (b, full["total_params"])):
        ax.scatter([x], [full["acc"]], marker="*", s=180, color="k", zorder=5, label="full ResNet")
        ax.set_ylabel("test accuracy (%)")
    a.set_xlabel("3x3 conv layers removed")
    b.set(xlabel="total parameters")
    b.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:.2g}M"))
    a.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def speed_vs_accuracy(df: pd.DataFrame, path=None):
    """Throughput ratio against accuracy change, both relative to each side's own full
    ResNet: our run next to the paper's published numbers."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label, su, acc, marker in (("ours", "Speed-up", "Acc vs baseline", "o"),
                                   ("paper", "Paper Speed-up", None, "s")):
        y = df[acc] if acc else df["Paper Acc (%)"] - df["Paper Acc (%)"].iloc[-1]
        ax.plot(df[su], y, marker=marker, ls="--" if label == "paper" else "-", label=label)
        for x, yy, name in zip(df[su], y, df["Model"]):
            if pd.notna(x):
                ax.annotate(name.split("-")[-1], (x, yy), fontsize=8, xytext=(4, 3),
                            textcoords="offset points")
    ax.axvline(1, color="grey", lw=1)
    ax.axhline(0, color="grey", lw=1)
    ax.set(xlabel="throughput / full ResNet throughput",
           ylabel="accuracy - full ResNet accuracy (points)")
    ax.legend()
    fig.tight_layout()
    return save(fig, path)
