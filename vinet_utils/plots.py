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
